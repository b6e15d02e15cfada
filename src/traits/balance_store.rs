use std::collections::BTreeSet;
use std::fmt::Debug;

use alloy_primitives::U256;
use async_trait::async_trait;

use crate::engine::{Changeset, Window};
use crate::error::StoreError;
use crate::model::{
    AssetId, BalanceKey, BalanceView, BlockNumber, BlockRef, Effect, LogId, Price, StoreIdentity,
    UserId,
};

/// Status of a row of the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStatus {
    /// In an unconfirmed canonical block.
    Pending,
    /// In a finalized block.
    Confirmed,
    /// In a block that a reorg removed from the canonical chain. Kept: the log is append-only.
    Reverted,
}

/// One row of the append-only event log: one effect of one event on one balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogRecord {
    /// The block that carried the event.
    pub block: BlockRef,
    /// The event's log.
    pub log: LogId,
    /// Ordinal of the effect within the event (a transfer has a debit `0` and a credit `1`).
    pub ordinal: u8,
    /// The balance affected.
    pub key: BalanceKey,
    /// What the event did to it.
    pub effect: Effect,
    /// Whether the block is pending, confirmed or reverted.
    pub status: LogStatus,
}

/// Users and priced assets with pending state in a range of blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Users with a pending balance row in the range.
    pub users: BTreeSet<UserId>,
    /// Assets with a pending price in the range.
    pub price_assets: BTreeSet<AssetId>,
}

/// Persistent state: the append-only event log, confirmed and per-block pending balances,
/// pending and confirmed prices, the headers of the unconfirmed window and the checkpoint.
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
/// - Reads never block the writer and see a committed state.
/// - The engine asks only for heights at or above the finalized height.
#[async_trait]
pub trait BalanceStore: Send + Sync + Debug {
    /// The checkpoint: finalized block and unconfirmed headers. Empty for a fresh store.
    async fn window(&self) -> Result<Window, StoreError>;

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

    /// Applies a changeset atomically (see the trait docs).
    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError>;

    /// One balance, confirmed and pending.
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError>;

    /// All balances of a user with any state, ordered by asset. Cost: O(assets of the user).
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError>;

    /// Users and assets with pending state in blocks `from..=to`.
    async fn touched(&self, from: BlockNumber, to: BlockNumber) -> Result<Touched, StoreError>;

    /// Users that hold (or held) `asset`, for refreshing them after a price change.
    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError>;

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
    /// The provided implementation accepts everything: a store without ownership or
    /// identity to check.
    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        let _ = identity;
        Ok(())
    }

    /// Log rows of blocks `from..=to` (all statuses), ordered by block, log and ordinal.
    ///
    /// One row per (block hash, log, ordinal), whatever the history: a block reorged out
    /// keeps its rows, marked [`LogStatus::Reverted`]; a block that comes back (same hash,
    /// e.g. after A → B → A at one height) revives those rows with its new status instead
    /// of appending duplicates. After A → B → A the height holds B's rows (reverted) and A's
    /// (pending), nothing else.
    async fn log(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<LogRecord>, StoreError>;
}
