use crate::model::BlockNumber;

/// What one call of the watcher (a sync, an ingested block, a finalization) committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Blocks rolled back by a reorg or a shorter canonical chain.
    pub reverted: usize,
    /// Blocks applied.
    pub applied: usize,
    /// Changesets committed (store transactions).
    pub changesets: usize,
    /// Balance events applied.
    pub events: usize,
    /// Oracle updates rejected (non-positive, old round, …).
    pub rejected_prices: usize,
    /// The finalized height after the step.
    pub finalized: Option<BlockNumber>,
    /// Users queued for a refresh of their cached collateral (directly touched ones; the
    /// holders of a repriced asset are counted in the refresh's own updates).
    pub refreshed_users: usize,
}

impl StepReport {
    pub(super) fn add(&mut self, other: &StepReport) {
        self.reverted += other.reverted;
        self.applied += other.applied;
        self.changesets += other.changesets;
        self.events += other.events;
        self.rejected_prices += other.rejected_prices;
        self.refreshed_users += other.refreshed_users;
        self.finalized = other.finalized.or(self.finalized);
    }

    /// Whether nothing was committed.
    pub fn is_empty(&self) -> bool {
        self.changesets == 0
    }
}

/// Counters since the watcher started, for export to metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Blocks applied (including replacements after reorgs).
    pub blocks_applied: u64,
    /// Blocks rolled back.
    pub blocks_reverted: u64,
    /// Reorgs (and rollbacks to a shorter chain) handled.
    pub reorgs: u64,
    /// Balance events applied.
    pub events_applied: u64,
    /// Oracle updates rejected.
    pub prices_rejected: u64,
    /// Changesets committed.
    pub changesets: u64,
}

/// How far the watcher has got towards the source's head: updated by every committed
/// changeset and every sync, for progress displays of a long catch-up
/// ([`Watcher::progress`](super::Watcher::progress)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// The applied head.
    pub head: Option<BlockNumber>,
    /// The source's head at the current (or last) sync.
    pub target: Option<BlockNumber>,
}
