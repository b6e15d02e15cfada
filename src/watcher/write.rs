//! The write step: commit a changeset, advance the engine, hand what changed to the
//! refresher; and the preparation before a step (checkpoint reload, cache reconciliation).

use std::sync::Arc;

use super::refresh::{self, RefreshSettings, Tip, ViewDelta};
use super::{StepReport, Watcher};
use crate::engine::Engine;
use crate::error::Error;
use crate::model::{BlockNumber, Changeset, StateRef, Window};
use crate::traits::Touched;

/// Most finalized blocks a restart reads the log of to find whose confirmed side they
/// changed since the cache's watermark; beyond it, every holder is refreshed.
const MAX_RECONCILE_LOG_BLOCKS: u64 = 100_000;

impl Watcher {
    /// Writes a changeset, advances the engine and queues the refresh of what it changed.
    pub(super) async fn write(&mut self, changes: Changeset) -> Result<StepReport, Error> {
        let refresh = self.refresh_wanted();
        let before = refresh.then(|| self.engine.window().clone());
        let mut touched = Touched::default();
        if let Some(window) = &before {
            // Whom the revert and the finalization touch: from the recent blocks, or read
            // before the write drops the pending state that says so.
            touched = match self.recent.touched(&changes, window) {
                Some(t) => t,
                None => self.touched_in_store(&changes).await?,
            };
        }
        let shared = Arc::clone(&self.shared);
        let mut gate = shared.gate.write().await;
        let started = std::time::Instant::now();
        if let Err(e) = self.store.apply(&changes).await {
            // The write may or may not have landed (a lost acknowledgement): forget the
            // memos, re-read the checkpoint before the next step, reconcile the cache then.
            self.memo.clear();
            self.recent.clear();
            self.forget_quarantines(&changes);
            self.shared.queue().add_delta(ViewDelta::Reset);
            self.reload = true;
            return Err(e.into());
        }
        self.engine.commit(&changes);
        *gate = Tip::of(self.engine.window());
        self.memo.record(&changes);
        // Under the gate: the refresher applies deltas in commit order.
        let delta = match &before {
            Some(window) => self.recent.commit(&changes, window),
            None => {
                self.recent.clear();
                ViewDelta::Reset
            }
        };
        self.shared.queue().add_delta(delta);
        let mut report = StepReport {
            reverted: changes.revert.len(),
            applied: changes.blocks.len(),
            changesets: 1,
            events: changes.event_count(),
            rejected_prices: changes.blocks.iter().map(|b| b.rejected_prices.len()).sum(),
            finalized: self.engine.window().finalized_number(),
            refreshed_users: 0,
            quarantined: Vec::new(),
            resumed: Vec::new(),
            reconciled: Vec::new(),
        };
        let (state_assets, quarantined, resumed) = self.after_write(&changes).await;
        if refresh {
            // Under the gate, like the touched users: sent before the updates they cause.
            let chain = crate::chains::ChainId(self.chain_id);
            let mut q = self.shared.queue();
            for quarantine in &quarantined {
                q.add_notice(refresh::Notification::Quarantined {
                    chain,
                    quarantine: quarantine.clone(),
                });
            }
            for &(asset, block) in &resumed {
                q.add_notice(refresh::Notification::Resumed {
                    chain,
                    asset,
                    block,
                });
            }
        }
        report.quarantined = quarantined;
        report.resumed = resumed;
        if refresh {
            touched.users.extend(changes.new_users());
            touched.price_assets.extend(changes.new_price_assets());
            // A rebase changes every holder's balance: refreshed like a price change.
            touched.price_assets.extend(changes.new_rebased_assets());
            // A quarantine, a resume, or its revert or finalization revalues every holder.
            touched.price_assets.extend(state_assets);
            report.refreshed_users = touched.users.len();
            // Queued under the gate: the refresher sees the queue and the head together.
            self.shared.queue().add(touched);
            self.shared.mark_busy();
            self.ensure_refresher();
            self.shared.wake();
        }
        drop(gate);
        self.metrics.applied(
            started.elapsed(),
            report.applied,
            report.events,
            report.reverted,
        );
        self.metrics.heights(self.head_number(), report.finalized);
        let head = self.head_number();
        let q = self.quarantine_progress();
        self.progress.send_modify(|p| {
            p.head = head;
            p.quarantined = q;
            p.stalled = false;
        });
        self.count(&changes, &report);
        Ok(report)
    }

    /// Whom the revert and the finalization of `changes` touch, read from the store's
    /// pending state (before the write drops it).
    async fn touched_in_store(&self, changes: &Changeset) -> Result<Touched, Error> {
        let mut touched = Touched::default();
        if let (Some(first), Some(last)) = (changes.revert.first(), changes.revert.last()) {
            touched.merge(self.store.touched(first.number..=last.number).await?);
        }
        if let Some(fin) = changes.finalize {
            let from = self.engine.window().finalized_number().map_or(0, |f| f + 1);
            touched.merge(self.store.touched(from..=fin.number).await?);
        }
        Ok(touched)
    }

    fn count(&mut self, changes: &Changeset, report: &StepReport) {
        if !changes.revert.is_empty() {
            self.stats.reorgs += 1;
            tracing::info!(
                depth = changes.revert.len(),
                from = changes.revert[0].number,
                "reorg"
            );
        }
        self.stats.blocks_reverted += report.reverted as u64;
        self.stats.blocks_applied += report.applied as u64;
        self.stats.events_applied += report.events as u64;
        self.stats.prices_rejected += report.rejected_prices as u64;
        self.stats.changesets += 1;
    }

