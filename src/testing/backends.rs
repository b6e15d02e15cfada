//! The backends a [`Harness`](super::Harness) or the [conformance](super::conformance)
//! suite runs against: shared by both, so neither imports the other.

use std::sync::Arc;

use crate::traits::{BalanceStore, CollateralCache, PriceFeed};

/// The backends under test.
#[derive(Clone, Debug)]
pub struct Backends {
    /// The store.
    pub store: Arc<dyn BalanceStore>,
    /// The price feed (often the same object as the store).
    pub prices: Arc<dyn PriceFeed>,
    /// The cache, if one is under test.
    pub cache: Option<Arc<dyn CollateralCache>>,
}

impl Backends {
    /// A store and price feed, no cache.
    pub fn new(store: Arc<dyn BalanceStore>, prices: Arc<dyn PriceFeed>) -> Self {
        Self {
            store,
            prices,
            cache: None,
        }
    }

    /// Adds a cache under test.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.cache = Some(cache);
        self
    }
}
