//! [`RpcBlockSource`]: blocks from an Ethereum node over JSON-RPC (alloy, HTTP). Running it
//! against a local dev node: `docs/rpc.md` in the repository.
//!
//! - Each block is its header (`eth_getBlockByNumber` / `eth_getBlockByHash`) plus
//!   `eth_getLogs` **by block hash** for the tracked contracts, so a log can never come from
//!   a sibling fork of its header. Logs are decoded with the [`Decoders`] registry.
//! - **Catch-up** ([`BlockSource::blocks`]) fetches headers in one JSON-RPC batch and logs
//!   with range `eth_getLogs` (range size halves when the node answers "too many results"),
//!   then checks every log against the header it is filed under; a log whose block hash
//!   differs (a reorg during the fetch) makes that block re-fetched by hash.
//! - **Missing logs are not reorgs**: every block's `logsBloom` is checked against the
//!   answer; if the bloom says a tracked contract may have logged and the answer has none
//!   of its logs, the logs are fetched again by block hash ([`RpcConfig::bloom_refetches`]
//!   times) before the bloom hit is accepted as a false positive (logged at `warn`).
//! - **Faults**: timeouts, HTTP 429 and JSON-RPC limit errors are retried with backoff and
//!   jitter by [`RetryLayer`], a tower layer under the client, not by this code.
//! - **Finality** follows the node's `finalized` (or `safe`) tag; a node that does not
//!   know the tag yields `None` and the engine confirms by depth.

mod retry;
mod wire;
#[cfg(feature = "rpc-ws")]
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloy_primitives::{Address, B256, BloomInput, U64};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_transport::{RpcError, TransportError};
use async_trait::async_trait;

pub use retry::{RetryConfig, RetryLayer, RetryService};

use self::wire::{LogFilter, RpcHeader, RpcLog as Log};
use crate::decode::{Decoded, Decoders};
use crate::error::SourceError;
use crate::model::{Block, BlockNumber, BlockRef, LogId};
use crate::traits::BlockSource;

/// Which node tag confirms blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinalityTag {
    /// The `finalized` tag (proof-of-stake finality).
    #[default]
    Finalized,
    /// The `safe` tag (justified; earlier, weaker).
    Safe,
    /// Ignore the node's tags; the engine confirms by depth.
    None,
}

/// Settings of an [`RpcBlockSource`].
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Tracked contracts and how to decode their logs.
    pub decoders: Decoders,
    /// The tag `finalized()` reads.
    pub finality: FinalityTag,
    /// Largest block range of one `eth_getLogs` call during catch-up; halved (down to 1)
    /// whenever the node answers "too many results", and kept at the smaller size from then on.
    pub max_log_range: u64,
    /// Headers requested per JSON-RPC batch during catch-up.
    pub header_batch: usize,
    /// Extra `eth_getLogs` by hash when the bloom says logs are missing.
    pub bloom_refetches: u32,
    /// Retry and timeout settings of the transport layer.
    pub retry: RetryConfig,
}

impl RpcConfig {
    /// Defaults: `finalized` tag, ranges of up to 2,000 blocks, batches of 200 headers,
    /// 2 bloom re-fetches, [`RetryConfig::default`].
    pub fn new(decoders: Decoders) -> Self {
        Self {
            decoders,
            finality: FinalityTag::Finalized,
            max_log_range: 2_000,
            header_batch: 200,
            bloom_refetches: 2,
            retry: RetryConfig::default(),
        }
    }
}

/// A [`BlockSource`] reading an Ethereum node over JSON-RPC. See the [module docs](self).
#[derive(Debug)]
pub struct RpcBlockSource {
    client: RpcClient,
    config: RpcConfig,
    addresses: Arc<Vec<Address>>,
    log_range: AtomicU64,
    no_finality_tag: AtomicBool,
}

