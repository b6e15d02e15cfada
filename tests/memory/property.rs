//! Property tests: random chains with random reorgs (depth 1..=window), confirmations,
//! redeliveries, gaps and restarts; after every step the in-memory backends equal the
//! replay oracle (the harness checks balances, prices, log, collateral and cache), with the
//! watcher's memo of balances at the head and the refresher's view memo each on, off, and
//! overflowing.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness, strategy};

const WINDOW: u64 = 6;

fn run(ops: Vec<strategy::Op>, apply_batch: usize, head_memo: usize, refresh_memo: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let backends = Backends::new(store).with_cache(Arc::new(MemoryCache::new()));
        let mut harness = Harness::with_config(backends, WINDOW, 5, |c| {
            c.apply_batch = apply_batch;
            c.fetch_concurrency = 3;
            c.head_memo = head_memo;
            c.refresh_memo = refresh_memo;
        })
        .await;
        harness.run(&ops).await;
    });
}

proptest! {
    // Failing seeds are kept next to this file (`property.proptest-regressions`); proptest's
    // default would look beside the binary's `main.rs` instead.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn memory_store_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 1, 1_000, 1_000);
    }

    /// Every base balance read from the store (no memo of the balances at the head).
    #[test]
    fn without_the_head_memo_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 1, 0, 1_000);
    }

    /// A memo smaller than the users × assets written, so it keeps starting over.
    #[test]
    fn with_an_overflowing_head_memo_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 2, 3, 1_000);
    }

    /// Catch-up applies up to 4 linked blocks per changeset (one store transaction).
    #[test]
    fn batched_apply_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 4, 1_000, 1_000);
    }

    /// Every refresh reads from the store (no view memo).
    #[test]
    fn without_the_view_memo_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 1, 1_000, 0);
    }

    /// Some events underflow (their asset is quarantined, the rest goes on) and some steps
    /// resume an asset: still equal to the oracle, which applies the rule on its own.
    #[test]
    fn with_faults_equals_replay_oracle(ops in strategy::scenario_with_faults(40, WINDOW)) {
        run(ops, 1, 1_000, 1_000);
    }

    /// Faults, batched apply and a small view memo.
    #[test]
    fn with_faults_batched_equals_replay_oracle(ops in strategy::scenario_with_faults(40, WINDOW)) {
        run(ops, 4, 3, 2);
    }

    /// A view memo holding only some users: the others are read from the store.
    #[test]
    fn with_a_small_view_memo_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 2, 1_000, 2);
    }
}
