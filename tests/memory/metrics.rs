//! The documented metrics (docs/operations.md) are the ones the crate records, and a
//! simulated run (blocks, a reorg, finality, a price fan-out, a failing cache, a failing
//! source) emits every one of them with its documented labels.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::{Address, I256, U256};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use reorg_collateral::metrics::{ALL, names};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::flaky::{Flaky, FlakyCache};

const TOKEN: Address = Address::repeat_byte(0xA1);
const OPERATIONS: &str = include_str!("../../docs/operations.md");

/// The metric names the operations page documents (every `reorg_collateral_…` in it).
fn documented() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in OPERATIONS.match_indices("`reorg_collateral_") {
        let rest = &OPERATIONS[at + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        found.insert(rest[..end].to_owned());
    }
    found
}

#[test]
fn documented_metrics_are_the_recorded_ones() {
    let recorded: BTreeSet<String> = ALL.iter().map(|m| m.name.to_owned()).collect();
    assert_eq!(
        documented(),
        recorded,
        "docs/operations.md and metrics::ALL"
    );
}

/// Returns the head and the finalized height at the end.
async fn simulated_run() -> (u64, u64) {
    let user = |i: u8| Address::repeat_byte(i);
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let source = Arc::new(Flaky::new(chain.clone()));
    let cache = Arc::new(FlakyCache::default());
    let mut watcher = Watcher::new(config, source.clone(), Arc::new(MemoryStore::new()))
        .await
        .unwrap()
        .with_cache(cache.clone());
    let price = |p: i64| I256::try_from(p * 100_000_000).unwrap();
    chain.mine(|b| {
        for i in 1..=5 {
            b.deposit(TOKEN, user(i), U256::from(1_000));
        }
        b.price(TOKEN, price(1), 8);
    });
    for _ in 0..5 {
        chain.mine(|b| {
            b.transfer(TOKEN, user(1), user(2), U256::from(1));
        });
    }
    watcher.sync().await.unwrap();
    watcher.flush().await;
    // A reorg of depth 2, then a price fan-out to every holder.
    chain.reorg(2);
    chain.mine(|b| {
        b.transfer(TOKEN, user(3), user(4), U256::from(2));
    });
    chain.mine(|b| {
        b.price(TOKEN, price(2), 8);
    });
    let report = watcher.sync().await.unwrap();
    assert_eq!(report.reverted, 2);
    watcher.flush().await;
    // A failing cache write, then a failing source.
    cache.failing.store(true, Ordering::SeqCst);
    chain.mine(|b| {
        b.transfer(TOKEN, user(2), user(5), U256::from(1));
    });
    watcher.sync().await.unwrap();
    let status = watcher.flush().await;
    assert!(
        status.failing.is_some(),
        "the cache write failed: {status:?}"
    );
    cache.failing.store(false, Ordering::SeqCst);
    source.failing.store(true, Ordering::SeqCst);
    assert!(watcher.sync().await.is_err());
    source.failing.store(false, Ordering::SeqCst);
    watcher.sync().await.unwrap();
    let status = watcher.flush().await;
    assert!(status.failing.is_none() && status.idle, "{status:?}");
    let window = watcher.window();
    (
        window.head().unwrap().number,
        window.finalized_number().unwrap(),
    )
}

#[test]
fn a_simulated_run_emits_every_documented_metric() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // A local recorder on a current-thread runtime: every task of the run (the refresher
    // too) is polled on this thread, and no other test's metrics come in.
    let (head, finalized) = metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(simulated_run())
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let mut emitted = BTreeSet::new();
    for (key, _, _, value) in &snapshot {
        let (name, labels) = (key.key().name(), key.key().labels());
        let labels: Vec<(&str, &str)> = labels.map(|l| (l.key(), l.value())).collect();
        let metric = ALL
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} is recorded but not in metrics::ALL"));
        let keys: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, metric.labels, "labels of {name}");
        assert!(
            labels.contains(&("chain_id", "31337")),
            "{name} is labelled with the chain id: {labels:?}"
        );
        emitted.insert(name.to_owned());
        let gauge = |v: &DebugValue| match v {
            DebugValue::Gauge(g) => g.into_inner(),
            other => panic!("{name} is a gauge, got {other:?}"),
        };
        match name {
            names::HEAD_BLOCK => assert_eq!(gauge(value), head as f64),
            names::FINALIZED_BLOCK => assert_eq!(gauge(value), finalized as f64),
            names::BLOCKS_BEHIND => assert_eq!(gauge(value), 0.0),
            names::CACHE_STALE_ENTRIES => assert_eq!(gauge(value), 0.0, "the cache caught up"),
            names::REORG_DEPTH => match value {
                DebugValue::Histogram(depths) => {
                    assert_eq!(
                        depths.iter().map(|d| d.into_inner()).collect::<Vec<_>>(),
                        [2.0]
                    );
                }
                other => panic!("reorg depth: {other:?}"),
            },
            names::REORGS | names::CACHE_ERRORS | names::SYNC_ERRORS => {
                assert!(
                    matches!(value, DebugValue::Counter(n) if *n >= 1),
                    "{name}: {value:?}"
                );
            }
            names::FAN_OUT_USERS => match value {
                DebugValue::Histogram(sizes) => {
                    assert!(sizes.iter().any(|s| s.into_inner() == 5.0), "{sizes:?}");
                }
                other => panic!("fan-out size: {other:?}"),
            },
            _ => {}
        }
    }
    // The per-endpoint source errors are the RPC source's (its own tests); no
    // reconciliation exists yet.
    let expected: BTreeSet<String> = ALL
        .iter()
        .map(|m| m.name)
        .filter(|n| ![names::SOURCE_ERRORS, names::RECONCILIATION_DRIFTS].contains(n))
        .map(str::to_owned)
        .collect();
    assert_eq!(emitted, expected);
}
