use std::collections::BTreeSet;
use std::fmt::Debug;
use std::ops::RangeInclusive;

use alloy_primitives::U256;
use async_trait::async_trait;

use super::{AssetStateReader, BalanceReader, LogReader, PriceFeed, RateFeed};
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, AssetState, BalanceKey, BlockHeader, BlockNumber, Changeset, Price,
    StateRef, StoreIdentity, UserId, Window,
};

/// Users and priced assets with pending state in a range of blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Users with a pending balance row in the range.
    pub users: BTreeSet<UserId>,
    /// Assets with a pending price or vault rate in the range.
    pub price_assets: BTreeSet<AssetId>,
}

impl Touched {
    /// Adds everything `other` touched.
    pub fn merge(&mut self, other: Touched) {
        self.users.extend(other.users);
        self.price_assets.extend(other.price_assets);
    }
}

/// What the single writer needs from persistent state: the checkpoint, the base state of
/// a transition, the atomic write, and which users a revert or a finalization touches.
///
/// # Contract
/// - [`apply`](Self::apply) is atomic: after a crash, either all of a [`Changeset`] is
///   visible or none of it. It performs, in order:
///   1. **revert**: drop the pending balances, pending prices and headers of every block
///      in `changes.revert` (all above the fork point) and mark their log rows reverted;
///   2. **append**: for each of `changes.blocks`, store its header, its log rows (pending),
///      and for each touched balance the balance *after* that block, as a pending row of
///      that block; likewise its accepted prices;
///   3. **finalize**: if `changes.finalize` is set to height `h`, each balance and price
///      becomes its latest row at or below `h`, confirmed; pending rows at or below `h`
///      and headers below `h` are dropped; log rows at or below `h` become confirmed.
/// - Two pending blocks touching the same balance keep two rows: reverting the newer one
///   or confirming the older one leaves the other intact.
/// - A changeset may only revert (no new block): the chain then ends at the fork point.
/// - Reads never block the writer and see a committed state.
/// - The engine asks only for heights at or above the finalized height.
#[async_trait]
pub trait StoreWriter: Send + Sync + Debug {
    /// The checkpoint: finalized block and unconfirmed headers. Empty for a fresh store.
    async fn window(&self) -> Result<Window, StoreError>;

    /// The latest applied block, `window().head()`: what a reader values collateral at,
    /// on every read. A store whose window read is more than a few rows overrides it with a
    /// read of the head alone; the default reads the window (correct for any store, and
    /// for a decorator that does not forward it).
    async fn head(&self) -> Result<Option<BlockHeader>, StoreError> {
        Ok(self.window().await?.head().copied())
    }

    /// The head block and the store's state (the head and the finalized height, see
    /// [`StateRef`]) read at once, without the rest of the window: what a reader compares
    /// before and after a read to know that it read one state. The default reads the
    /// window; a store that overrides [`head`](Self::head) overrides this too.
    async fn head_state(&self) -> Result<Option<(BlockHeader, StateRef)>, StoreError> {
        let window = self.window().await?;
        Ok(window.head().copied().zip(window.state()))
    }

    /// Each key's balance after block `at` on the stored canonical chain (zero if never set).
    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError>;

    /// Each asset's latest accepted price at or below block `at`.
    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError>;

    /// Each asset's latest index at or below block `at` (`None`: not rebasing), the base
    /// indexes of a transition (see [`AssetIndex`](crate::model::AssetIndex)).
    ///
    /// Required, not provided: a decorator that forgot to forward it would fold a rebasing
    /// token's amounts as shares.
    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError>;

    /// Each asset's [`AssetState`] after block `at` on the stored canonical chain (active if
    /// never quarantined): the base state of a transition, read like
    /// [`prices_at`](Self::prices_at).
    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<AssetState>, StoreError>;
    /// Applies a changeset atomically (see the trait docs).
    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError>;

    /// Users and assets with pending state in `blocks` (read before a revert or a
    /// finalization drops that state, to know whose collateral it changes).
    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError>;

    /// Claims this store for one writer following one chain with one asset registry; the
    /// writer calls it once before its first [`apply`](Self::apply).
    ///
    /// A store that can be shared between processes keeps the claim for this handle's
    /// lifetime (and its clones'): a claim through another handle while it is held fails
    /// with [`StoreError::WriterTaken`] naming the holder. The first claim records
    /// `identity`; a claim with another identity fails with
    /// [`StoreError::IdentityMismatch`] naming both. Claiming again through the same handle
    /// with the same identity succeeds. On error nothing was written.
    ///
    /// Required, not provided: a decorator that forgot to forward it would silently drop
    /// the inner store's writer lock and identity check (the conformance suite's
    /// `claim_writer_identity` checks it).
    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError>;

    /// Gives up this handle's writer claim (a graceful shutdown), so that another writer
    /// claims at once instead of waiting for the handle to be dropped. A store without a
    /// lock does nothing (the default). After it, this handle must not
    /// [`apply`](Self::apply) again before claiming again.
    async fn release_writer(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The resumes of quarantined assets that another process asked for
    /// (`reorg-collateral quarantine resume`, through `PostgresStore::request_resume` or
    /// `MemoryStore::request_resume`), oldest first. Reading does not remove them: a
    /// request stays stored until the watcher
    /// [removes](Self::remove_resume_request) it after the block carrying its resume
    /// commits (or after dropping it), so a crash between the read and that write loses
    /// none. A store without such requests returns none (the default); a decorator
    /// forwards it.
    async fn resume_requests(&self) -> Result<Vec<crate::model::ResumeRequest>, StoreError> {
        Ok(Vec::new())
    }

    /// Removes `request` (one returned by [`resume_requests`](Self::resume_requests)) once
    /// its resume is committed or the watcher dropped it. Idempotent: a request no longer
    /// stored is no error, and a newer request for the asset with another `at_block` is
    /// left stored. A store without such requests does nothing (the default); a decorator
    /// forwards it.
    async fn remove_resume_request(
        &self,
        request: &crate::model::ResumeRequest,
    ) -> Result<(), StoreError> {
        let _ = request;
        Ok(())
    }
}

/// Everything the [`Watcher`](crate::watcher::Watcher) needs, as one handle: the writer's
/// side, the readers' side, the audit log, the prices and rates the store ingests and the
/// assets' quarantines. Implemented for every type that implements the six role traits;
/// pass it once as `Arc<dyn BalanceStore>` (it upcasts to any of them).
pub trait BalanceStore:
    StoreWriter + BalanceReader + LogReader + PriceFeed + RateFeed + AssetStateReader
{
}

impl<T: StoreWriter + BalanceReader + LogReader + PriceFeed + RateFeed + AssetStateReader + ?Sized>
    BalanceStore for T
{
}
