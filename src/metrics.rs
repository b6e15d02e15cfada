//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: the watcher, its
//! refresher and the RPC source record them; the application installs a recorder
//! (Prometheus, StatsD, …) and gets them. Without a recorder every call is a no-op.
//!
//! Every metric is named in [`names`] and carries the label `chain_id` (the source's
//! chain id, `unknown` when it reports none), except the per-endpoint source errors, which
//! carry `endpoint`. [`ALL`] lists them, with their kind and meaning; `docs/operations.md`
//! documents the same table for operators, and a test checks that a run emits them.
//! [`describe`] registers their descriptions and units with the installed recorder.

use std::time::Duration;

use metrics::{SharedString, Unit};

/// The metric names, one constant each.
pub mod names {
    /// Gauge: the watcher's applied head height.
    pub const HEAD_BLOCK: &str = "reorg_collateral_head_block";
    /// Gauge: the finalized height.
    pub const FINALIZED_BLOCK: &str = "reorg_collateral_finalized_block";
    /// Gauge: the source's head height at the last sync.
    pub const SOURCE_HEAD_BLOCK: &str = "reorg_collateral_source_head_block";
    /// Gauge: blocks between the source's head and the applied head after a sync.
    pub const BLOCKS_BEHIND: &str = "reorg_collateral_blocks_behind";
    /// Histogram, seconds: one changeset's store write.
    pub const APPLY_SECONDS: &str = "reorg_collateral_apply_seconds";
    /// Counter: blocks applied.
    pub const BLOCKS_APPLIED: &str = "reorg_collateral_blocks_applied_total";
    /// Counter: balance events applied (`rate()` of it is events per second).
    pub const EVENTS: &str = "reorg_collateral_events_total";
    /// Counter: reorgs (and rollbacks to a shorter chain) applied.
    pub const REORGS: &str = "reorg_collateral_reorgs_total";
    /// Histogram, blocks: the depth of each reorg (blocks rolled back).
    pub const REORG_DEPTH: &str = "reorg_collateral_reorg_depth";
    /// Histogram, seconds: one refresh batch (store read, valuation, cache write).
    pub const REFRESH_SECONDS: &str = "reorg_collateral_refresh_seconds";
    /// Counter: cache writes that failed.
    pub const CACHE_ERRORS: &str = "reorg_collateral_cache_errors_total";
    /// Gauge: users whose cache entry is not current (queued or failed refreshes).
    pub const CACHE_STALE_ENTRIES: &str = "reorg_collateral_cache_stale_entries";
    /// Histogram, users: holders listed for one price fan-out.
    pub const FAN_OUT_USERS: &str = "reorg_collateral_fan_out_users";
    /// Histogram, seconds: from listing a fan-out's holders to refreshing the last of them.
    pub const FAN_OUT_SECONDS: &str = "reorg_collateral_fan_out_seconds";
    /// Counter: failed syncs, by `kind` (`source`, `store`, `engine`, `other`).
    pub const SYNC_ERRORS: &str = "reorg_collateral_sync_errors_total";
    /// Counter, label `endpoint`: RPC endpoint failures (each failed call of an endpoint).
    pub const SOURCE_ERRORS: &str = "reorg_collateral_source_errors_total";
    /// Counter: reconciliation drifts (the store found different from the chain). Named
    /// now; no reconciliation emits it yet.
    pub const RECONCILIATION_DRIFTS: &str = "reorg_collateral_reconciliation_drifts_total";
}

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

/// One documented metric.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// Its name (one of [`names`]).
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// Its labels.
    pub labels: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
}

const CHAIN: &[&str] = &["chain_id"];

/// Every metric the crate records.
pub const ALL: &[Metric] = &[
    m(
        names::HEAD_BLOCK,
        Kind::Gauge,
        Unit::Count,
        CHAIN,
        "applied head height",
    ),
    m(
        names::FINALIZED_BLOCK,
        Kind::Gauge,
        Unit::Count,
        CHAIN,
        "finalized height",
    ),
    m(
        names::SOURCE_HEAD_BLOCK,
        Kind::Gauge,
        Unit::Count,
        CHAIN,
        "the source's head height at the last sync",
    ),
    m(
        names::BLOCKS_BEHIND,
        Kind::Gauge,
        Unit::Count,
        CHAIN,
        "blocks between the source's head and the applied head after a sync",
    ),
    m(
        names::APPLY_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        CHAIN,
        "one changeset's store write",
    ),
    m(
        names::BLOCKS_APPLIED,
        Kind::Counter,
        Unit::Count,
        CHAIN,
        "blocks applied",
    ),
    m(
        names::EVENTS,
        Kind::Counter,
        Unit::Count,
        CHAIN,
        "balance events applied",
    ),
    m(
        names::REORGS,
        Kind::Counter,
        Unit::Count,
        CHAIN,
        "reorgs and rollbacks applied",
    ),
    m(
        names::REORG_DEPTH,
        Kind::Histogram,
        Unit::Count,
        CHAIN,
        "blocks rolled back per reorg",
    ),
    m(
        names::REFRESH_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        CHAIN,
        "one refresh batch: read, value, write the cache",
    ),
    m(
        names::CACHE_ERRORS,
        Kind::Counter,
        Unit::Count,
        CHAIN,
        "failed cache writes",
    ),
    m(
        names::CACHE_STALE_ENTRIES,
        Kind::Gauge,
        Unit::Count,
        CHAIN,
        "users whose cache entry is not current",
    ),
    m(
        names::FAN_OUT_USERS,
        Kind::Histogram,
        Unit::Count,
        CHAIN,
        "holders listed per price fan-out",
    ),
    m(
        names::FAN_OUT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        CHAIN,
        "time to refresh a price fan-out",
    ),
    m(
        names::SYNC_ERRORS,
        Kind::Counter,
        Unit::Count,
        &["chain_id", "kind"],
        "failed syncs by kind",
    ),
    m(
        names::SOURCE_ERRORS,
        Kind::Counter,
        Unit::Count,
        &["endpoint"],
        "failed calls per RPC endpoint",
    ),
    m(
        names::RECONCILIATION_DRIFTS,
        Kind::Counter,
        Unit::Count,
        CHAIN,
        "reconciliation drifts (not emitted yet)",
    ),
];

