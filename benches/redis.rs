//! Redis cache benchmarks (needs `REDIS_URL`, default the local server).
//!
//! - read latency of one user's entry (p50 / p99 printed) and pipelined reads per second
//!   from one client;
//! - a price update for an asset with 100,000 holders: the watcher recomputes every
//!   holder's collateral and writes the cache; total time and cost per holder.
//!
//! `cargo bench --bench redis --features redis`

use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry, CachedAsset, CachedCollateral};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::CollateralCache;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;

const TOKEN: Address = Address::repeat_byte(0xA1);

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Times the watcher step that applies a price change to an asset held by 100,000 users.
async fn fan_out(cache: Arc<dyn CollateralCache>) -> (f64, u64) {
    let holders = 100_000u64;
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
        for i in 0..holders {
            b.set_balance(TOKEN, user(i), U256::from(10u64).pow(U256::from(18)));
        }
    });
    let store = Arc::new(MemoryStore::new());
    let mut w = Watcher::new(config, chain.clone(), store.clone(), store)
        .await
        .unwrap()
        .with_cache(cache);
    w.sync().await.unwrap();
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(101_000_000i64).unwrap(), 8);
    });
    let t = Instant::now();
    let report = w.sync().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(report.refreshed_users as u64, holders);
    assert_eq!(w.stats().cache_errors, 0);
    (secs, holders)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("rc_bench_{}", std::process::id());
    let cache = Arc::new(
        RedisCollateralCache::connect(&url, &prefix)
            .await
            .expect("Redis reachable"),
    );

    // Read latency and throughput over 10,000 cached users with 3 assets each.
    let entries: Vec<CachedCollateral> = (0..10_000u64)
        .map(|i| CachedCollateral {
            user: user(i),
            block: 1,
            confirmed: Decimal::from(i * 3),
            pending: Decimal::from(i * 3),
            assets: (1..=3u8)
                .map(|a| {
                    (
                        Address::repeat_byte(a),
                        CachedAsset {
                            confirmed: Some(Decimal::from(i)),
                            pending: Some(Decimal::from(i)),
                        },
                    )
                })
                .collect(),
            complete: true,
        })
        .collect();
    for chunk in entries.chunks(1_000) {
        cache.put(chunk).await.unwrap();
    }
    let mut lat = Vec::with_capacity(20_000);
    for i in 0..20_000u64 {
        let t = Instant::now();
        let e = cache.get(user(i % 10_000)).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(e.is_some());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "redis get (one HGETALL): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    let mut conn = cache.connection();
    let batch = 1_000u64;
    let rounds = 100u64;
    let t = Instant::now();
    for r in 0..rounds {
        let mut pipe = redis::pipe();
        for i in 0..batch {
            pipe.hgetall(cache.key(&user((r * batch + i) % 10_000)));
        }
        let read: Vec<std::collections::HashMap<String, String>> =
            pipe.query_async(&mut conn).await.unwrap();
        // Every read must hit a cached entry (3 assets + 4 totals), not a missing key.
        assert!(read.iter().all(|fields| fields.len() == 7));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pipelined entry reads from one client: {:.0} reads/s",
        (batch * rounds) as f64 / secs
    );

    // Price update fan-out to 100,000 holders, with the in-memory cache (valuation alone)
    // and with Redis (valuation + one MULTI write).
    let memory: Arc<dyn CollateralCache> = Arc::new(reorg_collateral::cache::MemoryCache::new());
    let redis_cache: Arc<dyn CollateralCache> = cache.clone();
    for (name, target) in [("memory cache", memory), ("redis cache", redis_cache)] {
        let (secs, holders) = fan_out(target).await;
        println!(
            "price update → {holders} holders refreshed, {name}: {:.0} ms, {:.2} µs per holder",
            secs * 1e3,
            secs * 1e6 / holders as f64
        );
    }
    cache.clear().await.unwrap();
}
