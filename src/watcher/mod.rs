//! The watcher: the one writer. It fetches blocks from a [`BlockSource`] in parallel,
//! feeds them to the [`Engine`] strictly in order, applies each resulting
//! [`Changeset`](crate::model::Changeset) to the store atomically, and hands what changed
//! to a refresher task that updates the [`CollateralCache`] and notifies subscribers
//! (see [`refresh`](self#refresh)). Taking `&mut self` for every write makes "one writer"
//! a compile-time fact.
//!
//! The pieces, one per file: `config` and `report` (settings and what a call did), `sync`
//! (following the source: head probe, catch-up pipeline, finality), `fork` (walking back
//! to a fork point), `base` (a transition's base state, with the head memo of `memo`),
//! `write` (the write step), `recent` (what the unconfirmed blocks it applied wrote),
//! `refresh` (cache refresh, its view memo, notifications), `reads` (collateral reads
//! through the watcher).
//!
//! # Refresh
//! Ingestion never waits for the cache: a step's touched users and repriced assets go to
//! a queue that one refresher task drains in chunks (touched users first, then the holders
//! of repriced assets), valuing each chunk from one committed state of the store. Each
//! step also hands over what it changed in balance and price views, so the refresher
//! values the users it has seen before from memory (`refresh_memo`) and reads only the
//! others from the store; a reorg or a write of unknown outcome makes it read again. A
//! chunk that empties the queue also sets the cache's watermark to its state (head and
//! finalized height; under sustained load, to the last state whose queued work is written).
//! A finalization that moves no head queues the users and assets whose confirmed side it
//! changes like any step. [`Watcher::flush`] waits until the refresh has caught up with the
//! store.

mod base;
mod config;
mod faults;
mod fork;
mod health;
mod memo;
mod opening_index;
mod openings;
mod quarantine;
mod reads;
mod recent;
mod reconciler;
pub mod refresh;
mod report;
mod shutdown;
mod standby;
mod sync;
mod write;

use std::sync::Arc;

pub use config::WatcherConfig;
pub use faults::FaultRepair;
pub use openings::Openings;
pub use reconciler::{
    Drift, ReconcileError, ReconcileReport, Reconciler, ReconcilerConfig, Sample,
};
pub use refresh::{
    CollateralUpdate, Notification, RefreshStatus, Subscription, UpdateCause, UserTotals,
};
pub use report::{StepReport, SyncProgress, WatcherStats};

use self::memo::HeadMemo;
use self::recent::RecentBlocks;
use self::refresh::Shared;
use crate::engine::Engine;
use crate::error::Error;
use crate::metrics::ChainMetrics;
use crate::model::{BlockNumber, StoreIdentity, Window};
use crate::reader::CollateralReader;
use crate::traits::{BalanceStore, BlockSource, CollateralCache};
use crate::valuation::Valuator;

/// The single writer that drives the engine. See the [module docs](self).
#[derive(Debug)]
pub struct Watcher {
    engine: Engine,
    config: WatcherConfig,
    source: Arc<dyn BlockSource>,
    store: Arc<dyn BalanceStore>,
    reader: CollateralReader,
    stats: WatcherStats,
    /// The highest height the source reported final at the last sync (its head minus the
    /// confirmation depth, or its `finalized` tag): blocks at or below it are written as
    /// confirmed as soon as they are applied.
    known_final: Option<BlockNumber>,
    /// The source's head at the last sync.
    last_source_head: Option<BlockNumber>,
    /// When the last sync succeeded, and the last sync's error if it failed.
    last_sync: (Option<std::time::Instant>, Option<String>),
    memo: HeadMemo,
    /// What the unconfirmed blocks this watcher applied wrote (for the refresh).
    recent: RecentBlocks,
    shared: Arc<Shared>,
    /// Whether the refresher task runs.
    refresher: bool,
    /// Whether the cache was reconciled with the store since start (or since a failed write).
    reconciled: bool,
    /// A write failed with an unknown outcome: re-read the checkpoint before the next step.
    reload: bool,
    /// The metrics it records, labelled with the source's chain id.
    metrics: ChainMetrics,
    /// Once cancelled, a catch-up stops after the changeset it is writing.
    stop: Option<tokio_util::sync::CancellationToken>,
    /// The applied head and the source's, for progress displays.
    progress: tokio::sync::watch::Sender<SyncProgress>,
    /// The source's chain id (0 if none), hashed into correction rows' log ids.
    chain_id: u64,
    /// Drift corrections waiting for their block.
    corrections: openings::CorrectionQueue,
    /// Queued resumes and the quarantines last read.
    quarantines: quarantine::Quarantines,
}

