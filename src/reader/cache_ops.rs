//! Operator actions on the cache: rebuild it from the store, verify it against the store.

use super::CollateralReader;
use crate::error::{CacheError, Error};
use crate::model::{CachedCollateral, StateRef, UserId};

/// Users per chunk of a rebuild or a verification.
const CHUNK: usize = 4_096;

/// A cache entry that differs from what the store implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMismatch {
    /// The user.
    pub user: UserId,
    /// What the store implies.
    pub expected: CachedCollateral,
    /// What the cache holds (`None`: missing or unreadable).
    pub cached: Option<CachedCollateral>,
    /// Why the cached entry could not be read (e.g. an entry of an older layout), if so.
    pub unreadable: Option<String>,
}

impl CollateralReader {
    /// Repopulates the cache from the store for every holder of every tracked asset,
    /// valued at the store's head, in chunks (each read from one state of the store, one
    /// cache write each), calling `progress(done, total)` after each. Sets the cache's
    /// watermark to the store's state (head and finalized height) if every chunk was read
    /// from it (otherwise the running watcher sets it). Returns the number of users
    /// written; 0 without a cache.
    pub async fn rebuild_cache(
        &self,
        mut progress: impl FnMut(usize, usize) + Send,
    ) -> Result<usize, Error> {
        let Some(cache) = &self.cache else {
            return Ok(0);
        };
        let start = self.store().window().await?.state();
        let users = self.holders().await?;
        let total = users.len();
        let mut done = 0;
        let mut same = true;
        for chunk in users.chunks(CHUNK) {
            let (state, entries) = self.entries(chunk).await?;
            same &= state == start;
            cache.put(&entries).await?;
            done += chunk.len();
            progress(done, total);
        }
        let now = self.store().window().await?.state();
        if let Some(state) = start.filter(|s| same && now.as_ref() == Some(s)) {
            cache.write(&[], Some(state)).await?;
        }
        Ok(total)
    }

    /// Compares the cache with the store for every holder of every tracked asset and
    /// returns the entries that differ in totals or per-asset values (the `block` and
    /// `complete` fields are time-dependent and not compared). Users without collateral
    /// may be absent. An entry the cache cannot decode ([`CacheError::Corrupt`]) is a
    /// mismatch with [`CacheMismatch::unreadable`] set, not an error; other cache errors
    /// (e.g. the server is down) are returned. Empty without a cache.
    pub async fn verify_cache(&self) -> Result<Vec<CacheMismatch>, Error> {
        let Some(cache) = &self.cache else {
            return Ok(Vec::new());
        };
        let mut mismatches = Vec::new();
        for chunk in self.holders().await?.chunks(CHUNK) {
            let (_, expected) = self.entries(chunk).await?;
            for expected in expected {
                let (cached, unreadable) = match cache.get(expected.user).await {
                    Ok(cached) => (cached, None),
                    Err(CacheError::Corrupt { detail, .. }) => (None, Some(detail)),
                    Err(e) => return Err(e.into()),
                };
                let same = unreadable.is_none()
                    && match &cached {
                        None => expected.assets.values().all(|a| {
                            a.confirmed.is_none_or(|v| v.is_zero())
                                && a.pending.is_none_or(|v| v.is_zero())
                        }),
                        Some(c) => {
                            (c.confirmed, c.pending, &c.assets)
                                == (expected.confirmed, expected.pending, &expected.assets)
                        }
                    };
                if !same {
                    mismatches.push(CacheMismatch {
                        user: expected.user,
                        expected,
                        cached,
                        unreadable,
                    });
                }
            }
        }
        Ok(mismatches)
    }

    /// The cache entries of `users`, read from one state of the store, and that state; a
    /// valuation error is returned.
    async fn entries(
        &self,
        users: &[UserId],
    ) -> Result<(Option<StateRef>, Vec<CachedCollateral>), Error> {
        let (state, values) = self.collateral_snapshot(users).await?;
        let entries = values
            .into_iter()
            .map(|c| Ok(CachedCollateral::new(&c?, state.as_ref())))
            .collect::<Result<_, Error>>()?;
        Ok((state, entries))
    }
}
