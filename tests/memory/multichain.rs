//! Several chains, one store each: random interleaved steps (mine, reorg, head moving back,
//! finalized tag, redelivery, gap, writer restart) on 2 or 3 simulated chains whose blocks
//! share hashes; after every step each store equals its chain's replay oracle, the other
//! chains' stores are unchanged, and the multi-chain collateral (one asset priced from
//! another chain's feed) equals the sum of the per-chain oracle valuations.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::Backends;
use reorg_collateral::testing::multichain::{self, MultiHarness};

const WINDOW: u64 = 4;

fn run(chains: usize, steps: Vec<(u8, reorg_collateral::testing::strategy::Op)>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let backends = (0..chains)
            .map(|_| {
                Backends::new(Arc::new(MemoryStore::new())).with_cache(Arc::new(MemoryCache::new()))
            })
            .collect();
        let mut harness = MultiHarness::new(backends, WINDOW).await;
        harness.run(&steps).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn two_chains_each_equal_their_oracle(steps in multichain::scenario(2, 30, WINDOW)) {
        run(2, steps);
    }

    #[test]
    fn three_chains_each_equal_their_oracle(steps in multichain::scenario(3, 30, WINDOW)) {
        run(3, steps);
    }
}
