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
///
/// # Decorators
/// A decorator (progress, metrics, throttling) implements the trait around another
/// source and forwards every method the store's identity and finality depend on:
/// [`chain_id`](Self::chain_id) and [`finalized`](Self::finalized) have no default, so
/// forgetting one does not compile:
///
/// ```compile_fail,E0046
/// use std::sync::Arc;
/// use reorg_collateral::{BlockSource, SourceError};
/// use reorg_collateral::model::{Block, BlockNumber};
///
/// #[derive(Debug)]
/// struct Logged(Arc<dyn BlockSource>);
///
/// #[async_trait::async_trait]
/// impl BlockSource for Logged {
///     async fn head(&self) -> Result<BlockNumber, SourceError> {
///         self.0.head().await
///     }
///     async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
///         self.0.block_by_number(n).await
///     }
///     async fn block_by_hash(
///         &self,
///         h: alloy_primitives::B256,
///     ) -> Result<Option<Block>, SourceError> {
///         self.0.block_by_hash(h).await
///     }
///     // No `chain_id`, no `finalized`: error[E0046], not a store claimed with no chain.
/// }
/// ```
///
/// Forwarding them compiles:
///
/// ```
/// # use std::sync::Arc;
/// # use reorg_collateral::{BlockSource, SourceError};
/// # use reorg_collateral::model::{Block, BlockNumber};
/// # #[derive(Debug)]
/// # struct Logged(Arc<dyn BlockSource>);
/// #[async_trait::async_trait]
/// impl BlockSource for Logged {
/// #   async fn head(&self) -> Result<BlockNumber, SourceError> {
/// #       self.0.head().await
/// #   }
/// #   async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
/// #       self.0.block_by_number(n).await
/// #   }
/// #   async fn block_by_hash(
/// #       &self,
/// #       h: alloy_primitives::B256,
/// #   ) -> Result<Option<Block>, SourceError> {
/// #       self.0.block_by_hash(h).await
/// #   }
///     // head, block_by_number, block_by_hash as above, and:
///     async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
///         self.0.chain_id().await
///     }
///     async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
///         self.0.finalized().await
///     }
/// }
/// ```
#[async_trait]
pub trait BlockSource: Send + Sync + Debug {
    /// The latest block height.
    async fn head(&self) -> Result<BlockNumber, SourceError>;

    /// The canonical block at `number`, or `None` above the head.
    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError>;

    /// The block with this hash, canonical or not, or `None` if unknown.
    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError>;

    /// The chain id, if the source knows it: recorded by the store on the first claim,
    /// so a store refuses a writer following another chain (`None`: the store's claim
    /// records no chain, and no chain check is made).
    ///
    /// Required, not provided: a decorator that forgot to forward it would claim the
    /// store with no chain, switching the one-chain-per-store check off (and a later
    /// writer through the undecorated source would be refused with
    /// [`IdentityMismatch`](crate::error::StoreError::IdentityMismatch)).
    async fn chain_id(&self) -> Result<Option<u64>, SourceError>;

    /// The height the node reports as finalized, if it reports one (`None`: the engine
    /// confirms by depth only).
    ///
    /// Required, not provided: a decorator that forgot to forward it would confirm
    /// blocks at the configured depth while the node's finality tag lags further behind.
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError>;

    /// Balances read from the chain (`balanceOf`), if the source can read them: the
    /// watcher's opening balances use it ([`Openings`](crate::watcher::Openings)).
    /// Default `None` (a decorator forwards it to read openings through the inner source).
    fn chain_balances(&self) -> Option<&dyn crate::traits::ChainBalances> {
        None
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
