use std::fmt::Debug;
use std::ops::RangeInclusive;

use async_trait::async_trait;

use super::history::{HistoryAt, HistoryError, LogSide, UserLog};
use crate::error::StoreError;
use crate::model::{AssetId, BalanceKey, BlockNumber, BlockRef, Effect, LogId, Price, UserId};

/// Status of a row of the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// Ordinal of the effect within the log: `part << 1 | effect`, `part` the event's
    /// [`part`](crate::model::BalanceEvent::part) and `effect` its index within the event
    /// (a transfer has a debit `0` and a credit `1`).
    pub ordinal: u16,
    /// The balance affected.
    pub key: BalanceKey,
    /// What the event did to it.
    pub effect: Effect,
    /// Whether the block is pending, confirmed or reverted.
    pub status: LogStatus,
}

/// The audit side: the append-only event log, the truth every balance derives from.
#[async_trait]
pub trait LogReader: Send + Sync + Debug {
    /// Log rows of `blocks` (all statuses), ordered by block, log and ordinal, a block's
    /// correction rows ([`Effect::Reconcile`], synthetic log ids from 2^62) first, as
    /// they apply before its events. A store with
    /// a retention policy answers the rows it keeps (the
    /// [`MemoryStore`](crate::store::MemoryStore) keeps a bounded window of confirmed
    /// blocks by default, see [`Retention`](crate::store::Retention)).
    ///
    /// One row per (block hash, log, ordinal), whatever the history: a block reorged out
    /// keeps its rows, marked [`LogStatus::Reverted`]; a block that comes back (same hash,
    /// e.g. after A → B → A at one height) revives those rows with its new status instead
    /// of appending duplicates. After A → B → A the height holds B's rows (reverted) and A's
    /// (pending), nothing else.
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError>;

    /// The latest `limit` rows of one balance on `side`, latest first, and whether older
    /// ones exist: the rows `explain` shows. Cost: O(rows of the user) with the store's
    /// per-user index. A store without one answers [`HistoryError::Unsupported`] (the
    /// default; a decorator forwards it).
    async fn user_log(
        &self,
        key: BalanceKey,
        side: LogSide,
        limit: usize,
    ) -> Result<UserLog, HistoryError> {
        let _ = (key, side, limit);
        Err(HistoryError::Unsupported {
            backend: "this",
            what: "user_log",
        })
    }

    /// `user`'s confirmed state after the finalized block `block`, from the log: each
    /// balance the fold of the user's rows at or below it, each price the latest accepted
    /// at or below it. Cost: O(rows of the user) with the store's history index.
    ///
    /// Refused with a typed [`HistoryError`] for a block above the finalized height, below
    /// the store's first block, below a memory store's retained horizon, or below a
    /// migration backfill's high-water. A store without history answers
    /// [`HistoryError::Unsupported`] (the default; a decorator forwards it).
    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<HistoryAt, HistoryError> {
        let _ = (user, block);
        Err(HistoryError::Unsupported {
            backend: "this",
            what: "history_at",
        })
    }

    /// The latest price of each of `assets` accepted at or below the finalized block
    /// `block` (same order): the prices of price keys (a `SameAs` feed, a vault's
    /// underlying) that [`history_at`](Self::history_at) does not name. Refused like
    /// `history_at`; a store without history answers [`HistoryError::Unsupported`] (the
    /// default; a decorator forwards it).
    async fn history_prices(
        &self,
        assets: &[AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<Price>>, HistoryError> {
        let _ = (assets, block);
        Err(HistoryError::Unsupported {
            backend: "this",
            what: "history_prices",
        })
    }
}
