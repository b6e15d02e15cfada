//! Flush, outage and refused writes: ingestion goes on, reads fall back to the store, and
//! `rebuild` / the next refresh heal the cache until `verify` is clean.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{I256, U256};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::CachedCollateral;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;
use support::redis::{PrivateRedis, fresh_cache};

/// Flushing the cache mid-run: ingestion goes on, reads fall back to the store, `verify`
/// reports the gap, `rebuild` repopulates with progress, and `verify` is then clean.
#[tokio::test]
async fn flushed_cache_falls_back_rebuilds_and_verifies() {
    let cache = Arc::new(fresh_cache("flush").await);
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(Backends::new(store).with_cache(cache.clone()), 3).await;
    let (usdc, alice) = (h.assets[0].id, h.users[0]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(5_000_000u64));
    });
    h.sync().await;
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());

    cache.clear().await.unwrap();
    assert_eq!(cache.get(alice).await.unwrap(), None);
    let mismatches = h.watcher.verify_cache().await.unwrap();
    assert_eq!(mismatches.len(), 1, "verify must report the flushed entry");
    assert_eq!(mismatches[0].user, alice);
    let fallback = h.watcher.cached_collateral(alice).await.unwrap().entry;
    let truth = h.watcher.collateral(alice).await.unwrap();
    assert_eq!(
        (fallback.confirmed, fallback.pending),
        (truth.confirmed.total, truth.pending.total),
        "store fallback"
    );
    assert_eq!(
        fallback.pending,
        Decimal::new(45, 1),
        "5 USDC × $1 × 90 %, still pending"
    );

    h.chain.mine(|b| {
        b.deposit(usdc, h.users[1], U256::from(1_000_000u64));
    });
    h.sync().await; // ingestion goes on
    let mut progress = Vec::new();
    let n = h
        .watcher
        .rebuild_cache(|done, total| progress.push((done, total)))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(progress.last(), Some(&(2, 2)));
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());

    // An entry of the previous layout (a string) is reported, not an error, and a rebuild
    // replaces it.
    let mut conn = cache.connection();
    redis::AsyncCommands::set::<_, _, ()>(&mut conn, cache.key(&alice), "7|1|4.5|4.5")
        .await
        .unwrap();
    let mismatches = h.watcher.verify_cache().await.unwrap();
    assert_eq!(mismatches.len(), 1);
    assert_eq!((mismatches[0].user, &mismatches[0].cached), (alice, &None));
    let why = mismatches[0].unreadable.as_deref().unwrap_or_default();
    assert!(why.contains("not a hash"), "{why}");
    h.watcher.rebuild_cache(|_, _| {}).await.unwrap();
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}

/// Redis killed mid-run: ingestion goes on (cache errors are counted, not returned), the
/// cache catches up after the server returns and a rebuild, and verify is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_mid_run_does_not_stop_ingestion() {
    let mut server = PrivateRedis::start();
    let cache = Arc::new(
        RedisCollateralCache::connect(&server.url(), "outage")
            .await
            .unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(Backends::new(store.clone()).with_cache(cache.clone()), 3).await;
    let usdc = h.assets[0].id;
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, h.users[0], U256::from(7_000_000u64));
    });
    h.sync().await;
    assert_eq!(h.watcher.refresh_status().cache_errors, 0);

    server.kill();
    for i in 0..4u64 {
        h.chain.mine(|b| {
            b.deposit(
                usdc,
                h.users[(i % 3) as usize],
                U256::from(1_000_000u64 + i),
            );
        });
        h.sync().await; // must not fail
    }
    assert!(
        h.watcher.refresh_status().cache_errors > 0,
        "cache writes should have failed while Redis was down"
    );
    let c = h.watcher.cached_collateral(h.users[1]).await.unwrap().entry;
    assert!(
        !c.pending.is_zero(),
        "reads fall back to the store while Redis is down"
    );

    server.restart();
    // The connection manager reconnects on its own schedule: retry (bounded) until it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let rebuilt = loop {
        match h.watcher.rebuild_cache(|_, _| {}).await {
            Ok(n) => break n,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("no rebuild within a minute of Redis coming back: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    };
    assert_eq!(rebuilt, 3, "rebuild after Redis came back");
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}

/// A put that fails while Redis still holds the older entries (here: the server refuses
/// writes) must not leave those entries served as current: until the cache is healed,
/// `cached_collateral` reads the store, and the next successful refresh rewrites them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_put_does_not_leave_stale_entries_behind() {
    let server = PrivateRedis::start();
    let cache = Arc::new(
        RedisCollateralCache::connect(&server.url(), "stale")
            .await
            .unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(Backends::new(store).with_cache(cache.clone()), 3).await;
    let (usdc, alice, bob) = (h.assets[0].id, h.users[0], h.users[1]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(1_000_000u64));
    });
    h.sync().await;

    // The server (this test's own) refuses every write from now on (reads still work).
    server.config_set("min-replicas-to-write", "1").await;
    h.chain.mine(|b| {
        b.deposit(usdc, alice, U256::from(9_000_000u64));
    });
    h.sync().await;
    // At least one failed write (the circuit breaker may have retried since).
    let status = h.watcher.refresh_status();
    assert!(status.cache_errors >= 1, "{status:?}");
    assert!(status.failing.is_some(), "{status:?}");
    assert_eq!(
        h.watcher.stale_cache_entries(),
        1,
        "alice's entry is outdated"
    );
    let truth = CachedCollateral::new(&h.watcher.collateral(alice).await.unwrap(), None);
    let served = h.watcher.cached_collateral(alice).await.unwrap().entry;
    assert_eq!(
        (served.confirmed, served.pending),
        (truth.confirmed, truth.pending),
        "an entry whose refresh failed must not be served as current"
    );

    // Writes work again: the next step (which does not touch alice) heals her entry.
    let failed = h.watcher.refresh_status().cache_errors;
    server.config_set("min-replicas-to-write", "0").await;
    h.chain.mine(|b| {
        b.deposit(usdc, bob, U256::from(1_000_000u64));
    });
    h.sync().await;
    // The circuit breaker may have retried (and failed) any number of times while writes
    // were refused, and once more before they were allowed again: a bound, not a count.
    let status = h.watcher.refresh_status();
    assert!(status.cache_errors >= failed, "{status:?}");
    assert_eq!(status.failing, None, "the cache healed: {status:?}");
    assert_eq!(h.watcher.stale_cache_entries(), 0);
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}
