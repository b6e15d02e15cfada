use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{BlockRef, CachedCollateral, UserId};
use crate::traits::CollateralCache;

#[derive(Debug, Default)]
struct State {
    entries: HashMap<UserId, CachedCollateral>,
    watermark: Option<BlockRef>,
}

/// In-memory collateral cache: a map behind one lock, so a write is atomic for readers.
#[derive(Debug, Default)]
pub struct MemoryCache {
    state: RwLock<State>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached users.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl CollateralCache for MemoryCache {
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<BlockRef>,
    ) -> Result<(), CacheError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        for e in entries {
            state.entries.insert(e.user, e.clone());
        }
        if watermark.is_some() {
            state.watermark = watermark;
        }
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        Ok(self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .get(&user)
            .cloned())
    }

    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users.iter().map(|u| state.entries.get(u).cloned()).collect())
    }

    async fn watermark(&self) -> Result<Option<BlockRef>, CacheError> {
        Ok(self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .watermark)
    }

    async fn clear(&self) -> Result<(), CacheError> {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = State::default();
        Ok(())
    }
}
