//! The conformance suite against the in-memory backends (store, price feed and cache).

use std::sync::Arc;

use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance, conformance_tests};

fn backends() -> Backends {
    let store = Arc::new(MemoryStore::new());
    Backends::new(store).with_cache(Arc::new(MemoryCache::new()))
}

conformance_tests!(async || backends(), random_walks: 1..=8, steps: 80);

#[tokio::test]
async fn run_all_without_cache() {
    conformance::run_all(|| async {
        let store = Arc::new(MemoryStore::new());
        Backends::new(store)
    })
    .await;
}
