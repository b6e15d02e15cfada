//! `Watcher::run` follows the source until its token is cancelled; `Watcher::shutdown`
//! flushes the refresh; a watcher started again resumes where it stopped.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use tokio_util::sync::CancellationToken;

const TOKEN: Address = Address::repeat_byte(0xA1);

fn config() -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    config.apply_batch = 4;
    config
}

fn mine(chain: &SimulatedChain, blocks: u64) {
    for i in 0..blocks {
        chain.mine(|b| {
            b.deposit(
                TOKEN,
                Address::repeat_byte(1 + (i % 5) as u8),
                U256::from(7),
            );
            b.price(TOKEN, I256::try_from(100_000_000 + i as i64).unwrap(), 8);
        });
    }
}

/// Runs `watcher` until its progress reaches `target`, then cancels it.
async fn run_to(watcher: &mut Watcher, target: u64) -> reorg_collateral::StepReport {
    let token = CancellationToken::new();
    let mut progress = watcher.progress();
    let cancel = token.clone();
    tokio::spawn(async move {
        while progress.borrow_and_update().head != Some(target) {
            if progress.changed().await.is_err() {
                return;
            }
        }
        cancel.cancel();
    });
    tokio::time::timeout(
        Duration::from_secs(60),
        watcher.run(Duration::from_millis(5), token),
    )
    .await
    .expect("run returns once cancelled")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_on_its_token_and_a_restart_resumes() {
    let chain = Arc::new(SimulatedChain::new(1));
    let store = Arc::new(MemoryStore::new());
    let cache = Arc::new(MemoryCache::new());
    mine(&chain, 40);
    let mut watcher = Watcher::new(config(), chain.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache.clone());
    let head = chain.head_number();
    let report = run_to(&mut watcher, head).await;
    assert_eq!(report.applied as u64, head, "every block, once");
    let status = watcher.shutdown().await.unwrap();
    assert!(status.idle, "the refresh was flushed: {status:?}");
    assert_eq!(status.through.map(|b| b.number), Some(head));
    assert_eq!(
        cache.watermark().await.unwrap().map(|b| b.head.number),
        Some(head)
    );

    // Started again on the same store and cache: resumes from the checkpoint.
    mine(&chain, 10);
    let mut watcher = Watcher::new(config(), chain.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache.clone());
    let report = run_to(&mut watcher, head + 10).await;
    assert_eq!(report.applied, 10, "only the new blocks");
    assert_eq!(report.reverted, 0);
    let status = watcher.shutdown().await.unwrap();
    assert_eq!(status.through.map(|b| b.number), Some(head + 10));
    let user = Address::repeat_byte(1);
    // 50 deposits over 5 users: 10 each of 7.
    assert_eq!(
        store
            .balance(reorg_collateral::model::BalanceKey { user, asset: TOKEN })
            .await
            .unwrap()
            .pending,
        U256::from(70)
    );
}
