use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{CachedCollateral, UserId};
use crate::traits::CollateralCache;

/// In-memory collateral cache: a map behind one lock, so a `put` is atomic for readers.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: RwLock<HashMap<UserId, CachedCollateral>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached users.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl CollateralCache for MemoryCache {
    async fn put(&self, entries: &[CachedCollateral]) -> Result<(), CacheError> {
        let mut map = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        for e in entries {
            map.insert(e.user, e.clone());
        }
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        Ok(self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user)
            .cloned())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }
}
