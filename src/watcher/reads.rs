//! Reads through the watcher: collateral from the store at the watcher's head, cached
//! reads that know which entries the refresh has not reached yet, and waiting for it.

use super::{RefreshStatus, Watcher};
use crate::error::Error;
use crate::model::{CachedCollateral, Collateral, UserId};
use crate::reader::{CacheMismatch, CachedRead, FallbackReason, ReadSource, ValuationPoint};

impl Watcher {
    /// A user's collateral, computed from the store (the truth), valued at the head's time.
    /// Cost: O(assets of the user).
    pub async fn collateral(&self, user: UserId) -> Result<Collateral, Error> {
        self.reader
            .collateral_at(user, ValuationPoint::of(self.engine.window().head()))
            .await
    }

    /// A user's collateral from the cache when the user's entry is current, from the
    /// store otherwise (no cache, a miss, a cache failure, or the user's refresh still
    /// queued or failed), with [`ReadSource`] saying which answered. Either way the answer
    /// is the collateral of the watcher's state (head and finalized height), which
    /// [`CachedRead::state`] names: the refresh queues every user whose either side a step
    /// changes, a finalization that moves no head included, and a restart queues what
    /// the cache missed before the entries it did not are served.
    pub async fn cached_collateral(&self, user: UserId) -> Result<CachedRead, Error> {
        let state = self.engine.window().state();
        let finalized = self.engine.window().finalized_number();
        let reason = match self.reader.cache() {
            None => FallbackReason::NoCache,
            Some(_) if !self.reconciled || !self.shared.queue().is_current(&user) => {
                FallbackReason::Outdated
            }
            Some(cache) => match cache.get(user).await {
                // An entry stamped after this state's finalized height is another writer's.
                Ok(Some(entry)) if entry.finalized > finalized => FallbackReason::Outdated,
                Ok(Some(entry)) => {
                    return Ok(CachedRead {
                        entry,
                        source: ReadSource::Cache,
                        state,
                    });
                }
                Ok(None) => FallbackReason::Missing,
                Err(error) => {
                    tracing::warn!(%error, %user, "collateral cache read failed; reading the store");
                    FallbackReason::CacheFailed(error.to_string())
                }
            },
        };
        // The watcher is the only writer and `&self` keeps it from writing meanwhile: the
        // store holds `state` throughout the read.
        Ok(CachedRead {
            entry: CachedCollateral::new(&self.collateral(user).await?, state.as_ref()),
            source: ReadSource::Store(reason),
            state,
        })
    }

    /// How many users' cache entries are not yet current (queued or failed refreshes).
    pub fn stale_cache_entries(&self) -> usize {
        self.shared.queue().len()
    }

    /// Waits until the refresh has caught up with every step committed so far (the cache
    /// and the subscribers are then current), or until a cache write fails after this call
    /// (the status then says so in [`RefreshStatus::failing`]). Returns at once when there
    /// is nothing to refresh.
    pub async fn flush(&self) -> RefreshStatus {
        let mut status = self.shared.status.subscribe();
        let errors = status.borrow().cache_errors;
        loop {
            {
                let s = status.borrow_and_update();
                let drained = !self.shared.queue().has_work() && s.idle;
                if drained || !self.refresher || s.cache_errors > errors {
                    return s.clone();
                }
            }
            if status.changed().await.is_err() {
                return self.refresh_status();
            }
        }
    }

    /// Repopulates the cache from the store for every holder of every tracked asset,
    /// calling `progress(done, total)` as it goes (see
    /// [`CollateralReader::rebuild_cache`](crate::reader::CollateralReader::rebuild_cache)).
    pub async fn rebuild_cache(
        &self,
        progress: impl FnMut(usize, usize) + Send,
    ) -> Result<usize, Error> {
        self.reader.rebuild_cache(progress).await
    }

    /// Waits for the refresh, then compares the cache with the store (see
    /// [`CollateralReader::verify_cache`](crate::reader::CollateralReader::verify_cache)).
    pub async fn verify_cache(&self) -> Result<Vec<CacheMismatch>, Error> {
        self.flush().await;
        self.reader.verify_cache().await
    }
}