impl Watcher {
    /// A watcher resuming from the store's checkpoint. `store` is one handle for every
    /// role: the writer's side, the reads, and the prices it ingests.
    ///
    /// Claims the store first ([`StoreWriter::claim_writer`](crate::traits::StoreWriter::claim_writer))
    /// for the source's chain and the configured assets: a store another writer holds, or
    /// one that follows another chain or registry, is refused with a typed error.
    pub async fn new(
        config: WatcherConfig,
        source: Arc<dyn BlockSource>,
        store: Arc<dyn BalanceStore>,
    ) -> Result<Self, Error> {
        let chain_id = source.chain_id().await?;
        let identity = StoreIdentity::new(chain_id, &config.engine.assets);
        store.claim_writer(&identity).await?;
        let window = store.window().await?;
        let quarantines = quarantine::Quarantines::loaded(
            store.asset_states().await?,
            window.head().map(|h| h.number),
        );
        let engine = Engine::new(config.engine.clone(), window);
        let valuator = Valuator::new(config.engine.assets.clone(), config.max_price_age);
        let shared = Arc::new(Shared::new(
            refresh::Tip::of(engine.window()),
            config.channel_capacity,
        ));
        let applied = engine.window().head().map(|h| h.number);
        Ok(Self {
            reader: CollateralReader::new(store.clone(), valuator),
            engine,
            source,
            store,
            stats: WatcherStats::default(),
            known_final: None,
            last_source_head: None,
            last_sync: (None, None),
            memo: HeadMemo::new(config.head_memo),
            recent: RecentBlocks::default(),
            shared,
            refresher: false,
            reconciled: false,
            reload: false,
            metrics: ChainMetrics::new(chain_id),
            stop: None,
            progress: tokio::sync::watch::Sender::new(SyncProgress {
                head: applied,
                target: None,
                ..SyncProgress::default()
            }),
            chain_id: chain_id.unwrap_or(0),
            corrections: openings::CorrectionQueue::default(),
            quarantines,
            config,
        })
    }

    /// Also keeps `cache` up to date. Call before the first step.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.reader = self.reader.clone().with_cache(cache);
        self
    }

    /// Values `asset` with the prices another chain's store holds under `key_there`
    /// ([`CollateralReader::with_price_from`]), in the watcher's reads and in its cache
    /// refreshes: the refresher reads those prices every
    /// [`remote_price_interval`](WatcherConfig::remote_price_interval) and refreshes the
    /// holders of the assets they price when they changed, with no block of this chain.
    /// Call before the first step. Refused as `with_price_from` refuses, nothing changed.
    pub fn with_price_from(
        mut self,
        asset: crate::model::AssetId,
        other: Arc<dyn BalanceStore>,
        other_chain: crate::chains::ChainId,
        key_there: crate::model::AssetId,
    ) -> Result<Self, crate::chains::ChainsError> {
        self.reader = self
            .reader
            .clone()
            .with_price_from(asset, other, other_chain, key_there)?;
        Ok(self)
    }

    /// Subscribes to refresh notifications (one [`CollateralUpdate`] per refresh batch).
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(
            self.shared.updates.subscribe(),
            self.shared.status.subscribe(),
            crate::chains::ChainId(self.chain_id),
        )
    }

    /// The chain position applied so far.
    pub fn window(&self) -> &Window {
        self.engine.window()
    }

    /// The applied head and the source's head, updated by every committed changeset:
    /// watch it to show the progress of a long catch-up.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<SyncProgress> {
        self.progress.subscribe()
    }

    /// Counters since start.
    pub fn stats(&self) -> WatcherStats {
        self.stats
    }

    /// Where the refresh of the cache and the subscribers stands.
    pub fn refresh_status(&self) -> RefreshStatus {
        self.shared.status.borrow().clone()
    }

    /// The valuator used for collateral.
    pub fn valuator(&self) -> &Valuator {
        self.reader.valuator()
    }

    /// The reader the watcher refreshes through (clone it for read-only tasks).
    pub fn reader(&self) -> &CollateralReader {
        &self.reader
    }

    /// Whether steps must be handed to the refresher: a cache or a subscriber is attached.
    fn refresh_wanted(&self) -> bool {
        self.reader.cache().is_some() || self.shared.updates.receiver_count() > 0
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.wake();
    }
}
