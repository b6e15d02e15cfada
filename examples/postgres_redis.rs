//! The original design's whole data flow: simulated chain → Postgres event log → current
//! state → Redis cache, printing each user's collateral as read from the cache.
//!
//! ```sh
//! cargo run --example postgres_redis --features postgres,redis
//! ```
//! Uses `DATABASE_URL` (schema `reorg_collateral_flow`) and `REDIS_URL` (prefix `rc_flow`).

use std::sync::Arc;

use alloy_primitives::Address;
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pg = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = Arc::new(PostgresStore::connect_in_schema(&pg, "reorg_collateral_flow").await?);
    let cache = Arc::new(RedisCollateralCache::connect(&redis, "rc_flow").await?);

    let assets = vec![
        Asset::new(Address::repeat_byte(0xA1), "USDC", 6, 9_000),
        Asset::new(Address::repeat_byte(0xA2), "WETH", 18, 8_000),
    ];
    let registry = AssetRegistry::new(assets.clone())?;
    store.register_assets(&registry).await?;
    let users: Vec<Address> = (1..=4u8).map(Address::repeat_byte).collect();

    let mut script = ScriptedChain::new(9, 1, users.clone(), assets);
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 6));
    config.start_block = 1;
    config.max_price_age = u64::MAX;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await?
        .with_cache(cache);
    let stored_head = watcher.window().head().map_or(0, |h| h.number);
    for _ in 0..30 {
        script.step(8);
        if script.chain.head_number() >= stored_head {
            watcher.sync().await?;
        }
    }
    // Make sure the cache holds everyone (e.g. after a Redis restart), then read from it.
    watcher
        .rebuild_cache(|done, total| eprintln!("cache rebuild {done}/{total}"))
        .await?;
    println!(
        "head #{}, finalized #{:?}",
        script.chain.head_number(),
        watcher.window().finalized_number()
    );
    for user in users {
        let c = watcher.cached_collateral(user).await?.entry;
        println!(
            "{user}: confirmed {:>16}  pending {:>16}  ({} assets)",
            c.confirmed.round_dp(2),
            c.pending.round_dp(2),
            c.assets.len()
        );
    }
    Ok(())
}