fn transport(operation: impl Into<String>) -> impl FnOnce(TransportError) -> SourceError {
    let operation = operation.into();
    move |e| SourceError::Transport {
        operation,
        source: Box::new(e),
    }
}

impl RpcBlockSource {
    /// A source over HTTP at `url`, with the [`RetryLayer`] of `config.retry`.
    pub fn http(url: &str, config: RpcConfig) -> Result<Self, SourceError> {
        let parsed = url.parse().map_err(|e| SourceError::Transport {
            operation: format!("parse RPC URL {url:?}"),
            source: Box::new(e),
        })?;
        let client = ClientBuilder::default()
            .layer(RetryLayer::new(config.retry))
            .http(parsed);
        Ok(Self::new(client, config))
    }

    /// A source over an existing client (any transport and layers the user built).
    pub fn new(client: RpcClient, config: RpcConfig) -> Self {
        let mut addresses: Vec<Address> = config.decoders.addresses().copied().collect();
        addresses.sort();
        Self {
            client,
            log_range: AtomicU64::new(config.max_log_range.max(1)),
            config,
            addresses: Arc::new(addresses),
            no_finality_tag: AtomicBool::new(false),
        }
    }

    /// The underlying client (for calls the source does not make, e.g. `eth_call`).
    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// The current adaptive `eth_getLogs` range.
    pub fn log_range(&self) -> u64 {
        self.log_range.load(Ordering::Relaxed)
    }

    async fn header_by_number(
        &self,
        number: BlockNumber,
    ) -> Result<Option<RpcHeader>, SourceError> {
        self.client
            .request("eth_getBlockByNumber", (U64::from(number), false))
            .await
            .map_err(transport(format!("eth_getBlockByNumber #{number}")))
    }

    async fn header_by_hash(&self, hash: B256) -> Result<Option<RpcHeader>, SourceError> {
        self.client
            .request("eth_getBlockByHash", (hash, false))
            .await
            .map_err(transport(format!("eth_getBlockByHash {hash}")))
    }

    /// Logs of the tracked contracts in the block `hash`. `Ok(None)`: the node no longer
    /// knows the block (it was reorged away between the header and this call).
    async fn logs_by_hash(&self, block: BlockRef) -> Result<Option<Vec<Log>>, SourceError> {
        let filter = LogFilter::at_hash(&self.addresses, block.hash);
        match self.client.request("eth_getLogs", (filter,)).await {
            Ok(logs) => Ok(Some(logs)),
            Err(RpcError::ErrorResp(e)) if is_unknown_block(&e.message) => Ok(None),
            Err(e) => Err(transport(format!("eth_getLogs block {block}"))(e)),
        }
    }

    /// The header's logs, re-fetched while the bloom says some are missing.
    async fn checked_logs(&self, header: &RpcHeader) -> Result<Option<Vec<Log>>, SourceError> {
        let id = header.id();
        let mut attempt = 0;
        loop {
            let Some(logs) = self.logs_by_hash(id).await? else {
                return Ok(None);
            };
            verify_logs(id, &logs)?;
            let missing = self.bloom_missing(header, &logs);
            if missing.is_empty() {
                return Ok(Some(logs));
            }
            if attempt >= self.config.bloom_refetches {
                tracing::warn!(block = id.number, hash = %id.hash, ?missing, "logsBloom matches tracked contracts without logs after re-fetching; taking it as a bloom false positive");
                return Ok(Some(logs));
            }
            attempt += 1;
            tracing::warn!(block = id.number, hash = %id.hash, ?missing, attempt, "eth_getLogs answer misses logs the logsBloom announces; re-fetching");
            tokio::time::sleep(self.config.retry.backoff(attempt)).await;
        }
    }

    /// Tracked addresses the bloom says may have logged in this block, but that have no log
    /// in `logs`.
    fn bloom_missing(&self, header: &RpcHeader, logs: &[Log]) -> Vec<Address> {
        self.addresses
            .iter()
            .filter(|a| {
                header
                    .logs_bloom
                    .contains_input(BloomInput::Raw(a.as_slice()))
            })
            .filter(|a| !logs.iter().any(|l| l.address == **a))
            .copied()
            .collect()
    }

