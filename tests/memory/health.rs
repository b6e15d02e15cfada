//! Health reports: the watcher's and a read-only process's, for each problem they name.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::health::{self, HealthProblem, HealthThresholds};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::flaky::{Flaky, FlakyCache, flaky_store};

const TOKEN: Address = Address::repeat_byte(0xA1);

fn config() -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    config
}

fn mine(chain: &SimulatedChain, blocks: usize) {
    for i in 0..blocks {
        chain.mine(|b| {
            b.deposit(
                TOKEN,
                Address::repeat_byte(1 + (i % 7) as u8),
                U256::from(10),
            );
            if i == 0 {
                b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
            }
        });
    }
}

fn kinds(problems: &[HealthProblem]) -> Vec<&'static str> {
    problems
        .iter()
        .map(|p| match p {
            HealthProblem::BehindSource { .. } => "behind",
            HealthProblem::SyncFailing { .. } => "sync",
            HealthProblem::CacheFailing { .. } => "cache",
            HealthProblem::RefreshBehind { .. } => "refresh",
            HealthProblem::StoreUnreachable { .. } => "store",
            _ => "other",
        })
        .collect()
}

#[tokio::test]
async fn the_watchers_report_names_each_problem() {
    let thresholds = HealthThresholds::default();
    let chain = Arc::new(SimulatedChain::new(1));
    let source = Arc::new(Flaky::new(chain.clone()));
    let (store, store_down) = flaky_store();
    let cache = Arc::new(FlakyCache::default());
    let mut watcher = Watcher::new(config(), source.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache.clone());

    // Before the first sync: not ready (no sync yet), but live.
    let report = watcher.health(&thresholds).await;
    assert_eq!(kinds(&report.problems), ["sync"]);
    assert!(!report.ready() && report.live());

    mine(&chain, 30);
    watcher.sync().await.unwrap();
    watcher.flush().await;
    let report = watcher.health(&thresholds).await;
    assert!(report.healthy(), "{report:?}");
    assert_eq!(report.head, Some(chain.head_number()));
    assert_eq!(report.source_head, Some(chain.head_number()));
    assert_eq!(report.refresh_through, report.head);

    // The source has 20 more blocks but delivers none of them: behind by 20, sync failing.
    let delivered = chain.head_number();
    source.deliver_up_to.store(delivered, Ordering::SeqCst);
    mine(&chain, 20);
    assert!(watcher.sync().await.is_err());
    let report = watcher.health(&thresholds).await;
    assert_eq!(kinds(&report.problems), ["sync", "behind"]);
    assert!(matches!(
        report.problems[1],
        HealthProblem::BehindSource { behind: 20, .. }
    ));
    assert!(!report.ready() && report.live());

    // The blocks arrive while the cache fails: degraded (reads come from the store), ready.
    source.deliver_up_to.store(u64::MAX, Ordering::SeqCst);
    cache.failing.store(true, Ordering::SeqCst);
    watcher.sync().await.unwrap();
    let status = watcher.flush().await;
    assert!(status.failing.is_some());
    let report = watcher.health(&thresholds).await;
    assert_eq!(kinds(&report.problems), ["cache", "refresh"], "{report:?}");
    assert!(
        report.ready() && report.live(),
        "a failing cache only degrades"
    );

    // The store stops answering: neither ready nor live.
    store_down.store(true, Ordering::SeqCst);
    let report = watcher.health(&thresholds).await;
    assert!(kinds(&report.problems).contains(&"store"));
    assert!(!report.ready() && !report.live());

    // Everything recovers.
    store_down.store(false, Ordering::SeqCst);
    cache.failing.store(false, Ordering::SeqCst);
    watcher.sync().await.unwrap();
    watcher.flush().await;
    let report = watcher.health(&thresholds).await;
    assert!(report.healthy(), "{report:?}");

    // A restarted watcher over the current cache: healthy at its first sync.
    drop(watcher);
    let mut watcher = Watcher::new(config(), source.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache.clone());
    watcher.sync().await.unwrap();
    watcher.flush().await;
    let report = watcher.health(&thresholds).await;
    assert!(report.healthy(), "after a restart: {report:?}");
}

#[tokio::test]
async fn a_read_only_process_computes_the_same_report() {
    let thresholds = HealthThresholds::default();
    let chain = Arc::new(SimulatedChain::new(1));
    let (store, store_down) = flaky_store();
    let cache = Arc::new(FlakyCache::default());
    let mut watcher = Watcher::new(config(), chain.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache.clone());
    mine(&chain, 30);
    watcher.sync().await.unwrap();
    watcher.flush().await;
    let reader = watcher.reader().clone();
    let head = chain.head_number();

    let report = health::check(&reader, Some(head), &thresholds).await;
    assert!(report.healthy(), "{report:?}");
    assert_eq!(
        (report.head, report.refresh_through, report.finalized),
        (Some(head), Some(head), Some(head - 3))
    );

    // The source is 11 blocks ahead: behind (a threshold of 10).
    let report = health::check(&reader, Some(head + 11), &thresholds).await;
    assert_eq!(kinds(&report.problems), ["behind"]);
    assert!(!report.ready());

    // The watcher applies 15 blocks while the cache fails: the watermark lags by 15.
    cache.failing.store(true, Ordering::SeqCst);
    mine(&chain, 15);
    watcher.sync().await.unwrap();
    watcher.flush().await;
    let report = health::check(&reader, Some(head + 15), &thresholds).await;
    assert_eq!(kinds(&report.problems), ["refresh"], "{report:?}");
    assert!(matches!(
        report.problems[0],
        HealthProblem::RefreshBehind { through: Some(t), head: h, .. } if t == head && h == head + 15
    ));
    assert!(report.ready(), "reads fall back to the store");

    store_down.store(true, Ordering::SeqCst);
    let report = health::check(&reader, None, &thresholds).await;
    assert_eq!(kinds(&report.problems), ["store"]);
    assert!(!report.live());
}
