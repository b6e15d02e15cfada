use std::fmt::Debug;

use alloy_primitives::B256;
use async_trait::async_trait;

use crate::error::SourceError;
use crate::model::{Block, BlockNumber};

/// Where blocks come from: a node over JSON-RPC, a simulated chain, a recording.
///
/// # Contract
/// - [`block_by_number`](Self::block_by_number) returns the block the source currently
///   considers canonical at that height, with the decoded events of the tracked contracts
///   and the oracle updates of the tracked feeds, both in log order. The events must come
///   from that very block (fetch logs by block hash), never from a sibling fork.
/// - [`block_by_hash`](Self::block_by_hash) returns any block the source knows, canonical or
///   not; the watcher uses it to walk back from a new head to the fork point.
/// - [`head`](Self::head) is the latest height; it may go backwards after a reorg.
/// - [`finalized`](Self::finalized) is the node's `finalized` tag (or `safe`, if the user so
///   chooses), `None` when the node has none; the engine then confirms by depth only.
/// - Transient failures are [`SourceError::Transport`]; the watcher returns them to the
///   caller, who may retry: no state changes on a failed fetch.
#[async_trait]
pub trait BlockSource: Send + Sync + Debug {
    /// The latest block height.
    async fn head(&self) -> Result<BlockNumber, SourceError>;

    /// The canonical block at `number`, or `None` above the head.
    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError>;

    /// The block with this hash, canonical or not, or `None` if unknown.
    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError>;

    /// The height the node reports as finalized, if it reports one.
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        Ok(None)
    }

    /// The canonical blocks `from..=to` in order (empty if `from > to`), for catch-up.
    /// A height above the head is [`SourceError::NotFound`]. The default fetches each with
    /// [`block_by_number`](Self::block_by_number), one after another; sources that can
    /// fetch ranges more cheaply (e.g. range `eth_getLogs`) override it. The watcher calls
    /// it for several chunks concurrently.
    async fn blocks(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<Block>, SourceError> {
        let mut blocks = Vec::with_capacity(to.saturating_sub(from).saturating_add(1) as usize);
        for n in from..=to {
            let block = self
                .block_by_number(n)
                .await?
                .ok_or(SourceError::NotFound(crate::model::BlockId::Number(n)))?;
            blocks.push(block);
        }
        Ok(blocks)
    }
}
