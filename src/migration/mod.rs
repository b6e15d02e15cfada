//! Zero-downtime migration from a log-only system to `user_current_balances` (feature
//! `migration`): dual-write, backfill, verify, cutover. The runbook is `docs/migration.md` in
//! the repository.
//!
//! # The ownership rule
//! A backfill is started with a **high-water mark** `H` (by default the newest confirmed
//! block of the history). The backfill owns every history row at or below `H`; the live
//! watcher owns every block above `H`. They never write the same fact:
//!
//! - The backfill folds the history ≤ `H` into its own table (`migration_backfill`),
//!   chunk by chunk (keyset pagination by block number, one transaction per chunk together
//!   with its cursor, so a killed backfill resumes where it stopped), then merges the
//!   result into `user_current_balances` as confirmed rows at block `H` with
//!   `ON CONFLICT DO NOTHING`: a row the watcher already wrote (which already includes
//!   the history ≤ `H`, see below) wins.
//! - Until the merge is done, the watcher runs on a [`MigratingStore`]: a balance with no
//!   confirmed row and no pending row in `user_current_balances` has not been touched since
//!   `H` (otherwise the watcher would have written one), so its value is the history's fold
//!   ≤ `H` for that key, read on demand. The watcher's absolute rows are therefore right
//!   from its first block on, whatever the backfill's progress.
//! - Each merge chunk takes the store's writer lock ([`crate::store::PostgresStore`]
//!   takes it for every changeset), so the merge and the watcher's writes serialize:
//!   no deadlock, no lost update.
//!
//! # Dual-write
//! The watcher always writes the crate's log (`balance_updates`) and the current state in
//! one transaction. [`LegacyLog`] plugged into [`crate::store::PostgresStore::with_legacy_log`]
//! also writes your legacy log table in that same transaction, so readers of the legacy
//! table keep working until the cutover.

mod backfill;
mod history;
mod legacy_write;
mod reads;
mod state;
mod store;
mod verify;

pub use backfill::{Backfill, BackfillConfig, BackfillProgress};
pub use history::{AddressEncoding, AmountColumns, History, LegacyLog, StatusColumn};
pub use reads::{ReadPath, SwitchableReads};
pub use state::{MigrationState, Phase, load_state};
pub use store::MigratingStore;
pub use verify::{Mismatch, VerifyMode, VerifyReport, verify};

use alloy_primitives::Address;

use crate::error::StoreError;

/// What went wrong in a migration step.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// A Postgres statement failed.
    #[error("migration: {operation} failed: {source}")]
    Db {
        /// What was being done.
        operation: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A legacy log mapping is unusable.
    #[error("legacy log mapping: {0}")]
    Mapping(String),
    /// No backfill has been started in this schema.
    #[error("no migration has been started in this schema: start a backfill first")]
    NotStarted,
    /// A backfill of another history is in progress.
    #[error("a backfill of {running} is in progress; refusing to start one of {asked}")]
    OtherHistory {
        /// The history of the backfill in progress.
        running: String,
        /// The history asked for.
        asked: String,
    },
    /// A cutover (or its rollback) names another history than the one the backfill folded:
    /// the table would hold, or the log path would read, balances of another log. The flag
    /// was not changed.
    #[error(
        "the backfill folded {backfilled}; refusing to switch the read path for {asked} (name the backfilled history)"
    )]
    CutoverOfOtherHistory {
        /// The history the backfill folded ([`History::describe`]).
        backfilled: String,
        /// The history the cutover named.
        asked: String,
    },
    /// The history holds rows the toolkit cannot read: a kind code outside the mapping,
    /// a NULL or negative amount.
    #[error(
        "history rows in blocks {from}..={to} are malformed ({count} rows: unknown kind, NULL or negative amount)"
    )]
    MalformedHistory {
        /// First block of the chunk.
        from: u64,
        /// Last block of the chunk.
        to: u64,
        /// Malformed rows in it.
        count: i64,
    },
    /// The history folds to a balance outside `0..2^256` (a debit below zero, an overflow):
    /// the log is inconsistent, nothing was merged.
    #[error("the history folds user {user}'s {asset} balance to {balance}, outside 0..2^256")]
    InvalidBalance {
        /// The user.
        user: Address,
        /// The asset.
        asset: Address,
        /// The folded value.
        balance: String,
    },
    /// An event cannot be written to the legacy table (e.g. an absolute balance event into
    /// a signed-amount column).
    #[error("legacy log: {0}")]
    Unrepresentable(String),
}

/// Maps a sqlx error to [`MigrationError::Db`] naming the operation; a lock or statement
/// timeout becomes the typed [`StoreError::LockTimeout`] / [`StoreError::StatementTimeout`].
pub(crate) fn db(operation: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrationError {
    let operation = operation.into();
    move |source| match crate::store::classify_timeout(operation, source) {
        Ok(typed) => MigrationError::Store(typed),
        Err((operation, source)) => MigrationError::Db { operation, source },
    }
}

/// `U256::MAX` as a SQL numeric literal.
pub(crate) const U256_MAX_SQL: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";
