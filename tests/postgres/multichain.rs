//! The multi-chain property on Postgres: 2 or 3 simulated chains, each chain's store in its
//! own schema of the shared database, random interleaved steps; after every step each
//! schema equals its chain's replay oracle, the other schemas are unchanged, and the
//! multi-chain collateral (one asset priced from another chain's feed) equals the sum of
//! the per-chain oracle valuations. The schemas are of one database, so the reader takes
//! the one-statement path; the same collateral read chain by chain (through decorators of
//! the same stores, the separate reads) must be equal after every step.

use crate::support;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use reorg_collateral::BalanceStore;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::ComposedStore;
use reorg_collateral::testing::Backends;
use reorg_collateral::testing::multichain::{self, MultiHarness};
use reorg_collateral::testing::strategy::Op;
use support::pg::fresh_store;

const WINDOW: u64 = 4;

fn run(chains: usize, steps: Vec<(u8, Op)>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut backends = Vec::with_capacity(chains);
        let mut separate: Vec<Arc<dyn BalanceStore>> = Vec::with_capacity(chains);
        for _ in 0..chains {
            let store = fresh_store().await;
            separate.push(Arc::new(ComposedStore::new(
                store.clone(),
                Arc::new(store.clone()),
            )));
            backends.push(Backends::new(Arc::new(store)).with_cache(Arc::new(MemoryCache::new())));
        }
        let mut harness = MultiHarness::new(backends, WINDOW).await;
        assert!(
            harness.reader.reads_in_one_statement(),
            "schemas of one database are read in one statement"
        );
        harness.compare_with(separate);
        assert!(
            !harness
                .reference
                .as_ref()
                .is_some_and(|r| r.reads_in_one_statement()),
            "decorated stores are read separately"
        );
        harness.run(&steps).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn two_schemas_each_equal_their_chain_oracle(steps in multichain::scenario(2, 20, WINDOW)) {
        run(2, steps);
    }

    #[test]
    fn three_schemas_each_equal_their_chain_oracle(steps in multichain::scenario(3, 20, WINDOW)) {
        run(3, steps);
    }
}
