//! The history side of the event log: a balance's latest rows (what `explain` shows) and a
//! user's confirmed state at a past block (what `collateral_at_block` values), with the
//! typed refusals of a store that does not hold that history.

use alloy_primitives::U256;

use super::LogRecord;
use crate::error::StoreError;
use crate::model::{AssetId, AssetStateView, BlockHeader, BlockNumber, Price, RateUpdate};

/// Which rows of a balance's log [`LogReader::user_log`](super::LogReader::user_log) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogSide {
    /// Rows of finalized blocks: what the confirmed balance is the fold of.
    Confirmed,
    /// Rows of every canonical block (finalized or not): what the pending balance is the
    /// fold of.
    Canonical,
}

/// The latest log rows of one balance, latest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserLog {
    /// At most the asked number of rows, latest first (by block, log index, ordinal).
    pub rows: Vec<LogRecord>,
    /// Whether older rows of that side exist beyond `rows`.
    pub truncated: bool,
}

/// A user's confirmed state after a past block, read from the log: what
/// [`CollateralReader::collateral_at_block`](crate::reader::CollateralReader::collateral_at_block)
/// values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryAt {
    /// The block (canonical and finalized); its timestamp is the valuation time.
    pub header: BlockHeader,
    /// The user's balance of every asset with a log row at or below the block (zeros
    /// included), ascending by asset. A rebasing asset's balance is its shares after the
    /// block converted with its index after the block, as the live read converts them.
    pub balances: Vec<(AssetId, U256)>,
    /// For each asset of `balances` (same order), the latest price accepted at or below
    /// the block.
    pub prices: Vec<Option<Price>>,
    /// For each asset of `balances` (same order), the latest vault rate accepted at or
    /// below the block (`None` for an asset no block carried a rate of).
    pub rates: Vec<Option<RateUpdate>>,
    /// The assets of `balances` quarantined after the block (quarantined at or before it
    /// and not resumed by it), ascending by asset, both sides that one state.
    pub states: Vec<AssetStateView>,
}

/// Why a store cannot answer a past block. Every variant is a read: nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The block is above the finalized height: its state may still be reorged.
    #[error("block #{block} is not final (finalized height {finalized:?}); nothing was written")]
    NotFinal {
        /// The block asked for.
        block: BlockNumber,
        /// The store's finalized height, if any.
        finalized: Option<BlockNumber>,
    },
    /// The block is below the first block the store applied: it never saw that state.
    #[error("block #{block} is below the store's first block {first:?}; nothing was written")]
    BeforeLog {
        /// The block asked for.
        block: BlockNumber,
        /// The lowest finalized block the store holds, if any.
        first: Option<BlockNumber>,
    },
    /// The memory store's [`Retention`](crate::store::Retention) dropped the log of the
    /// block: only blocks at or above `horizon` are answered.
    #[error("block #{block} is below the retained horizon #{horizon}; nothing was written")]
    NotRetained {
        /// The block asked for.
        block: BlockNumber,
        /// The lowest block still answered.
        horizon: BlockNumber,
    },
    /// The store was filled by the migration backfill, which writes balances at its
    /// high-water mark and no log rows below it: blocks below `high_water` are not in the
    /// log.
    #[error(
        "block #{block} is below the backfill's high-water #{high_water}: not in the log; nothing was written"
    )]
    NotInLog {
        /// The block asked for.
        block: BlockNumber,
        /// The backfill's high-water mark.
        high_water: BlockNumber,
    },
    /// The store keeps prices by block only from `from` on (the price history was added
    /// by an upgrade at that height): older prices are unknown.
    #[error(
        "block #{block} is below #{from}, where the store's price history starts; nothing was written"
    )]
    PricesNotInLog {
        /// The block asked for.
        block: BlockNumber,
        /// The first block with a price history.
        from: BlockNumber,
    },
    /// The store keeps vault rates, rebasing indexes and quarantines by block only from
    /// `from` on (that history was added by an upgrade at that height, migration 0016):
    /// an asset with such state is unknown below it.
    #[error(
        "block #{block} is below #{from}, where the store's rate, index and quarantine history starts; nothing was written"
    )]
    StateNotInLog {
        /// The block asked for.
        block: BlockNumber,
        /// The first block with that history.
        from: BlockNumber,
    },
    /// The store cannot answer history reads (`what` names the missing piece, e.g.
    /// `history index` on Postgres before
    /// `PostgresStore::create_history_indexes`).
    #[error("{backend} store: {what} unsupported; nothing was written")]
    Unsupported {
        /// Which backend.
        backend: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
