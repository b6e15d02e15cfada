//! Each chain's watcher on a task of its own: `Watcher::run` (and so `sync`) is a `Send +
//! 'static` future that `tokio::spawn` takes, the way a service runs one writer per chain.
//! (A closure over borrowed opening reads once made it `Send` for one lifetime only, so
//! this did not compile.)

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use tokio_util::sync::CancellationToken;

const TOKEN: Address = Address::repeat_byte(0xA1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chains_watcher_runs_on_a_spawned_task() {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).unwrap();
    let user = Address::repeat_byte(1);
    let mut tasks = Vec::new();
    let mut stores = Vec::new();
    for (blocks, amount) in [(20u64, 3u64), (30, 5)] {
        let chain = Arc::new(SimulatedChain::new(1));
        for _ in 0..blocks {
            chain.mine(|b| {
                b.deposit(TOKEN, user, U256::from(amount));
                b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
            });
        }
        let store = Arc::new(MemoryStore::new());
        let mut config = WatcherConfig::new(EngineConfig::new(assets.clone(), 3));
        config.start_block = 1;
        let mut watcher = Watcher::new(config, chain.clone(), store.clone())
            .await
            .unwrap()
            .with_cache(Arc::new(MemoryCache::new()));
        let token = CancellationToken::new();
        let mut progress = watcher.progress();
        let target = chain.head_number();
        let cancel = token.clone();
        tasks.push(tokio::spawn(async move {
            let run = tokio::spawn(async move {
                let report = watcher.run(Duration::from_millis(5), token).await;
                (watcher, report)
            });
            while progress.borrow_and_update().head != Some(target) {
                progress.changed().await.expect("the watcher runs");
            }
            cancel.cancel();
            run.await.expect("the watcher's task")
        }));
        stores.push((store, blocks * amount));
    }
    for (task, (store, expected)) in tasks.into_iter().zip(stores) {
        let (watcher, report) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("both chains are followed")
            .expect("the task");
        let report = report.expect("run");
        assert!(report.applied > 0, "blocks were applied: {report:?}");
        let balance = store
            .balance(BalanceKey { user, asset: TOKEN })
            .await
            .unwrap();
        assert_eq!(
            balance.pending,
            U256::from(expected),
            "every deposit of the chain"
        );
        watcher.shutdown().await.unwrap();
    }
}
