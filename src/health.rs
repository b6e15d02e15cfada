//! Health: a typed report for readiness and liveness probes.
//!
//! [`Watcher::health`](crate::Watcher::health) reports the writer's view (the source's head
//! at its last sync, the refresher's status, one cheap store read); [`check`] computes the
//! same report in a read-only process from a [`CollateralReader`] and, if it has one, the
//! source's head. Each problem names its figures; [`HealthReport::ready`] and
//! [`HealthReport::live`] turn them into probe answers.

use std::time::Duration;

use crate::model::BlockNumber;
use crate::reader::CollateralReader;

/// When a lag becomes a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthThresholds {
    /// Most blocks the applied head may be behind the source's head.
    pub max_blocks_behind: u64,
    /// Most blocks the refresh (the cache's watermark) may be behind the applied head.
    pub max_refresh_behind: u64,
    /// How old the writer's last successful sync may be (the watcher's report only).
    pub max_sync_age: Duration,
}

impl Default for HealthThresholds {
    /// 10 blocks behind the source, 10 blocks of refresh lag, a sync within 60 s.
    fn default() -> Self {
        Self {
            max_blocks_behind: 10,
            max_refresh_behind: 10,
            max_sync_age: Duration::from_secs(60),
        }
    }
}

/// One thing wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthProblem {
    /// The applied head is more than the threshold behind the source's head.
    BehindSource {
        /// The source's head.
        source_head: BlockNumber,
        /// The applied head (`None`: nothing applied yet).
        head: Option<BlockNumber>,
        /// Blocks behind.
        behind: u64,
    },
    /// The last sync failed, or none succeeded for longer than the threshold.
    SyncFailing {
        /// The last sync's error, if it failed.
        error: Option<String>,
        /// Since the last successful sync (`None`: none yet).
        since_success: Option<Duration>,
    },
    /// Cache writes (or reads, in a read-only process) fail: reads fall back to the store.
    CacheFailing {
        /// The cache's error.
        error: String,
    },
    /// The refresh is more than the threshold behind the applied head: cached reads fall
    /// back to the store for the users still queued.
    RefreshBehind {
        /// Every change up to this block is refreshed (`None`: nothing yet).
        through: Option<BlockNumber>,
        /// The applied head.
        head: BlockNumber,
        /// Users waiting for a refresh (the watcher's report only; 0 otherwise).
        queued: usize,
    },
    /// The store did not answer a read.
    StoreUnreachable {
        /// The store's error.
        error: String,
    },
    /// An asset is quarantined at the head (a log of it could not be applied): its
    /// balances are unreliable and left out of collateral; every other asset goes on.
    /// Degrades only: reads are still correct for the rest.
    Quarantined {
        /// The asset.
        asset: crate::model::AssetId,
        /// The block of the faulting log.
        block: BlockNumber,
        /// Why (the fault).
        reason: String,
    },
}

impl HealthProblem {
    /// Whether reads can still be served correctly (from the store) with this problem:
    /// a failing or lagging cache degrades, the rest makes the process not ready.
    pub fn degrades_only(&self) -> bool {
        matches!(
            self,
            Self::CacheFailing { .. } | Self::RefreshBehind { .. } | Self::Quarantined { .. }
        )
    }
}

/// A health report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The applied head, as the store has it (`None`: empty, or unreachable).
    pub head: Option<BlockNumber>,
    /// The finalized height.
    pub finalized: Option<BlockNumber>,
    /// The source's head, when known.
    pub source_head: Option<BlockNumber>,
    /// Every change up to this block is refreshed into the cache.
    pub refresh_through: Option<BlockNumber>,
    /// What is wrong; empty when healthy.
    pub problems: Vec<HealthProblem>,
}

impl HealthReport {
    /// Readiness: answers are correct and current (degradations of the cache alone are
    /// fine, reads then come from the store).
    pub fn ready(&self) -> bool {
        self.problems.iter().all(HealthProblem::degrades_only)
    }

    /// Liveness: the store answers. A process whose store does not answer is worth a
    /// restart; one behind the source or with a failing cache is not.
    pub fn live(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| matches!(p, HealthProblem::StoreUnreachable { .. }))
    }

    /// No problem at all.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// Adds the lag problems of `head` against the source and (if `refresh`) the refresh.
    pub(crate) fn check_lags(
        &mut self,
        refresh: bool,
        queued: usize,
        thresholds: &HealthThresholds,
    ) {
        if let Some(source_head) = self.source_head {
            let behind = self.head.map_or(source_head.saturating_add(1), |h| {
                source_head.saturating_sub(h)
            });
            if behind > thresholds.max_blocks_behind {
                self.problems.push(HealthProblem::BehindSource {
                    source_head,
                    head: self.head,
                    behind,
                });
            }
        }
        if let Some(head) = self.head.filter(|_| refresh) {
            let lag = self
                .refresh_through
                .map_or(head.saturating_add(1), |t| head.saturating_sub(t));
            if lag > thresholds.max_refresh_behind {
                self.problems.push(HealthProblem::RefreshBehind {
                    through: self.refresh_through,
                    head,
                    queued,
                });
            }
        }
    }
}

/// The health of a read-only process: the store's window (one read), the cache's
/// watermark (one read, if the reader has a cache), and `source_head` if the caller asked
/// the source.
pub async fn check(
    reader: &CollateralReader,
    source_head: Option<BlockNumber>,
    thresholds: &HealthThresholds,
) -> HealthReport {
    let mut report = HealthReport {
        head: None,
        finalized: None,
        source_head,
        refresh_through: None,
        problems: Vec::new(),
    };
    match reader.store().window().await {
        Ok(window) => {
            report.head = window.head().map(|h| h.number);
            report.finalized = window.finalized_number();
        }
        Err(error) => {
            report.problems.push(HealthProblem::StoreUnreachable {
                error: error.to_string(),
            });
            return report;
        }
    }
    let mut cache_ok = true;
    if let Some(cache) = reader.cache() {
        match cache.watermark().await {
            Ok(mark) => report.refresh_through = mark.map(|m| m.head.number),
            Err(error) => {
                cache_ok = false;
                report.problems.push(HealthProblem::CacheFailing {
                    error: error.to_string(),
                });
            }
        }
    }
    // No cache has no refresh to lag; a failing one is reported as such.
    report.check_lags(reader.cache().is_some() && cache_ok, 0, thresholds);
    if let Ok(states) = reader.store().asset_states().await {
        report.add_quarantines(&states);
    }
    report
}

impl HealthReport {
    /// Adds a [`HealthProblem::Quarantined`] per asset quarantined at the head.
    pub fn add_quarantines(&mut self, states: &[crate::model::AssetStateView]) {
        for q in states.iter().filter_map(|v| v.pending.quarantine()) {
            self.problems.push(HealthProblem::Quarantined {
                asset: q.asset,
                block: q.block.number,
                reason: q.reason.to_string(),
            });
        }
    }
}
