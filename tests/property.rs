//! Property tests: random chains with random reorgs (depth 1..=window), confirmations,
//! redeliveries, gaps and restarts; after every step the in-memory backends equal the
//! replay oracle (the harness checks balances, prices, log, collateral and cache).

use std::sync::Arc;

use proptest::prelude::*;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness, strategy};

const WINDOW: u64 = 6;

fn run(ops: Vec<strategy::Op>, apply_batch: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let backends = Backends::new(store.clone(), store).with_cache(Arc::new(MemoryCache::new()));
        let mut harness = Harness::with_config(backends, WINDOW, 5, |c| {
            c.apply_batch = apply_batch;
            c.fetch_concurrency = 3;
        })
        .await;
        harness.run(&ops).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 1);
    }

    /// Catch-up applies up to 4 linked blocks per changeset (one store transaction).
    #[test]
    fn batched_apply_equals_replay_oracle(ops in strategy::scenario(40, WINDOW)) {
        run(ops, 4);
    }
}