const fn m(
    name: &'static str,
    kind: Kind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

/// Registers every metric's description and unit with the installed recorder (call once
/// after installing it; optional).
pub fn describe() {
    for metric in ALL {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.unit, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.unit, metric.help),
            Kind::Histogram => {
                metrics::describe_histogram!(metric.name, metric.unit, metric.help);
            }
        }
    }
}

/// The `chain_id` label value of a chain id.
pub(crate) fn chain_label(chain_id: Option<u64>) -> SharedString {
    chain_id.map_or_else(|| "unknown".into(), |id| id.to_string().into())
}

/// The metrics of one chain's watcher and refresher (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct ChainMetrics {
    chain: SharedString,
}

impl ChainMetrics {
    pub(crate) fn new(chain_id: Option<u64>) -> Self {
        Self {
            chain: chain_label(chain_id),
        }
    }

    fn labels(&self) -> [(&'static str, SharedString); 1] {
        [("chain_id", self.chain.clone())]
    }

    /// The heights after a step or a sync.
    pub(crate) fn heights(&self, head: Option<u64>, finalized: Option<u64>) {
        if let Some(h) = head {
            metrics::gauge!(names::HEAD_BLOCK, &self.labels()).set(h as f64);
        }
        if let Some(f) = finalized {
            metrics::gauge!(names::FINALIZED_BLOCK, &self.labels()).set(f as f64);
        }
    }

    /// The source's head and how far the applied head is behind it.
    pub(crate) fn source_head(&self, source_head: u64, head: Option<u64>) {
        metrics::gauge!(names::SOURCE_HEAD_BLOCK, &self.labels()).set(source_head as f64);
        let behind = head.map_or(source_head + 1, |h| source_head.saturating_sub(h));
        metrics::gauge!(names::BLOCKS_BEHIND, &self.labels()).set(behind as f64);
    }

    /// A committed changeset.
    pub(crate) fn applied(&self, elapsed: Duration, blocks: usize, events: usize, reverted: usize) {
        let labels = self.labels();
        metrics::histogram!(names::APPLY_SECONDS, &labels).record(elapsed.as_secs_f64());
        metrics::counter!(names::BLOCKS_APPLIED, &labels).increment(blocks as u64);
        metrics::counter!(names::EVENTS, &labels).increment(events as u64);
        // Registered at 0 from the first changeset, so a rate is defined before any reorg.
        metrics::counter!(names::REORGS, &labels).increment(u64::from(reverted > 0));
        if reverted > 0 {
            metrics::histogram!(names::REORG_DEPTH, &labels).record(reverted as f64);
        }
    }

    /// A failed sync.
    pub(crate) fn sync_error(&self, kind: &'static str) {
        metrics::counter!(names::SYNC_ERRORS, "chain_id" => self.chain.clone(), "kind" => kind)
            .increment(1);
    }

    /// One refresh batch: its time, whether its cache write failed, and the users left.
    pub(crate) fn refreshed(&self, elapsed: Duration, cache_failed: bool, queued: usize) {
        let labels = self.labels();
        metrics::histogram!(names::REFRESH_SECONDS, &labels).record(elapsed.as_secs_f64());
        metrics::counter!(names::CACHE_ERRORS, &labels).increment(u64::from(cache_failed));
        metrics::gauge!(names::CACHE_STALE_ENTRIES, &labels).set(queued as f64);
    }

    /// A price fan-out's holders were listed.
    pub(crate) fn fan_out_listed(&self, users: usize) {
        metrics::histogram!(names::FAN_OUT_USERS, &self.labels()).record(users as f64);
    }

    /// A price fan-out was refreshed to its last holder.
    pub(crate) fn fan_out_done(&self, elapsed: Duration) {
        metrics::histogram!(names::FAN_OUT_SECONDS, &self.labels()).record(elapsed.as_secs_f64());
    }
}

/// An RPC endpoint's call failed.
#[cfg(feature = "rpc")]
pub(crate) fn source_error(endpoint: &str) {
    metrics::counter!(names::SOURCE_ERRORS, "endpoint" => endpoint.to_owned()).increment(1);
}
