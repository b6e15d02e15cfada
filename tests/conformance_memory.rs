//! The conformance suite against the in-memory backends (store, price feed and cache).

use std::sync::Arc;

use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance};

fn backends() -> Backends {
    let store = Arc::new(MemoryStore::new());
    Backends::new(store.clone(), store).with_cache(Arc::new(MemoryCache::new()))
}

#[tokio::test]
async fn extend_and_confirm() {
    conformance::extend_and_confirm(backends()).await;
}

#[tokio::test]
async fn reorg_newer_of_two_pending() {
    conformance::reorg_newer_of_two_pending(backends()).await;
}

#[tokio::test]
async fn confirm_older_of_two_pending() {
    conformance::confirm_older_of_two_pending(backends()).await;
}

#[tokio::test]
async fn reorgs_of_every_depth() {
    conformance::reorgs_of_every_depth(backends()).await;
}

#[tokio::test]
async fn prices_roll_back_and_reject() {
    conformance::prices_roll_back_and_reject(backends()).await;
}

#[tokio::test]
async fn idempotent_and_restartable() {
    conformance::idempotent_and_restartable(backends()).await;
}

#[tokio::test]
async fn cache_round_trip() {
    conformance::cache_round_trip(backends()).await;
}

#[tokio::test]
async fn log_of_a_block_that_comes_back() {
    conformance::log_of_a_block_that_comes_back(backends()).await;
}

#[tokio::test]
async fn claim_writer_identity() {
    conformance::claim_writer_identity(backends()).await;
}

#[tokio::test]
async fn random_walks() {
    for seed in 1..=8 {
        conformance::random_walk(backends(), seed, 80).await;
    }
}

#[tokio::test]
async fn run_all_without_cache() {
    conformance::run_all(|| async {
        let store = Arc::new(MemoryStore::new());
        Backends::new(store.clone(), store)
    })
    .await;
}
