//! The backends a [`Harness`](super::Harness) or the [conformance](super::conformance)
//! suite runs against: shared by both, so neither imports the other.

use std::sync::Arc;

use crate::cache::MemoryCache;
use crate::traits::{BalanceStore, CollateralCache};

/// The backends under test.
#[derive(Clone, Debug)]
pub struct Backends {
    /// The store (every role, its price feed included).
    pub store: Arc<dyn BalanceStore>,
    /// The cache, if one is under test.
    pub cache: Option<Arc<dyn CollateralCache>>,
}

impl Backends {
    /// A store, no cache.
    pub fn new(store: Arc<dyn BalanceStore>) -> Self {
        Self { store, cache: None }
    }

    /// Adds a cache under test.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// These backends with their cache, or with an in-memory cache when none is under
    /// test (a scenario about the cache then still checks the store's side of it), and
    /// that cache.
    pub fn with_some_cache(mut self) -> (Self, Arc<dyn CollateralCache>) {
        let cache = self
            .cache
            .get_or_insert_with(|| Arc::new(MemoryCache::new()))
            .clone();
        (self, cache)
    }
}
