//! One endpoint (one alloy provider) and everything fetched from it: headers, logs by
//! hash and by range, checked against the header's hash and logs bloom, decoded. An
//! operation of the source runs against one endpoint from start to end, so a block's
//! header and logs always come from the same node.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use alloy_consensus::BlockHeader;
use alloy_network::primitives::HeaderResponse;
use alloy_network::{BlockResponse, Network};
use alloy_primitives::{Address, B256, BloomInput};
use alloy_provider::{DynProvider, Provider};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, Log};
use alloy_transport::{RpcError, TransportError};

use super::RpcConfig;
use super::policy::is_unknown_block;
use crate::decode::Decoded;
use crate::error::SourceError;
use crate::model::{Block, BlockHeader as ModelHeader, BlockNumber, BlockRef, LogId};

pub(crate) fn transport(
    endpoint: &str,
    operation: impl std::fmt::Display,
) -> impl FnOnce(TransportError) -> SourceError {
    let operation = format!("{operation} at {endpoint}");
    // The inner HTTP error holds the request's whole URL (API keys in its path or query).
    move |e| SourceError::Transport {
        operation,
        source: Box::new(super::redact::redact_error(&e)),
    }
}

/// One provider and what the source learnt about it.
pub(crate) struct Endpoint<N: Network> {
    pub provider: DynProvider<N>,
    /// `#index` plus a user-facing name, for errors and logs.
    pub label: String,
    /// Its adaptive `eth_getLogs` range.
    pub log_range: AtomicU64,
    /// It answered the finality tag with an error: confirm by depth.
    pub no_finality_tag: AtomicBool,
    /// The last head it reported that was trusted (`u64::MAX`: none yet); a lower answer
    /// while other endpoints do not go back is distrusted.
    pub reported_head: AtomicU64,
    /// Asked after the others until then.
    pub demoted_until: Mutex<Option<Instant>>,
    /// Whether Multicall3 has code at its canonical address there (asked once).
    pub multicall3: OnceLock<bool>,
}

impl<N: Network> std::fmt::Debug for Endpoint<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("label", &self.label)
            .field("log_range", &self.log_range)
            .field("reported_head", &self.reported_head)
            .finish_non_exhaustive()
    }
}

/// The model header of an alloy RPC header.
pub(crate) fn to_model<H: HeaderResponse>(h: &H) -> ModelHeader {
    ModelHeader {
        number: h.number(),
        hash: h.hash(),
        parent_hash: h.parent_hash(),
        timestamp: h.timestamp(),
    }
}

pub(crate) fn id<H: HeaderResponse>(h: &H) -> BlockRef {
    BlockRef {
        number: h.number(),
        hash: h.hash(),
    }
}

/// An endpoint, with the settings an operation needs.
pub(crate) struct Fetch<'a, N: Network> {
    pub ep: &'a Endpoint<N>,
    pub config: &'a RpcConfig,
    pub addresses: &'a [Address],
    /// No endpoint is left to ask after this one: accept a bloom false positive.
    pub last: bool,
}

impl<N: Network> Endpoint<N> {
    pub fn new(provider: DynProvider<N>, label: String, config: &RpcConfig) -> Self {
        Self {
            provider,
            label,
            log_range: AtomicU64::new(config.max_log_range.max(1)),
            no_finality_tag: AtomicBool::new(false),
            reported_head: AtomicU64::new(u64::MAX),
            demoted_until: Mutex::new(None),
            multicall3: OnceLock::new(),
        }
    }

    pub fn demoted(&self, now: Instant) -> bool {
        self.demoted_until
            .lock()
            .map(|d| d.is_some_and(|t| t > now))
            .unwrap_or(false)
    }

    pub fn demote(&self, until: Instant) {
        if let Ok(mut d) = self.demoted_until.lock() {
            *d = Some(until);
        }
    }

    pub fn reported_head(&self) -> Option<BlockNumber> {
        match self.reported_head.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    pub async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.provider
            .get_block_number()
            .await
            .map_err(transport(&self.label, "eth_blockNumber"))
    }
}