    /// Before a step: re-read the checkpoint after a write of unknown outcome, and bring
    /// the cache up to the store once (at start, and after such a write).
    pub(super) async fn prepare(&mut self) -> Result<(), Error> {
        if self.reload {
            let window = self.store.window().await?;
            self.engine = Engine::new(self.config.engine.clone(), window);
            *self.shared.gate.write().await = Tip::of(self.engine.window());
            self.reload = false;
            self.reconciled = false;
        }
        if !self.reconciled {
            self.reconcile().await?;
            self.reconciled = true;
        }
        Ok(())
    }

    /// Queues what the cache misses since its watermark, a state (head and finalized
    /// height): when the watermark's head is in the unconfirmed window, the users and
    /// repriced assets of the blocks above it, and the confirmed side of what the blocks
    /// finalized since its finalized height changed (the users of their log rows, the
    /// assets whose confirmed price is newer); every holder otherwise (a new cache, one of
    /// another chain, one behind the finalized height, or a watermark of an older layout).
    ///
    /// The cache is first marked with this watcher's session, so that a loss after the
    /// watermark is read is seen by the refresher (see [`refresh`](super::refresh)).
    async fn reconcile(&mut self) -> Result<(), Error> {
        let Some(cache) = self.reader.cache().cloned() else {
            return Ok(());
        };
        let window = self.engine.window().clone();
        let Some(state) = window.state() else {
            return Ok(());
        };
        let read = async {
            cache.begin_session(self.shared.session).await?;
            cache.watermark().await
        };
        let mark = match read.await {
            Ok(mark) => mark,
            Err(error) => {
                tracing::warn!(%error, "reading the cache's watermark failed; refreshing every holder");
                None
            }
        };
        if mark == Some(state) {
            // Current already: say so, or the refresh would look behind until a new block.
            self.shared
                .status
                .send_modify(|s| s.through = Some(state.head));
            return Ok(());
        }
        let touched = match mark {
            Some(m) if follows(&window, &m) => self.missed_since(&window, &m).await?,
            _ => None,
        };
        let touched = match touched {
            Some(touched) => {
                tracing::info!(
                    watermark = %mark.map_or_else(String::new, |m| m.to_string()),
                    head = state.head.number,
                    users = touched.users.len(),
                    "cache behind the store: refreshing what changed since"
                );
                touched
            }
            None => {
                tracing::info!(
                    head = state.head.number,
                    "cache watermark unknown: refreshing every holder"
                );
                Touched {
                    users: Default::default(),
                    price_assets: self
                        .reader
                        .valuator()
                        .assets()
                        .iter()
                        .map(|a| a.id)
                        .collect(),
                }
            }
        };
        let shared = Arc::clone(&self.shared);
        let _gate = shared.gate.write().await;
        self.shared.queue().add(touched);
        self.shared.mark_busy();
        self.ensure_refresher();
        self.shared.wake();
        Ok(())
    }

    /// What changed since `mark` (a state `window` follows): the pending rows above its
    /// head, and the confirmed side of the blocks finalized since its finalized height.
    /// `None` when that takes reading more than [`MAX_RECONCILE_LOG_BLOCKS`] of log.
    async fn missed_since(
        &self,
        window: &Window,
        mark: &StateRef,
    ) -> Result<Option<Touched>, Error> {
        let head = mark.head.number;
        let Some(now) = window.head() else {
            return Ok(Some(Touched::default()));
        };
        let mut touched = self.store.touched(head + 1..=now.number).await?;
        let Some(fin) = window
            .finalized_number()
            .filter(|f| Some(*f) != mark.finalized)
        else {
            return Ok(Some(touched));
        };
        let from: BlockNumber = mark.finalized.map_or(self.config.start_block, |f| f + 1);
        if fin.saturating_sub(from) >= MAX_RECONCILE_LOG_BLOCKS {
            return Ok(None);
        }
        let rows = self.store.log(from..=fin).await?;
        touched.users.extend(rows.iter().map(|r| r.key.user));
        let assets: Vec<_> = self
            .reader
            .valuator()
            .assets()
            .iter()
            .map(|a| a.id)
            .collect();
        let prices = self.store.prices(&assets).await?;
        let confirmed_since = |block: BlockNumber| mark.finalized.is_none_or(|f| block > f);
        for (asset, view) in assets.iter().zip(prices) {
            if view.confirmed.is_some_and(|p| confirmed_since(p.block)) {
                touched.price_assets.insert(*asset);
            }
        }
        let rates = self.reader.rates_of(&assets).await?;
        for (asset, view) in rates {
            if view.confirmed.is_some_and(|r| confirmed_since(r.block)) {
                touched.price_assets.insert(asset);
            }
        }
        Ok(Some(touched))
    }

    /// Starts the refresher task if it is not running.
    fn ensure_refresher(&mut self) {
        if self.refresher {
            return;
        }
        self.refresher = true;
        let settings = RefreshSettings {
            chunk: self.config.refresh_chunk,
            catch_up_interval: self.config.catch_up_refresh_interval,
            memo: self.config.refresh_memo,
            metrics: self.metrics.clone(),
            chain: crate::chains::ChainId(self.chain_id),
            remote_price_interval: self.config.remote_price_interval,
        };
        tokio::spawn(refresh::run(
            Arc::clone(&self.shared),
            self.reader.clone(),
            settings,
        ));
    }
}

/// Whether `window` follows `mark`: its head is a block of the unconfirmed window (or the
/// finalized tip), at or above the finalized height, and its finalized height is not above
/// the window's. Only then is what changed since known from the blocks above it.
fn follows(window: &Window, mark: &StateRef) -> bool {
    let fin = window.finalized_number();
    window
        .at(mark.head.number)
        .is_some_and(|h| h.hash == mark.head.hash)
        && fin.is_none_or(|f| mark.head.number >= f)
        && mark.finalized <= fin
}