    /// A full block from a header: its logs by hash, checked, decoded. `Ok(None)` if the
    /// block vanished meanwhile.
    async fn complete(&self, header: RpcHeader) -> Result<Option<Block>, SourceError> {
        match self.checked_logs(&header).await? {
            Some(logs) => self.decode(&header, logs).map(Some),
            None => Ok(None),
        }
    }

    fn decode(&self, header: &RpcHeader, mut logs: Vec<Log>) -> Result<Block, SourceError> {
        let id = header.id();
        logs.sort_by_key(|l| l.index());
        let mut block = Block::empty(header.to_model());
        for log in &logs {
            let (Some(tx_hash), Some(log_index)) = (log.transaction_hash, log.index()) else {
                return Err(SourceError::Malformed {
                    block: id,
                    tx_hash: log.transaction_hash.unwrap_or_default(),
                    log_index: log.index().unwrap_or_default(),
                    reason: "log without transaction hash or log index".into(),
                });
            };
            match self.config.decoders.decode(
                id,
                &log.to_primitive(),
                LogId { tx_hash, log_index },
            )? {
                Some(Decoded::Balance(e)) => block.events.push(e),
                Some(Decoded::Price(p)) => block.prices.push(p),
                None => {}
            }
        }
        Ok(block)
    }

