use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};

/// A read cache of per-user collateral: `user → {asset: balance × price × factor}` and
/// totals, each entry stamped with the state of the store it reflects (head block, its
/// hash, finalized height), plus a **watermark**: the state up to which the cache holds
/// every change.
///
/// # Contract
/// - [`write`](Self::write) replaces the entries of the given users and, when given, sets
///   the watermark, all atomically: a reader sees either all of one call or none of it.
///   [`put`](Self::put) is a write without a watermark.
/// - [`get`](Self::get) returns the last entry written for the user, `None` if absent;
///   [`get_many`](Self::get_many) answers in the order asked, from one state of the cache.
/// - [`watermark`](Self::watermark) is the last watermark written (`None` after
///   [`clear`](Self::clear), on a new cache, or for a watermark of an older layout that
///   does not name a finalized height). An entry is current as of the watermark: a reader
///   that knows the store's state (head and finalized height) can tell whether the cache
///   is behind it. [`get_with_watermark`](Self::get_with_watermark) reads an entry and the
///   watermark it is current as of together.
/// - A writer that must know whether entries it wrote were lost meanwhile (a flush of the
///   server, a [`clear`](Self::clear), another writer) marks the cache with
///   [`begin_session`](Self::begin_session) and writes through
///   [`write_in_session`](Self::write_in_session): a watermark is only set while the mark
///   is still there.
/// - The cache is never the source of truth: the watcher keeps ingesting when the cache
///   fails, and [`CollateralReader::rebuild_cache`](crate::reader::CollateralReader::rebuild_cache)
///   repopulates it from the store.
#[async_trait]
pub trait CollateralCache: Send + Sync + Debug {
    /// Stores the entries and, if `watermark` is set, the watermark, atomically.
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError>;

    /// The cached entry of `user`.
    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError>;

    /// The state up to which every change is in the cache, if recorded.
    async fn watermark(&self) -> Result<Option<StateRef>, CacheError>;

    /// Drops every entry, the watermark and the session mark.
    async fn clear(&self) -> Result<(), CacheError>;

    /// Stores the entries atomically, replacing earlier ones of the same users; the
    /// watermark is left as it is.
    async fn put(&self, entries: &[CachedCollateral]) -> Result<(), CacheError> {
        self.write(entries, None).await
    }

    /// The entries of several users, in the order asked. Override to read them in one
    /// round trip and from one state.
    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            out.push(self.get(*user).await?);
        }
        Ok(out)
    }

    /// The entry of `user` and the watermark, read from one state of the cache: the entry
    /// is current as of that watermark. Override to read both atomically; the default
    /// reads the watermark around the entry and answers `None` for it when it moved.
    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let before = self.watermark().await?;
        let entry = self.get(user).await?;
        let after = self.watermark().await?;
        Ok((entry, after.filter(|_| before == after)))
    }

    /// Marks the cache as written by `session` (a writer's random token), replacing any
    /// other session's mark. Call it before reading the watermark to decide what to
    /// refresh: a loss after it is then seen by [`write_in_session`](Self::write_in_session).
    /// The default keeps no mark (such a cache cannot tell that it lost entries).
    async fn begin_session(&self, session: u64) -> Result<(), CacheError> {
        let _ = session;
        Ok(())
    }

    /// [`write`](Self::write), atomically with a check that `session`'s mark is still in
    /// the cache. Returns `Ok(true)` if it was (everything written). `Ok(false)` if it was
    /// not (the cache was flushed or cleared, or another session began since): the entries
    /// are written but the watermark is not, and the cache is marked for `session` again,
    /// so the caller must rewrite what it wrote since the mark before it sets a watermark.
    /// The default writes and answers `true`.
    async fn write_in_session(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
        session: u64,
    ) -> Result<bool, CacheError> {
        let _ = session;
        self.write(entries, watermark).await.map(|()| true)
    }
}
