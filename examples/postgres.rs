//! The watcher over a simulated chain (with reorgs) into Postgres; prints collateral.
//!
//! ```sh
//! cargo run --example postgres --features postgres
//! DATABASE_URL=postgres://user@host/db cargo run --example postgres --features postgres
//! ```
//! Writes into the schema `reorg_collateral_example` (created if missing).

use std::sync::Arc;

use alloy_primitives::Address;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = Arc::new(PostgresStore::connect_in_schema(&url, "reorg_collateral_example").await?);

    let assets = vec![
        Asset::new(Address::repeat_byte(0xA1), "USDC", 6, 9_000),
        Asset::new(Address::repeat_byte(0xA2), "WETH", 18, 8_000),
    ];
    let registry = AssetRegistry::new(assets.clone())?;
    store.register_assets(&registry).await?;
    let users: Vec<Address> = (1..=5u8).map(Address::repeat_byte).collect();

    let mut script = ScriptedChain::new(42, 1, users.clone(), assets);
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 6));
    config.start_block = 1;
    config.max_price_age = u64::MAX; // the script prices assets only now and then
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone()).await?;
    if let Some(head) = watcher.window().head() {
        println!("resuming from the checkpoint at #{}", head.number);
        while script.chain.head_number() < head.number {
            script.step(10);
        }
    }
    for _ in 0..40 {
        script.step(10);
        let report = watcher.sync().await?;
        if report.reverted > 0 {
            println!("reorg: rolled back {} block(s)", report.reverted);
        }
    }
    let w = watcher.window();
    println!(
        "head #{}, finalized #{:?}",
        w.head().map_or(0, |h| h.number),
        w.finalized_number()
    );
    for user in users {
        let c = watcher.collateral(user).await?;
        println!(
            "{user}: confirmed {:>14}  pending {:>14}",
            c.confirmed.total.round_dp(2),
            c.pending.total.round_dp(2)
        );
    }
    Ok(())
}
