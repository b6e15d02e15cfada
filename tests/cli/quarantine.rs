//! `reorg-collateral quarantine list` names the asset quarantined in a Postgres store, the
//! side, the block of the fault and why; with none, it prints nothing and exits 0.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::cli;
use support::pg::{database_url, unique_schema_name};

#[tokio::test]
async fn quarantine_list_names_the_asset_and_the_block() {
    let schema = unique_schema_name();
    let store = Arc::new(
        PostgresStore::connect_in_schema(&database_url(), &schema)
            .await
            .expect("store"),
    );
    let (a, b) = (Address::repeat_byte(0xA1), Address::repeat_byte(0xB2));
    let user = Address::repeat_byte(0x01);
    let assets =
        AssetRegistry::new([Asset::new(a, "A", 6, 9_000), Asset::new(b, "B", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await
        .expect("watcher");
    chain.mine(|blk| {
        blk.deposit(b, user, U256::from(5));
    });
    watcher.sync().await.expect("sync");
    let none = cli::run(&schema, &["quarantine", "list"]);
    assert!(none.status.success(), "{}", cli::stderr(&none));
    assert!(
        none.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&none.stdout)
    );

    let faulting = chain
        .mine(|blk| {
            blk.withdraw(a, user, U256::from(1));
            blk.deposit(b, user, U256::from(1));
        })
        .header
        .number;
    watcher.sync().await.expect("a quarantine is not a stall");
    let out = cli::run(&schema, &["quarantine", "list"]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{a} pending quarantined at #{faulting}")),
        "{text}"
    );
    assert!(text.contains("exceeds its balance 0"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}
