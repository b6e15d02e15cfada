//! The conformance suite and the property test against Postgres, each scenario in its own
//! schema.

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::testing::{Backends, Harness, conformance, strategy};
use support::pg::fresh_store;

async fn backends() -> Backends {
    let store = Arc::new(fresh_store().await);
    Backends::new(store.clone(), store).with_cache(Arc::new(MemoryCache::new()))
}

#[tokio::test]
async fn extend_and_confirm() {
    conformance::extend_and_confirm(backends().await).await;
}

#[tokio::test]
async fn reorg_newer_of_two_pending() {
    conformance::reorg_newer_of_two_pending(backends().await).await;
}

#[tokio::test]
async fn confirm_older_of_two_pending() {
    conformance::confirm_older_of_two_pending(backends().await).await;
}

#[tokio::test]
async fn reorgs_of_every_depth() {
    conformance::reorgs_of_every_depth(backends().await).await;
}

#[tokio::test]
async fn prices_roll_back_and_reject() {
    conformance::prices_roll_back_and_reject(backends().await).await;
}

#[tokio::test]
async fn idempotent_and_restartable() {
    conformance::idempotent_and_restartable(backends().await).await;
}

#[tokio::test]
async fn cache_round_trip() {
    conformance::cache_round_trip(backends().await).await;
}

#[tokio::test]
async fn log_of_a_block_that_comes_back() {
    conformance::log_of_a_block_that_comes_back(backends().await).await;
}

#[tokio::test]
async fn random_walks() {
    for seed in 1..=3 {
        conformance::random_walk(backends().await, seed, 60).await;
    }
}

fn run(ops: Vec<strategy::Op>, apply_batch: usize, head_balance_memo: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut harness = Harness::with_config(backends().await, 6, 5, |c| {
            c.apply_batch = apply_batch;
            c.head_balance_memo = head_balance_memo;
        })
        .await;
        harness.run(&ops).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn postgres_equals_replay_oracle(ops in strategy::scenario(30, 6)) {
        run(ops, 1, 1_000);
    }

    /// Batched, and with the watcher's memo of balances at the head off: every base
    /// balance comes from the store's `balances_at`.
    #[test]
    fn postgres_batched_equals_replay_oracle(ops in strategy::scenario(30, 6)) {
        run(ops, 4, 0);
    }
}
