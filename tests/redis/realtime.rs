//! The real-time path on the production configuration (Postgres store + Redis cache):
//! a price fan-out to thousands of holders runs behind the writer, every entry a reader
//! sees on a second connection is one block's, a reorg in the middle of a fan-out ends
//! with the cache equal to the store, and a subscriber that lags is told where to resync.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry, BlockNumber, UserId};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::watcher::{Notification, UpdateCause};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;
use support::pg::fresh_store;
use support::redis::{redis_url, unique_prefix};

const TOKEN: Address = Address::repeat_byte(0xA1);
const HOLDERS: u64 = 3_000;

fn holder(i: u64) -> UserId {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(bytes)
}

/// `dollars` with the feed's 8 decimals.
fn answer(dollars: i64) -> I256 {
    I256::try_from(dollars * 100_000_000).expect("answer")
}

struct Setup {
    chain: Arc<SimulatedChain>,
    watcher: Watcher,
    prefix: String,
}

/// Waits for the refresh, then removes the test's keys from the shared server.
async fn clean_up(watcher: &Watcher) {
    watcher.flush().await;
    let cache = watcher.reader().cache().expect("cache");
    cache.clear().await.expect("clean up");
}

/// A 0-decimal token at factor 100 %: holder `i` holds `i + 1` units, so at price `k` its
/// value is exactly `(i + 1) × k`.
async fn setup(tweak: impl FnOnce(&mut WatcherConfig)) -> Setup {
    let registry = AssetRegistry::new([Asset::new(TOKEN, "TKN", 0, 10_000)]).expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 6));
    config.max_price_age = u64::MAX;
    config.refresh_chunk = 256;
    tweak(&mut config);
    let chain = Arc::new(SimulatedChain::new(0));
    let store = Arc::new(fresh_store().await);
    let prefix = unique_prefix("realtime");
    let cache = RedisCollateralCache::connect(&redis_url(), &prefix)
        .await
        .expect("redis");
    let watcher = Watcher::new(config, chain.clone(), store)
        .await
        .expect("watcher")
        .with_cache(Arc::new(cache));
    Setup {
        chain,
        watcher,
        prefix,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_fan_out_entries_are_one_blocks_and_end_equal_to_the_store() {
    let Setup {
        chain,
        mut watcher,
        prefix,
    } = setup(|_| {}).await;
    chain.mine(|b| {
        b.price(TOKEN, answer(3), 8);
        for i in 0..HOLDERS {
            b.deposit(TOKEN, holder(i), U256::from(i + 1));
        }
    });
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    let price_at: Arc<std::sync::Mutex<BTreeMap<BlockNumber, Vec<i64>>>> = Default::default();
    price_at.lock().unwrap().insert(1, vec![3]);

    // A reader on its own connection, during the fan-outs that follow.
    let reader = RedisCollateralCache::connect(&redis_url(), &prefix)
        .await
        .expect("second connection");
    let sample: Vec<UserId> = (0..HOLDERS).step_by(97).map(holder).collect();
    let done = Arc::new(AtomicBool::new(false));
    let check = {
        let (done, price_at, sample) = (done.clone(), price_at.clone(), sample.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            let mut blocks = std::collections::BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                let entries = reader.get_many(&sample).await.expect("read");
                for (i, entry) in sample.iter().zip(entries) {
                    let entry = entry.expect("every holder has an entry");
                    let units = i.as_slice()[12..]
                        .iter()
                        .fold(0u64, |n, b| n << 8 | u64::from(*b));
                    let prices = price_at
                        .lock()
                        .unwrap()
                        .get(&entry.block)
                        .cloned()
                        .unwrap_or_else(|| panic!("entry of unknown block {}", entry.block));
                    assert!(
                        prices
                            .iter()
                            .any(|k| entry.pending == Decimal::from(units * *k as u64)),
                        "{i}'s entry {} is no block #{}'s (prices {prices:?})",
                        entry.pending,
                        entry.block
                    );
                    blocks.insert(entry.block);
                }
                reads += 1;
            }
            (reads, blocks)
        })
    };

    // A price fan-out, then a reorg in the middle of the next one.
    price_at.lock().unwrap().insert(2, vec![5]);
    chain.mine(|b| {
        b.price(TOKEN, answer(5), 8);
    });
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    price_at.lock().unwrap().insert(3, vec![7, 11]);
    chain.mine(|b| {
        b.price(TOKEN, answer(7), 8);
    });
    watcher.sync().await.expect("sync");
    // Block 3 is replaced before its fan-out finished: the entries end at block 3'.
    chain.reorg(1);
    chain.mine(|b| {
        b.price(TOKEN, answer(11), 8);
    });
    // Block 3' has block 3's number: an entry stamped #3 is one of the two blocks'.
    watcher.sync().await.expect("sync after the reorg");
    let status = watcher.flush().await;
    done.store(true, Ordering::Relaxed);
    let (reads, _blocks) = check.await.expect("reader");
    assert!(reads > 0, "the reader read during the fan-outs");
    assert_eq!(status.failing, None);
    let head = watcher.window().head().map(|h| h.id());
    assert_eq!(status.through, head, "the watermark is the head");
    assert!(watcher.verify_cache().await.expect("verify").is_empty());
    for i in [0, HOLDERS / 2, HOLDERS - 1] {
        let read = watcher.reader().cached(holder(i)).await.expect("read");
        assert_eq!(read.source, reorg_collateral::ReadSource::Cache);
        assert_eq!(read.entry.pending, Decimal::from((i + 1) * 11));
    }
    clean_up(&watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_told_where_to_resync() {
    let Setup {
        chain, mut watcher, ..
    } = setup(|c| {
        c.channel_capacity = 2;
        c.refresh_chunk = 64;
    })
    .await;
    let mut slow = watcher.subscribe();
    chain.mine(|b| {
        b.price(TOKEN, answer(2), 8);
        for i in 0..1_000 {
            b.deposit(TOKEN, holder(i), U256::from(1));
        }
    });
    watcher.sync().await.expect("sync");
    let status = watcher.flush().await;
    let first = slow.recv().await.expect("a notification");
    let Notification::Lagged {
        chain: lagged_chain,
        missed,
        resync_from,
    } = first
    else {
        panic!("expected a lag, got {first:?}")
    };
    assert!(missed > 0);
    assert_eq!(
        lagged_chain,
        slow.chain(),
        "the lag names the watcher's chain"
    );
    assert_eq!(resync_from, status.through, "resync from the watermark");
    // After the lag the subscriber gets the newest updates, in order.
    let Some(Notification::Update(next)) = slow.recv().await else {
        panic!("expected an update after the lag")
    };
    assert!(matches!(
        next.cause,
        UpdateCause::Step | UpdateCause::PriceFanOut
    ));
    assert!(!next.users.is_empty());
    clean_up(&watcher).await;
}

/// The cache-state property scenarios on the production configuration: a Postgres store
/// (a schema of its own) and a Redis cache (a prefix of its own, removed afterwards).
async fn on_pg_redis<F, Fut>(scenario: F)
where
    F: Fn(reorg_collateral::testing::Backends, u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for seed in 1..=3 {
        let store = Arc::new(fresh_store().await);
        let cache = Arc::new(
            RedisCollateralCache::connect(&redis_url(), &unique_prefix("states"))
                .await
                .expect("redis"),
        );
        let backends = reorg_collateral::testing::Backends::new(store).with_cache(cache.clone());
        scenario(backends, seed).await;
        cache.clear().await.expect("clean up");
    }
}

#[tokio::test]
async fn postgres_redis_cached_reads_during_syncs() {
    on_pg_redis(|b, seed| {
        reorg_collateral::testing::conformance::cached_reads_during_syncs(b, seed, 60)
    })
    .await;
}

#[tokio::test]
async fn postgres_redis_finality_by_tag_alone() {
    on_pg_redis(|b, seed| {
        reorg_collateral::testing::conformance::finality_by_tag_alone(b, seed, 30)
    })
    .await;
}

#[tokio::test]
async fn postgres_redis_restarts_with_unflushed_refreshes() {
    on_pg_redis(|b, seed| {
        reorg_collateral::testing::conformance::restarts_with_unflushed_refreshes(b, seed, 30)
    })
    .await;
}
