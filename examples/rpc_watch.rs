//! Tails an Ethereum node and prints every user's collateral change as it happens.
//!
//! ```sh
//! RPC_URL=http://127.0.0.1:8545 \
//! TOKENS=0xToken:TST:18:8000 FEEDS=0xFeed:0xToken:8 \
//! cargo run --example rpc_watch --features rpc            # in-memory store
//! cargo run --example rpc_watch --features rpc,postgres,redis  # + DATABASE_URL, REDIS_URL
//! ```
//!
//! - `TOKENS`: comma-separated `address:symbol:decimals:collateral_factor_bps` (ERC-20s).
//! - `FEEDS`: comma-separated `aggregator:asset:feed_decimals` (Chainlink-style feeds).
//! - `START_BLOCK` (default: 100 blocks below the head), `CONFIRMATIONS` (default 12),
//!   `POLL_MS` (default 1000), `FINALITY` = `finalized` | `safe` | `none` (default `finalized`).
//! - With feature `postgres` and `DATABASE_URL` set, state lives in Postgres (schema
//!   `reorg_collateral_watch`, resumed across restarts); with feature `redis` and
//!   `REDIS_URL` set, collateral is also written to Redis (prefix `rc_watch`).

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::{
    BalanceStore, BlockSource, EngineConfig, PriceFeed, Watcher, WatcherConfig,
};

type Error = Box<dyn std::error::Error>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn list(name: &str) -> Vec<Vec<String>> {
    env_or(name, "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().split(':').map(str::to_string).collect())
        .collect()
}

fn parse_config() -> Result<(Vec<Asset>, Decoders), Error> {
    let mut assets = Vec::new();
    let mut decoders = Decoders::new();
    for t in list("TOKENS") {
        let [address, symbol, decimals, bps] = t.as_slice() else {
            return Err(format!("TOKENS entry {t:?}: want address:symbol:decimals:bps").into());
        };
        let address: Address = address.parse()?;
        assets.push(Asset::new(
            address,
            symbol.clone(),
            decimals.parse()?,
            bps.parse()?,
        ));
        decoders = decoders.with(address, Contract::Token { asset: address });
    }
    for f in list("FEEDS") {
        let [feed, asset, decimals] = f.as_slice() else {
            return Err(format!("FEEDS entry {f:?}: want aggregator:asset:decimals").into());
        };
        let contract = Contract::Feed {
            asset: asset.parse()?,
            decimals: decimals.parse()?,
        };
        decoders = decoders.with(feed.parse()?, contract);
    }
    if assets.is_empty() {
        return Err("set TOKENS (see the example's docs)".into());
    }
    Ok((assets, decoders))
}

/// The store: Postgres when built with `postgres` and `DATABASE_URL` is set, else memory.
async fn store(
    registry: &AssetRegistry,
) -> Result<(Arc<dyn BalanceStore>, Arc<dyn PriceFeed>), Error> {
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let pg = Arc::new(
            reorg_collateral::store::PostgresStore::connect_in_schema(
                &url,
                "reorg_collateral_watch",
            )
            .await?,
        );
        pg.register_assets(registry).await?;
        eprintln!("store: postgres (schema reorg_collateral_watch)");
        return Ok((pg.clone(), pg));
    }
    let _ = registry;
    let memory = Arc::new(reorg_collateral::store::MemoryStore::new());
    eprintln!("store: memory");
    Ok((memory.clone(), memory))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let url = std::env::var("RPC_URL").map_err(|_| "set RPC_URL, e.g. http://127.0.0.1:8545")?;
    let (assets, decoders) = parse_config()?;
    let registry = AssetRegistry::new(assets)?;
    let mut rpc = RpcConfig::new(decoders);
    rpc.finality = match env_or("FINALITY", "finalized").as_str() {
        "safe" => FinalityTag::Safe,
        "none" => FinalityTag::Depth,
        _ => FinalityTag::Finalized,
    };
    let source = Arc::new(RpcBlockSource::http(&url, rpc)?);
    let head = source.head().await?;

    let mut config = WatcherConfig::new(EngineConfig::new(
        registry.clone(),
        env_or("CONFIRMATIONS", "12").parse()?,
    ));
    let start = match std::env::var("START_BLOCK") {
        Ok(n) => n.parse()?,
        Err(_) => head.saturating_sub(100),
    };
    config.start_block = start;
    let (balances, prices) = store(&registry).await?;
    let mut watcher = Watcher::new(config, source, balances, prices).await?;
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let cache =
            reorg_collateral::cache::RedisCollateralCache::connect(&url, "rc_watch").await?;
        watcher = watcher.with_cache(Arc::new(cache));
        eprintln!("cache: redis (prefix rc_watch)");
    }
    let mut changes = watcher.subscribe();
    let poll = Duration::from_millis(env_or("POLL_MS", "1000").parse()?);
    eprintln!(
        "following {url} (head #{head}) from block {start} or the store's checkpoint; Ctrl-C to stop"
    );
    loop {
        match watcher.sync().await {
            Ok(step) if step.applied > 0 || step.reverted > 0 => eprintln!(
                "head #{}: +{} blocks, -{} reverted, {} events, finalized {:?}",
                watcher.window().head().map_or(0, |h| h.number),
                step.applied,
                step.reverted,
                step.events,
                step.finalized
            ),
            Ok(_) => {}
            // Transport errors were already retried by the source; try again next poll.
            Err(e) => eprintln!("sync failed: {e}"),
        }
        while let Ok(c) = changes.try_recv() {
            println!(
                "block #{} {}: confirmed {} pending {}",
                c.block.number,
                c.user,
                c.confirmed.round_dp(2),
                c.pending.round_dp(2)
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
