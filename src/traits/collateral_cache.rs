use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{CachedCollateral, UserId};

/// A read cache of per-user collateral: `user → {asset: balance × price × factor}` and totals.
///
/// # Contract
/// - [`put`](Self::put) replaces the entries of the given users; a reader sees either all
///   entries of one call or none of them (one block is never half-applied).
/// - [`get`](Self::get) returns the last entry put for the user, `None` if absent.
/// - The cache is never the source of truth: the watcher keeps ingesting when the cache
///   fails, and [`Watcher::rebuild_cache`](crate::Watcher::rebuild_cache) repopulates it
///   from the store.
#[async_trait]
pub trait CollateralCache: Send + Sync + Debug {
    /// Stores the entries atomically, replacing earlier ones of the same users.
    async fn put(&self, entries: &[CachedCollateral]) -> Result<(), CacheError>;

    /// The cached entry of `user`.
    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError>;

    /// Drops every entry.
    async fn clear(&self) -> Result<(), CacheError>;
}
