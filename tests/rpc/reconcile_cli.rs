//! `reorg-collateral reconcile` on a Postgres store filled by a watcher that missed two
//! events (WETH9's `Withdrawal`, see `reconcile::missed_withdrawals`): exit code 1 and one
//! line per drift; after the store is corrected (the chain as the truth), exit code 0.

use std::collections::BTreeSet;
use std::sync::Arc;

use reorg_collateral::Watcher;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::watcher::{Openings, Reconciler, ReconcilerConfig};

use crate::dev_node::DevNode;
use crate::reconcile::{CONFIRMATIONS, missed_withdrawals, watcher_config};
use crate::support::cli;
use crate::support::pg::{database_url, unique_schema_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_command_exits_1_on_drift_and_0_once_corrected() {
    let node = DevNode::start().await;
    let (weth, _users, source) = missed_withdrawals(&node).await;
    let schema = unique_schema_name();
    let store = Arc::new(
        PostgresStore::connect_in_schema(&database_url(), &schema)
            .await
            .expect("Postgres reachable"),
    );
    let mut config = watcher_config(weth, "WETH");
    config.openings = Openings::Off;
    let mut watcher = Watcher::new(config, source.clone(), store.clone())
        .await
        .expect("watcher");
    watcher.sync().await.expect("sync");

    let url = node.url.clone();
    let token = weth.to_string();
    let args = [
        "reconcile",
        "--rpc-url",
        url.as_str(),
        "--token",
        token.as_str(),
    ];
    let out = cli::run(&schema, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", cli::stderr(&out));
    assert_eq!(stdout.matches("drift user").count(), 2, "{stdout}");
    assert!(
        stdout.contains("compared 4 balances of 1 tokens"),
        "{stdout}"
    );
    assert!(!stdout.contains(&url), "the RPC URL is never printed");

    let mut config = ReconcilerConfig::new([weth]);
    config.chain_is_truth = BTreeSet::from([weth]);
    let mut truth = Reconciler::new(source.clone(), config);
    watcher.reconcile_with(&mut truth).await.expect("reconcile");
    node.mine(CONFIRMATIONS + 1).await;
    watcher.sync().await.expect("sync");
    // Every asset of the store when no --token is given.
    let out = cli::run(&schema, &["reconcile", "--rpc-url", url.as_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", cli::stderr(&out));
    assert!(stdout.contains(": 0 drifts"), "{stdout}");

    drop(watcher);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .expect("drop the test's schema");
}
