//! Reads through the watcher: collateral from the store at the watcher's head, cached
//! reads that know which entries the refresh has not reached yet, and waiting for it.

use super::{RefreshStatus, Watcher};
use crate::error::Error;
use crate::model::{CachedCollateral, Collateral, UserId};
use crate::reader::{CachedRead, CacheMismatch, FallbackReason, ReadSource, ValuationPoint};

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
    /// queued or failed), with [`ReadSource`] saying which answered.
    pub async fn cached_collateral(&self, user: UserId) -> Result<CachedRead, Error> {
        let reason = match self.reader.cache() {
            None => FallbackReason::NoCache,
            Some(_) if !self.reconciled || !self.shared.queue().is_current(&user) => {
                FallbackReason::Outdated
            }
            Some(cache) => match cache.get(user).await {
                Ok(Some(entry)) => {
                    return Ok(CachedRead {
                        entry,
                        source: ReadSource::Cache,
                    });
                }
                Ok(None) => FallbackReason::Missing,
                Err(error) => {
                    tracing::warn!(%error, %user, "collateral cache read failed; reading the store");
                    FallbackReason::CacheFailed(error.to_string())
                }
            },
        };
        Ok(CachedRead {
            entry: CachedCollateral::from(&self.collateral(user).await?),
            source: ReadSource::Store(reason),
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
