//! `reorg-collateral quarantine resume <asset> [--at-block N]`: the CLI process does not
//! write the resume (the running watcher is the store's single writer); it stores a
//! request the watcher takes at its next sync and writes in the first block at or above
//! `N` it applies. An asset that is not quarantined is refused (exit 1, nothing stored).

use crate::support;

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::AssetStateReader;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::cli;
use support::pg::{database_url, unique_schema_name};

const A: Address = Address::repeat_byte(0xA1);
const B: Address = Address::repeat_byte(0xB2);
const USER: Address = Address::repeat_byte(0x01);

async fn quarantined_at_head(store: &PostgresStore) -> Vec<Address> {
    let states = store.asset_states().await.expect("asset states");
    states
        .iter()
        .filter(|v| v.pending.is_quarantined())
        .map(|v| v.asset)
        .collect()
}

#[tokio::test]
async fn quarantine_resume_is_a_request_the_running_watcher_writes() {
    let schema = unique_schema_name();
    let store = Arc::new(
        PostgresStore::connect_in_schema(&database_url(), &schema)
            .await
            .expect("store"),
    );
    let assets =
        AssetRegistry::new([Asset::new(A, "A", 6, 9_000), Asset::new(B, "B", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await
        .expect("watcher");
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
    });
    watcher.sync().await.expect("sync");
    // Not quarantined: refused, nothing stored.
    let refused = cli::run(&schema, &["quarantine", "resume", &A.to_string()]);
    assert_eq!(refused.status.code(), Some(1), "{}", cli::stderr(&refused));
    assert!(cli::stderr(&refused).contains("not quarantined"));

    chain.mine(|blk| {
        blk.withdraw(A, USER, U256::from(6));
    });
    watcher.sync().await.expect("a quarantine is not a stall");
    assert_eq!(quarantined_at_head(&store).await, vec![A]);

    // Resume from block head + 3: the next two blocks do not carry it.
    let at = chain.head_number() + 3;
    let out = cli::run(
        &schema,
        &[
            "quarantine",
            "resume",
            &A.to_string(),
            "--at-block",
            &at.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", cli::stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("at or above #{at}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(quarantined_at_head(&store).await, vec![A], "only a request");
    for _ in 0..2 {
        chain.mine(|blk| {
            blk.deposit(A, USER, U256::from(1));
        });
        watcher.sync().await.expect("sync");
        assert_eq!(quarantined_at_head(&store).await, vec![A], "below #{at}");
    }
    chain.mine(|_| {});
    let report = watcher.sync().await.expect("sync");
    assert_eq!(
        report
            .resumed
            .iter()
            .map(|(a, b)| (*a, b.number))
            .collect::<Vec<_>>(),
        vec![(A, at)]
    );
    assert!(
        quarantined_at_head(&store).await.is_empty(),
        "resumed at #{at}"
    );
    // Folds again from the block after it; the request was taken once.
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(2));
    });
    let report = watcher.sync().await.expect("sync");
    assert!(report.resumed.is_empty());
    // The resume is pending: the confirmed side stays quarantined until it finalizes.
    let list = cli::run(&schema, &["quarantine", "list"]);
    assert!(list.status.success(), "{}", cli::stderr(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("{A} confirmed quarantined")),
        "{text}"
    );
}
