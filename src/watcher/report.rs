use crate::model::{AssetId, BlockNumber, BlockRef, Quarantine};

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
    /// Assets quarantined by the step's blocks (a log of each could not be applied; every
    /// other asset went on), in block order.
    pub quarantined: Vec<Quarantine>,
    /// Resumes written by the step ([`Watcher::resume`](super::Watcher::resume)): each
    /// asset and the block whose end carries it.
    pub resumed: Vec<(AssetId, BlockRef)>,
    /// Faults of assets of [`FaultPolicy::Reconcile`](crate::model::FaultPolicy::Reconcile)
    /// repaired from the chain by the step's blocks, in order (a quarantine such a repair
    /// ends is also in [`resumed`](Self::resumed)).
    pub reconciled: Vec<super::FaultRepair>,
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
        self.quarantined.extend(other.quarantined.iter().cloned());
        self.resumed.extend(other.resumed.iter().copied());
        self.reconciled.extend(other.reconciled.iter().copied());
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
    /// How many assets are quarantined at the applied head, and the first of them with
    /// the block of its faulting log: the progress line says "asset X quarantined at #N".
    pub quarantined: (usize, Option<(AssetId, BlockNumber)>),
    /// Set when the last sync failed without committing anything (e.g. a strict asset's
    /// fault): the applied head cannot advance, the watcher is stalled there, not "0
    /// behind" (the error is in [`Watcher::health`](super::Watcher::health)).
    pub stalled: bool,
}

impl SyncProgress {
    /// Blocks between the applied head and the source's head.
    pub fn behind(&self) -> Option<u64> {
        Some(self.target?.saturating_sub(self.head.unwrap_or(0)))
    }
}

impl std::fmt::Display for SyncProgress {
    /// `#head of #target, N behind` plus `, stalled` and `, asset X quarantined at #N (+k more)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.head, self.target) {
            (Some(h), Some(t)) => write!(f, "#{h} of #{t}, {} behind", t.saturating_sub(h))?,
            (Some(h), None) => write!(f, "#{h}")?,
            (None, Some(t)) => write!(f, "nothing applied of #{t}")?,
            (None, None) => write!(f, "nothing applied")?,
        }
        if self.stalled {
            write!(f, ", stalled")?;
        }
        if let (n, Some((asset, block))) = self.quarantined {
            write!(f, ", asset {asset} quarantined at #{block}")?;
            if n > 1 {
                write!(f, " (+{} more)", n - 1)?;
            }
        }
        Ok(())
    }
}