    /// Headers `from..=to` in JSON-RPC batches of `header_batch`.
    async fn headers(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<RpcHeader>, SourceError> {
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let numbers: Vec<BlockNumber> = (from..=to).collect();
        for chunk in numbers.chunks(self.config.header_batch.max(1)) {
            let op = || format!("header batch #{}..=#{}", chunk[0], chunk[chunk.len() - 1]);
            let mut batch = self.client.new_batch();
            let mut waiters = Vec::with_capacity(chunk.len());
            for n in chunk {
                waiters.push(
                    batch
                        .add_call::<_, Option<RpcHeader>>(
                            "eth_getBlockByNumber",
                            &(U64::from(*n), false),
                        )
                        .map_err(transport(op()))?,
                );
            }
            batch.send().await.map_err(transport(op()))?;
            for (n, waiter) in chunk.iter().zip(waiters) {
                let header = waiter
                    .await
                    .map_err(transport(format!("eth_getBlockByNumber #{n}")))?
                    .ok_or_else(|| SourceError::NotFound(format!("#{n}")))?;
                out.push(header);
            }
        }
        Ok(out)
    }

    /// Logs of the tracked contracts in `from..=to`, in sub-ranges of the adaptive size.
    async fn range_logs(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Log>, SourceError> {
        let mut logs = Vec::new();
        let mut start = from;
        while start <= to {
            let size = self.log_range();
            let end = to.min(start.saturating_add(size - 1));
            let filter = LogFilter::range(&self.addresses, start, end);
            match self
                .client
                .request::<_, Vec<Log>>("eth_getLogs", (filter,))
                .await
            {
                Ok(mut chunk) => {
                    logs.append(&mut chunk);
                    start = end + 1;
                }
                Err(RpcError::ErrorResp(e))
                    if retry::is_too_many_results(&e.message) && size > 1 =>
                {
                    let smaller = (size / 2).max(1);
                    self.log_range.fetch_min(smaller, Ordering::Relaxed);
                    tracing::info!(from = start, to = end, range = smaller, message = %e.message, "eth_getLogs range too large; shrinking");
                }
                Err(e) => return Err(transport(format!("eth_getLogs #{start}..=#{end}"))(e)),
            }
        }
        Ok(logs)
    }
}

fn is_unknown_block(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unknown block") || m.contains("not found") || m.contains("cannot find")
}

/// Checks logs claimed to be of `block`: none removed, all carrying its hash.
fn verify_logs(block: BlockRef, logs: &[Log]) -> Result<(), SourceError> {
    for log in logs {
        if log.removed || log.block_hash.is_some_and(|h| h != block.hash) {
            return Err(SourceError::Malformed {
                block,
                tx_hash: log.transaction_hash.unwrap_or_default(),
                log_index: log.index().unwrap_or_default(),
                reason: format!(
                    "eth_getLogs by hash answered a log of block {:?} (removed: {})",
                    log.block_hash, log.removed
                ),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl BlockSource for RpcBlockSource {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        let n: U64 = self
            .client
            .request_noparams("eth_blockNumber")
            .await
            .map_err(transport("eth_blockNumber"))?;
        Ok(n.to())
    }

    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        // The block may be reorged away between the header and its logs: then read the
        // height again.
        for _ in 0..8 {
            let Some(header) = self.header_by_number(number).await? else {
                return Ok(None);
            };
            if let Some(block) = self.complete(header).await? {
                return Ok(Some(block));
            }
            tracing::debug!(
                block = number,
                "block replaced while fetching its logs; re-reading the height"
            );
        }
        Err(SourceError::NotFound(format!(
            "#{number} (kept changing while fetched)"
        )))
    }

    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        match self.header_by_hash(hash).await? {
            Some(header) => self.complete(header).await,
            None => Ok(None),
        }
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        let tag = match self.config.finality {
            FinalityTag::Finalized => "finalized",
            FinalityTag::Safe => "safe",
            FinalityTag::None => return Ok(None),
        };
        if self.no_finality_tag.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match self
            .client
            .request::<_, Option<RpcHeader>>("eth_getBlockByNumber", (tag, false))
            .await
        {
            Ok(header) => Ok(header.map(|h| h.number.to())),
            Err(RpcError::ErrorResp(e)) => {
                tracing::info!(tag, code = e.code, message = %e.message, "node does not support the finality tag; confirming by depth");
                self.no_finality_tag.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(transport(format!("eth_getBlockByNumber {tag}"))(e)),
        }
    }

    /// Headers in JSON-RPC batches, logs by range; each block's logs checked against its
    /// header hash and bloom, and re-fetched by hash when they do not match.
    async fn blocks(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<Block>, SourceError> {
        if from > to {
            return Ok(Vec::new());
        }
        let (headers, logs) =
            futures::try_join!(self.headers(from, to), self.range_logs(from, to))?;
        let mut by_block: BTreeMap<BlockNumber, Vec<Log>> = BTreeMap::new();
        for log in logs {
            let n = log.number().ok_or_else(|| SourceError::Malformed {
                block: BlockRef {
                    number: from,
                    hash: B256::ZERO,
                },
                tx_hash: log.transaction_hash.unwrap_or_default(),
                log_index: log.index().unwrap_or_default(),
                reason: "range eth_getLogs answered a log without block number".into(),
            })?;
            by_block.entry(n).or_default().push(log);
        }
        let mut blocks = Vec::with_capacity(headers.len());
        for header in headers {
            let id = header.id();
            let logs = by_block.remove(&id.number).unwrap_or_default();
            let consistent = logs
                .iter()
                .all(|l| l.block_hash == Some(id.hash) && !l.removed)
                && self.bloom_missing(&header, &logs).is_empty();
            let block = if consistent {
                self.decode(&header, logs)?
            } else {
                tracing::debug!(block = id.number, hash = %id.hash, "range logs do not match the header; fetching by hash");
                match self.complete(header).await? {
                    Some(block) => block,
                    // Reorged away during the fetch: deliver the height's current block; the
                    // watcher sees the broken link and walks back.
                    None => self
                        .block_by_number(id.number)
                        .await?
                        .ok_or_else(|| SourceError::NotFound(format!("#{}", id.number)))?,
                }
            };
            blocks.push(block);
        }
        Ok(blocks)
    }
}

#[cfg(test)]
mod tests;
