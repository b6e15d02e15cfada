//! Catch-up over a range from one endpoint: headers in JSON-RPC batches, logs by range
//! (adaptive size), each block's logs checked against its header and re-fetched by hash
//! when they do not match. A bloom hit of a contract whose logs of a later block the
//! ranged answer holds is a bloom false positive, filtered locally: no fetch by hash.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use alloy_network::Network;
use alloy_primitives::{Address, B256};
use alloy_provider::Provider;
use alloy_rpc_client::BatchRequest;
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, Log};
use alloy_transport::RpcError;

use super::endpoint::{Fetch, bloom_missing, id, in_bloom, transport};
use super::policy::is_too_many_results;
use crate::error::SourceError;
use crate::model::{Block, BlockNumber, BlockRef};

impl<N: Network> Fetch<'_, N> {
    /// Headers `from..=to` in JSON-RPC batches of `header_batch` (through the provider's
    /// client, so its transport layers apply).
    async fn headers(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<N::HeaderResponse>, SourceError> {
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let numbers: Vec<BlockNumber> = (from..=to).collect();
        let client = self.ep.provider.client();
        for chunk in numbers.chunks(self.config.header_batch.max(1)) {
            let op = format!("header batch #{}..=#{}", chunk[0], chunk[chunk.len() - 1]);
            let mut batch = BatchRequest::new(client);
            let mut waiters = Vec::with_capacity(chunk.len());
            for n in chunk {
                waiters.push(
                    batch
                        .add_call::<_, Option<N::HeaderResponse>>(
                            "eth_getBlockByNumber",
                            &(BlockNumberOrTag::Number(*n), false),
                        )
                        .map_err(transport(self.label(), &op))?,
                );
            }
            batch.send().await.map_err(transport(self.label(), &op))?;
            for (n, waiter) in chunk.iter().zip(waiters) {
                let header = waiter
                    .await
                    .map_err(transport(
                        self.label(),
                        format_args!("eth_getBlockByNumber #{n}"),
                    ))?
                    .ok_or(SourceError::NotFound(crate::model::BlockId::Number(*n)))?;
                out.push(header);
            }
        }
        Ok(out)
    }

    /// Logs of the tracked contracts in `from..=to`, in sub-ranges of the adaptive size.
    pub(crate) async fn range_logs(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Log>, SourceError> {
        let mut logs = Vec::new();
        let mut start = from;
        while start <= to {
            let size = self.ep.log_range.load(Ordering::Relaxed).max(1);
            let end = to.min(start.saturating_add(size - 1));
            let filter = Filter::new()
                .address(self.addresses.to_vec())
                .from_block(start)
                .to_block(end);
            match self.ep.provider.get_logs(&filter).await {
                Ok(mut chunk) => {
                    logs.append(&mut chunk);
                    start = end + 1;
                }
                Err(RpcError::ErrorResp(e)) if is_too_many_results(&e.message) && size > 1 => {
                    let smaller = (size / 2).max(1);
                    self.ep.log_range.fetch_min(smaller, Ordering::Relaxed);
                    tracing::info!(endpoint = %self.label(), from = start, to = end, range = smaller, message = %e.message, "eth_getLogs range too large; shrinking");
                }
                Err(e) => {
                    return Err(transport(
                        self.label(),
                        format_args!("eth_getLogs #{start}..=#{end}"),
                    )(e));
                }
            }
        }
        Ok(logs)
    }

    /// Headers in batches, logs by range; each block's logs checked against its header hash
    /// and bloom, and re-fetched by hash when they do not match (a bloom hit without logs
    /// matches when the range holds a later log of that contract; see the module docs).
    pub async fn blocks(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Block>, SourceError> {
        let (headers, logs) =
            futures::try_join!(self.headers(from, to), self.range_logs(from, to))?;
        // Per tracked contract, the highest block of a log the ranged answer holds.
        let mut last_log: HashMap<Address, BlockNumber> = HashMap::new();
        let mut by_block: BTreeMap<BlockNumber, Vec<Log>> = BTreeMap::new();
        for log in logs {
            let n = log.block_number.ok_or_else(|| SourceError::Malformed {
                block: BlockRef {
                    number: from,
                    hash: B256::ZERO,
                },
                tx_hash: log.transaction_hash.unwrap_or_default(),
                log_index: log.log_index.unwrap_or_default(),
                reason: "range eth_getLogs answered a log without block number".into(),
            })?;
            let last = last_log.entry(log.address()).or_insert(n);
            *last = (*last).max(n);
            by_block.entry(n).or_default().push(log);
        }
        let mut blocks = Vec::with_capacity(headers.len());
        for header in headers {
            let id = id(&header);
            let logs = by_block.remove(&id.number).unwrap_or_default();
            let answered = logs.iter().all(|l| {
                l.block_hash == Some(id.hash) && !l.removed && in_bloom(&header, l.address())
            });
            let missing = bloom_missing(self.addresses, &header, &logs);
            // A contract the bloom names without a log here, of which the same ranged
            // answer holds a log of a later block: the node's log index covered this
            // block for it, so the bloom hit is a false positive (blooms have them), not
            // a lagging index, and re-fetching this block by hash would return the same.
            let indexed_past = |a: &Address| last_log.get(a).is_some_and(|n| *n > id.number);
            let consistent = answered && missing.iter().all(indexed_past);
            if consistent && !missing.is_empty() {
                tracing::debug!(endpoint = %self.label(), block = id.number, hash = %id.hash, ?missing, "logsBloom names tracked contracts without logs, and the ranged answer holds their later logs: a bloom false positive");
            }
            let read = if consistent {
                let due = self.rates_due(id.number, &logs);
                let mut block = self.decode(&header, logs)?;
                self.read_rates(&mut block, &due).await?.then_some(block)
            } else {
                None
            };
            let block = if let Some(block) = read {
                block
            } else {
                tracing::debug!(endpoint = %self.label(), block = id.number, hash = %id.hash, "range logs do not match the header; fetching by hash");
                match self.complete(header).await? {
                    Some(block) => block,
                    // Reorged away during the fetch: deliver the height's current block; the
                    // watcher sees the broken link and walks back.
                    None => self
                        .block_by_number(id.number)
                        .await?
                        .ok_or(SourceError::NotFound(crate::model::BlockId::Number(
                            id.number,
                        )))?,
                }
            };
            blocks.push(block);
        }
        Ok(blocks)
    }
}
