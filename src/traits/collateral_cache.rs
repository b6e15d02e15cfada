use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{BlockRef, CachedCollateral, UserId};

/// A read cache of per-user collateral: `user → {asset: balance × price × factor}` and
/// totals, each entry stamped with the block it reflects, plus a **watermark**: the block
/// up to which the cache holds every change.
///
/// # Contract
/// - [`write`](Self::write) replaces the entries of the given users and, when given, sets
///   the watermark, all atomically: a reader sees either all of one call or none of it.
///   [`put`](Self::put) is a write without a watermark.
/// - [`get`](Self::get) returns the last entry written for the user, `None` if absent;
///   [`get_many`](Self::get_many) answers in the order asked, from one state of the cache.
/// - [`watermark`](Self::watermark) is the last watermark written (`None` after
///   [`clear`](Self::clear) or on a new cache). An entry is current as of the watermark:
///   a reader that knows the store's head can tell whether the cache is behind it.
/// - The cache is never the source of truth: the watcher keeps ingesting when the cache
///   fails, and [`CollateralReader::rebuild_cache`](crate::reader::CollateralReader::rebuild_cache)
///   repopulates it from the store.
#[async_trait]
pub trait CollateralCache: Send + Sync + Debug {
    /// Stores the entries and, if `watermark` is set, the watermark, atomically.
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<BlockRef>,
    ) -> Result<(), CacheError>;

    /// The cached entry of `user`.
    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError>;

    /// The block up to which every change is in the cache, if recorded.
    async fn watermark(&self) -> Result<Option<BlockRef>, CacheError>;

    /// Drops every entry and the watermark.
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
}
