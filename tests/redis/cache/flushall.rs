//! A `FLUSHALL` of the cache's server (a private `redis-server`, never the shared one) in
//! the middle of a price fan-out: the watermark may only say "complete" once every holder's
//! entry is back, which the next refresh makes so.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry, UserId};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::{CollateralCache, StoreWriter};
use reorg_collateral::watcher::{Notification, UpdateCause};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;
use support::redis::PrivateRedis;

const TOKEN: Address = Address::repeat_byte(0xA1);
const HOLDERS: u64 = 2_000;

fn holder(i: u64) -> UserId {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(bytes)
}

fn answer(dollars: i64) -> I256 {
    I256::try_from(dollars * 100_000_000).expect("answer")
}

/// When the watermark names the store's state, every holder's entry is there, at `price`.
async fn complete_means_complete(cache: &RedisCollateralCache, state_is_mark: bool, price: i64) {
    if !state_is_mark {
        return;
    }
    let users: Vec<UserId> = (0..HOLDERS).map(holder).collect();
    let entries = cache.get_many(&users).await.expect("read");
    for (i, entry) in entries.into_iter().enumerate() {
        let entry = entry.unwrap_or_else(|| {
            panic!("holder {i} has no entry although the watermark says the cache is complete")
        });
        assert_eq!(
            entry.pending,
            Decimal::from((i as i64 + 1) * price),
            "holder {i}"
        );
    }
}

#[tokio::test]
async fn flushall_during_a_price_fan_out_is_refreshed_before_the_watermark_says_complete() {
    let server = PrivateRedis::start();
    let cache = Arc::new(
        RedisCollateralCache::connect(&server.url(), "flushed-cache")
            .await
            .expect("private redis"),
    );
    let registry = AssetRegistry::new([Asset::new(TOKEN, "TKN", 0, 10_000)]).expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 1_000));
    config.max_price_age = u64::MAX;
    config.refresh_chunk = 50;
    let chain = Arc::new(SimulatedChain::new(0));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await
        .expect("watcher")
        .with_cache(cache.clone());
    chain.mine(|b| {
        b.price(TOKEN, answer(1), 8);
        for i in 0..HOLDERS {
            b.deposit(TOKEN, holder(i), U256::from(i + 1));
        }
    });
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    assert!(watcher.verify_cache().await.expect("verify").is_empty());

    // A new price: the fan-out to every holder runs in chunks of 50 behind the writer.
    let mut updates = watcher.subscribe();
    chain.mine(|b| {
        b.price(TOKEN, answer(2), 8);
    });
    watcher.sync().await.expect("sync");
    loop {
        match updates.recv().await.expect("notifications") {
            Notification::Update(u) if u.cause == UpdateCause::PriceFanOut => break,
            _ => {}
        }
    }
    server.wipe().await;
    watcher.flush().await;
    let state = store.window().await.expect("window").state();
    let mark = cache.watermark().await.expect("watermark");
    complete_means_complete(&cache, mark.is_some() && mark == state, 2).await;

    // The next step's refresh: the watermark is the store's state again, and it is true.
    chain.mine(|b| {
        b.deposit(TOKEN, holder(HOLDERS), U256::from(1));
    });
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    let state = store.window().await.expect("window").state();
    assert_eq!(cache.watermark().await.expect("watermark"), state);
    complete_means_complete(&cache, true, 2).await;
    assert!(watcher.verify_cache().await.expect("verify").is_empty());
}
