//! The writer's health report (see [`crate::health`]).

use super::Watcher;
use crate::health::{HealthProblem, HealthReport, HealthThresholds};

impl Watcher {
    /// The watcher's health: the applied head against the source's head at the last
    /// sync, whether the last sync failed or is older than `max_sync_age`, the refresh
    /// against the head and whether the cache fails, and one store read
    /// ([`StoreWriter::window`](crate::traits::StoreWriter::window)) to tell whether the
    /// store answers. Cheap enough for every probe.
    pub async fn health(&self, thresholds: &HealthThresholds) -> HealthReport {
        let status = self.refresh_status();
        let window = self.engine.window();
        let mut report = HealthReport {
            head: window.head().map(|h| h.number),
            finalized: window.finalized_number(),
            source_head: self.last_source_head,
            refresh_through: status.through.map(|t| t.number),
            problems: Vec::new(),
        };
        if let Err(error) = self.store.window().await {
            report.problems.push(HealthProblem::StoreUnreachable {
                error: error.to_string(),
            });
        }
        if let Some(states) = &self.quarantines_known() {
            report.add_quarantines(states);
        }
        let (success, error) = &self.last_sync;
        let since_success = success.map(|at| at.elapsed());
        if error.is_some() || since_success.is_none_or(|s| s > thresholds.max_sync_age) {
            report.problems.push(HealthProblem::SyncFailing {
                error: error.clone(),
                since_success,
            });
        }
        if let Some(error) = status.failing {
            report.problems.push(HealthProblem::CacheFailing { error });
        }
        report.check_lags(self.refresh_wanted(), status.queued, thresholds);
        report
    }
}
