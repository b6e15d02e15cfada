//! `reorg-collateral quarantine list` names the asset quarantined in a Postgres store, the
//! side, the block of the fault and why; with none, it prints nothing and exits 0.

use alloy_primitives::U256;

use crate::quarantine_setup::{A, B, Running, USER, running_watcher};
use crate::support::cli;

#[tokio::test]
async fn quarantine_list_names_the_asset_and_the_block() {
    let Running {
        schema,
        chain,
        mut watcher,
        ..
    } = running_watcher().await;
    chain.mine(|blk| {
        blk.deposit(B, USER, U256::from(5));
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
            blk.withdraw(A, USER, U256::from(1));
            blk.deposit(B, USER, U256::from(1));
        })
        .header
        .number;
    watcher.sync().await.expect("a quarantine is not a stall");
    let out = cli::run(&schema, &["quarantine", "list"]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{A} pending quarantined at #{faulting}")),
        "{text}"
    );
    assert!(text.contains("exceeds its balance 0"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}