impl<N: Network> Fetch<'_, N> {
    pub(crate) fn label(&self) -> &str {
        &self.ep.label
    }

    async fn header_by_number(
        &self,
        number: BlockNumber,
    ) -> Result<Option<N::HeaderResponse>, SourceError> {
        let block = self
            .ep
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(transport(
                self.label(),
                format_args!("eth_getBlockByNumber #{number}"),
            ))?;
        Ok(block.map(|b| b.header().clone()))
    }

    async fn header_by_hash(&self, hash: B256) -> Result<Option<N::HeaderResponse>, SourceError> {
        let block = self
            .ep
            .provider
            .get_block_by_hash(hash)
            .await
            .map_err(transport(
                self.label(),
                format_args!("eth_getBlockByHash {hash}"),
            ))?;
        Ok(block.map(|b| b.header().clone()))
    }

    /// The node's `finalized` / `safe` block number, `None` if it does not know the tag.
    pub async fn tag(&self, tag: BlockNumberOrTag) -> Result<Option<BlockNumber>, SourceError> {
        if self.ep.no_finality_tag.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match self.ep.provider.get_block_by_number(tag).await {
            Ok(block) => Ok(block.map(|b| b.header().number())),
            Err(RpcError::ErrorResp(e)) => {
                tracing::info!(endpoint = %self.label(), %tag, code = e.code, message = %e.message, "node does not support the finality tag; confirming by depth");
                self.ep.no_finality_tag.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(transport(
                self.label(),
                format_args!("eth_getBlockByNumber {tag}"),
            )(e)),
        }
    }

    /// Logs of the tracked contracts in the block `hash`. `Ok(None)`: the node no longer
    /// knows the block, or answers it with `removed` logs (reorged away meanwhile).
    async fn logs_by_hash(&self, block: BlockRef) -> Result<Option<Vec<Log>>, SourceError> {
        let filter = Filter::new()
            .address(self.addresses.to_vec())
            .at_block_hash(block.hash);
        let logs = match self.ep.provider.get_logs(&filter).await {
            Ok(logs) => logs,
            Err(RpcError::ErrorResp(e)) if is_unknown_block(&e.message) => return Ok(None),
            Err(e) => {
                return Err(transport(
                    self.label(),
                    format_args!("eth_getLogs block {block}"),
                )(e));
            }
        };
        if logs.iter().any(|l| l.removed) {
            tracing::debug!(endpoint = %self.label(), block = block.number, hash = %block.hash, "eth_getLogs by hash answered removed logs; the block was reorged away");
            return Ok(None);
        }
        if let Some(other) = logs
            .iter()
            .find(|l| l.block_hash.is_some_and(|h| h != block.hash))
        {
            return Err(SourceError::Inconsistent {
                endpoint: self.label().to_string(),
                detail: format!(
                    "eth_getLogs for block {block} answered a log of block {:?} (tx {:?}, index {:?})",
                    other.block_hash, other.transaction_hash, other.log_index
                ),
            });
        }
        Ok(Some(logs))
    }

    /// The header's logs, re-fetched while the bloom says some are missing; a log the
    /// bloom rules out is an inconsistent node.
    async fn checked_logs(
        &self,
        header: &N::HeaderResponse,
    ) -> Result<Option<Vec<Log>>, SourceError> {
        let id = id(header);
        let mut attempt = 0;
        loop {
            let Some(logs) = self.logs_by_hash(id).await? else {
                return Ok(None);
            };
            if let Some(log) = logs.iter().find(|l| !in_bloom(header, l.address())) {
                return Err(SourceError::Inconsistent {
                    endpoint: self.label().to_string(),
                    detail: format!(
                        "block {id}: log {:?} of {} is ruled out by the block's logsBloom",
                        log.log_index,
                        log.address()
                    ),
                });
            }
            let missing = bloom_missing(self.addresses, header, &logs);
            if missing.is_empty() {
                return Ok(Some(logs));
            }
            if attempt >= self.config.bloom_refetches {
                if !self.last {
                    return Err(SourceError::Inconsistent {
                        endpoint: self.label().to_string(),
                        detail: format!(
                            "block {id}: logsBloom announces logs of {missing:?} that eth_getLogs does not return"
                        ),
                    });
                }
                tracing::warn!(endpoint = %self.label(), block = id.number, hash = %id.hash, ?missing, "logsBloom matches tracked contracts without logs after re-fetching; taking it as a bloom false positive");
                return Ok(Some(logs));
            }
            attempt += 1;
            tracing::warn!(endpoint = %self.label(), block = id.number, hash = %id.hash, ?missing, attempt, "eth_getLogs answer misses logs the logsBloom announces; re-fetching");
            tokio::time::sleep(self.config.bloom_refetch_delay).await;
        }
    }

    /// A full block from a header: its logs by hash, checked, decoded. `Ok(None)` if the
    /// block vanished meanwhile.
    pub(crate) async fn complete(
        &self,
        header: N::HeaderResponse,
    ) -> Result<Option<Block>, SourceError> {
        let Some(logs) = self.checked_logs(&header).await? else {
            return Ok(None);
        };
        let due = self.rates_due(header.number(), &logs);
        let mut block = self.decode(&header, logs)?;
        Ok(self.read_rates(&mut block, &due).await?.then_some(block))
    }

    pub(crate) fn decode(
        &self,
        header: &N::HeaderResponse,
        mut logs: Vec<Log>,
    ) -> Result<Block, SourceError> {
        let id = id(header);
        logs.sort_by_key(|l| l.log_index);
        let mut block = Block::empty(to_model(header));
        let mut decoded = crate::decode::DecodedLog::new();
        for log in &logs {
            let (Some(tx_hash), Some(log_index)) = (log.transaction_hash, log.log_index) else {
                return Err(SourceError::Malformed {
                    block: id,
                    tx_hash: log.transaction_hash.unwrap_or_default(),
                    log_index: log.log_index.unwrap_or_default(),
                    reason: "log without transaction hash or log index".into(),
                });
            };
            decoded.clear();
            self.config.decoders.decode_or_undecodable(
                id,
                &log.inner,
                LogId { tx_hash, log_index },
                &mut decoded,
            )?;
            for d in decoded.drain(..) {
                match d {
                    Decoded::Balance(e) => block.events.push(e),
                    Decoded::Price(p) => block.prices.push(p),
                }
            }
        }
        Ok(block)
    }

    pub async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        // The block may be reorged away between the header and its logs: then read the
        // height again.
        for _ in 0..8 {
            let Some(header) = self.header_by_number(number).await? else {
                return Ok(None);
            };
            if let Some(block) = self.complete(header).await? {
                return Ok(Some(block));
            }
            tracing::debug!(endpoint = %self.label(), block = number, "block replaced while fetching its logs; re-reading the height");
        }
        tracing::warn!(endpoint = %self.label(), block = number, "block kept changing while fetched");
        Err(SourceError::NotFound(crate::model::BlockId::Number(number)))
    }

    pub async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        match self.header_by_hash(hash).await? {
            Some(header) => self.complete(header).await,
            None => Ok(None),
        }
    }
}

/// Whether the header's bloom admits logs of `address`. An all-zero bloom admits any log:
/// some nodes serve a zero bloom for blocks with logs (zkSync Era before its 2024 bloom
/// backfill and some of its providers since, Aurora, some Polygon PoS blocks), and a block
/// with logs has a non-zero bloom otherwise.
pub(crate) fn in_bloom<H: BlockHeader>(header: &H, address: Address) -> bool {
    let bloom = header.logs_bloom();
    bloom.is_zero() || bloom.contains_input(BloomInput::Raw(address.as_slice()))
}

/// Tracked addresses the bloom says may have logged in this block, but that have no log
/// in `logs`.
pub(crate) fn bloom_missing<H: BlockHeader>(
    addresses: &[Address],
    header: &H,
    logs: &[Log],
) -> Vec<Address> {
    addresses
        .iter()
        .filter(|a| {
            header
                .logs_bloom()
                .contains_input(BloomInput::Raw(a.as_slice()))
        })
        .filter(|a| !logs.iter().any(|l| l.address() == **a))
        .copied()
        .collect()
}
