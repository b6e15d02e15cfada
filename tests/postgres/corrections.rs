//! Correction rows (log kind 3) on Postgres: written before the block's own events, read
//! back as `Effect::Reconcile` in the same order as the memory store's log, folded like an
//! absolute balance by the store and by the migration toolkit's fold of the crate's log
//! (`verify` over `History::CrateLog` is clean).

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use reorg_collateral::migration::{History, VerifyMode, verify};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey, CorrectionOrigin, Effect};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::support::pg::fresh_store;

const TOKEN: Address = Address::repeat_byte(0xA1);

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

/// Follows a chain with corrections among the events into `store`, everything finalized.
async fn run(store: Arc<dyn BalanceStore>) {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        b.deposit(TOKEN, user(1), U256::from(100));
    });
    chain.mine(|b| {
        // Given after the withdrawal, applied before it (it is read at the parent).
        b.withdraw(TOKEN, user(1), U256::from(10));
        b.correction(TOKEN, user(1), U256::from(40), CorrectionOrigin::Drift);
    });
    chain.mine(|b| {
        b.transfer(TOKEN, user(1), user(2), U256::from(5));
        b.correction(TOKEN, user(2), U256::from(7), CorrectionOrigin::Opening);
    });
    for _ in 0..3 {
        chain.mine(|_| {});
    }
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 0, 10_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 2));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, chain, store).await.expect("watcher");
    watcher.sync().await.expect("sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correction_rows_apply_first_and_fold_in_the_log() {
    let pg = Arc::new(fresh_store().await);
    run(pg.clone()).await;
    let memory = Arc::new(MemoryStore::new());
    run(memory.clone()).await;

    for (i, want) in [(1, 25u64), (2, 12)] {
        let key = BalanceKey {
            user: user(i),
            asset: TOKEN,
        };
        let view = pg.balance(key).await.expect("balance");
        assert_eq!(
            (view.confirmed, view.pending),
            (U256::from(want), U256::from(want))
        );
    }
    let rows = pg.log(0..=u64::MAX).await.expect("log");
    assert_eq!(rows, memory.log(0..=u64::MAX).await.expect("log"));
    let at = rows
        .iter()
        .find(|r| r.effect == Effect::Reconcile(U256::from(40)))
        .expect("the drift correction")
        .block;
    let block2: Vec<_> = rows.iter().filter(|r| r.block == at).collect();
    assert_eq!(block2.len(), 2);
    assert!(block2[0].log.is_correction());
    assert_eq!(block2[0].effect, Effect::Reconcile(U256::from(40)));
    assert_eq!(block2[1].effect, Effect::Debit(U256::from(10)));

    let report = verify(pg.pool(), &History::CrateLog, VerifyMode::Full, 10)
        .await
        .expect("verify");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.keys_checked, 2);
}
