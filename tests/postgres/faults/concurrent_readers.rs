//! Readers hammering the store while the writer ingests: no deadlock, no confirmed value
//! ahead of a commit.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{EVENTS, STEPS, USERS};
use reorg_collateral::model::{AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::testing::replay;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::pg::fresh_store;

/// One writer ingests while 8 readers hammer collateral and balance reads. No deadlock is
/// recorded, and every confirmed value a reader saw is the oracle's confirmed value at a
/// finalized height between the ones it saw before and after the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_deadlock_or_see_confirmed_ahead_of_commits() {
    let store = Arc::new(fresh_store().await);
    let deadlocks = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let before = deadlocks().await;
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).unwrap();
    let mut script = ScriptedChain::new(
        11,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        assets.clone(),
    );
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 6));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await
        .unwrap();
    watcher.sync().await.unwrap();
    let valuator = watcher.valuator().clone();

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..8usize {
        let (store, done, valuator, assets) = (
            store.clone(),
            done.clone(),
            valuator.clone(),
            assets.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = r;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let user = ScriptedChain::demo_user(i % USERS);
                let f1 = store.window().await.unwrap().finalized_number();
                let views = store.user_balances(user).await.unwrap();
                let _ = reorg_collateral::reader::CollateralReader::new(
                    store.clone(),
                    valuator.clone(),
                )
                .collateral_at(user, Default::default())
                .await
                .unwrap();
                let f2 = store.window().await.unwrap().finalized_number();
                for (asset, view) in views {
                    seen.push((BalanceKey { user, asset }, f1, f2, view.confirmed));
                }
                let _ = store
                    .balance(BalanceKey {
                        user,
                        asset: assets[i % 2].id,
                    })
                    .await
                    .unwrap();
                i += 1;
            }
            seen
        }));
    }
    for _ in 0..STEPS {
        script.step(EVENTS);
        watcher.sync().await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut observations = Vec::new();
    for r in readers {
        observations.extend(r.await.unwrap());
    }
    assert_eq!(
        deadlocks().await,
        before,
        "deadlocks recorded during the load test"
    );
    assert!(
        observations.len() > 100,
        "readers made too few reads: {}",
        observations.len()
    );

    // Confirmed balances of the final chain at every finalized height.
    let canonical = script.chain.canonical();
    let mut at: BTreeMap<u64, reorg_collateral::testing::Expected> = BTreeMap::new();
    for (key, f1, f2, confirmed) in observations {
        let lo = f1.unwrap_or(0);
        let hi = f2.unwrap_or(0);
        let ok = (lo..=hi).any(|f| {
            let e = at
                .entry(f)
                .or_insert_with(|| replay(&canonical, (f > 0).then_some(f)));
            e.balance(&key).confirmed == confirmed
        });
        assert!(
            ok,
            "{key:?}: confirmed {confirmed} seen between finalized {f1:?} and {f2:?} is no committed state"
        );
    }
}
