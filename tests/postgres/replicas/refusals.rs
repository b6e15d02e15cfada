//! What a replica reader refuses: writes (the session is read-only, on a standby and on a
//! primary alike), a schema behind this build's migrations (naming both versions), and
//! answers beyond the configured lag (in blocks against the primary, in time on the
//! replica alone).

use crate::support;

use std::time::{Duration, Instant};

use reorg_collateral::StoreError;
use reorg_collateral::model::Lag;
use reorg_collateral::prelude::*;
use reorg_collateral::store::{PostgresReplica, PostgresStore, ReplicaOptions};
use support::pg_replica::PrivatePostgresReplica;

use super::{EVENTS, primary};

fn in_schema(schema: &str) -> ReplicaOptions {
    ReplicaOptions {
        schema: Some(schema.to_owned()),
        ..Default::default()
    }
}

/// SQLSTATE of a write in a read-only transaction.
const READ_ONLY_SQL_TRANSACTION: &str = "25006";

async fn assert_write_refused(replica: &PostgresReplica) {
    for sql in [
        "INSERT INTO assets (asset, symbol, decimals, collateral_factor_bps) VALUES ('\\x01', 'X', 6, 1)",
        "DELETE FROM blocks",
        "CREATE TABLE replica_write_probe (x int)",
    ] {
        let e = sqlx::query(sql)
            .execute(replica.pool())
            .await
            .expect_err("a write through a replica reader");
        assert_eq!(
            e.as_database_error().and_then(|d| d.code()).as_deref(),
            Some(READ_ONLY_SQL_TRANSACTION),
            "{sql}: {e}"
        );
    }
}

/// Writes through a replica reader fail with `read_only_sql_transaction`, on the standby
/// and when the reader is pointed at the primary itself (the session is read-only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_a_replica_reader_are_refused() {
    let cluster = PrivatePostgresReplica::start();
    let (store, _script, _watcher, schema) = primary(&cluster.primary_url(), 3).await;
    cluster.wait_caught_up().await;
    for url in [cluster.replica_url(), cluster.primary_url()] {
        let replica = PostgresReplica::open(&url, &in_schema(&schema))
            .await
            .unwrap();
        assert_write_refused(&replica).await;
        assert!(replica.state().await.unwrap().head.is_some());
    }
    assert!(
        store.head().await.unwrap().is_some(),
        "the primary still has its blocks"
    );
}

/// A replica whose schema lacks this build's latest migration (the primary was not
/// migrated, simulated by forgetting the migration on the primary), or was never
/// migrated, is refused naming the replica's version and the build's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_on_migrations_is_refused_naming_both_versions() {
    let cluster = PrivatePostgresReplica::start();
    let schema = support::pg::unique_schema_name();
    let store = PostgresStore::connect_in_schema(&cluster.primary_url(), &schema)
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let (latest, previous) = (versions[versions.len() - 1], versions[versions.len() - 2]);
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(latest)
        .execute(store.pool())
        .await
        .unwrap();
    let empty = support::pg::unique_schema_name();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {empty}")))
        .execute(store.pool())
        .await
        .unwrap();
    cluster.wait_caught_up().await;

    match PostgresReplica::open(&cluster.replica_url(), &in_schema(&schema)).await {
        Err(StoreError::ReplicaSchemaBehind {
            schema: s,
            replica_version,
            build_version,
            missing,
            ..
        }) => {
            assert_eq!(s, schema);
            assert_eq!(replica_version, Some(previous));
            assert_eq!(build_version, latest);
            assert_eq!(missing, vec![latest]);
        }
        other => panic!("expected ReplicaSchemaBehind, got {other:?}"),
    }
    let e = PostgresReplica::open(&cluster.replica_url(), &in_schema(&empty))
        .await
        .expect_err("an unmigrated schema");
    assert!(
        matches!(&e, StoreError::ReplicaSchemaBehind { replica_version: None, build_version, .. } if *build_version == latest),
        "{e}"
    );
    let message = e.to_string();
    assert!(
        message.contains(&latest.to_string()) && message.contains("migrate the primary"),
        "{message}"
    );
    let e = PostgresReplica::open(&cluster.replica_url(), &in_schema("no_such_schema_here"))
        .await
        .expect_err("a missing schema");
    assert!(matches!(e, StoreError::Config { .. }), "{e}");
}

/// With replay paused, the primary moves on: an answer beyond the block bound (measured
/// against the primary's head) and beyond the time bound (on the replica alone) is a typed
/// refusal; once the replica has caught up, it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_beyond_the_lag_bound_are_refused() {
    let cluster = PrivatePostgresReplica::start();
    let (store, mut script, mut watcher, schema) = primary(&cluster.primary_url(), 9).await;
    cluster.wait_caught_up().await;
    let by_blocks = PostgresReplica::open(
        &cluster.replica_url(),
        &ReplicaOptions {
            primary_url: Some(cluster.primary_url()),
            max_lag_blocks: Some(2),
            ..in_schema(&schema)
        },
    )
    .await
    .unwrap();
    let by_time = PostgresReplica::open(
        &cluster.replica_url(),
        &ReplicaOptions {
            max_lag_time: Some(Duration::from_millis(100)),
            ..in_schema(&schema)
        },
    )
    .await
    .unwrap();
    let before = by_blocks.state().await.unwrap();
    assert_eq!(before.lag.blocks, Some(0));
    let replica_head = before.block().unwrap();

    cluster.pause_replay().await;
    while store.head().await.unwrap().unwrap().number <= replica_head + 2 {
        script.step(EVENTS);
        watcher.sync().await.unwrap();
    }
    let primary_head = store.head().await.unwrap().unwrap().number;
    match by_blocks.state().await {
        Err(StoreError::ReplicaLag {
            replica_head: r,
            primary_head: p,
            lag,
            max,
            ..
        }) => {
            assert_eq!((r, p), (Some(replica_head), Some(primary_head)));
            assert_eq!(lag, Lag::Blocks(primary_head - replica_head));
            assert_eq!(max, Lag::Blocks(2));
        }
        other => panic!("expected ReplicaLag in blocks, got {other:?}"),
    }
    let e = by_blocks
        .user_balances(reorg_collateral::source::ScriptedChain::demo_user(0))
        .await
        .expect_err("the reader traits refuse too");
    assert!(matches!(e, StoreError::ReplicaLag { .. }), "{e}");
    // The time lag grows while replay stays paused; it is refused once past the bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match by_time.state().await {
            Err(StoreError::ReplicaLag {
                lag: Lag::Time(t),
                max,
                ..
            }) => {
                assert_eq!(max, Lag::Time(Duration::from_millis(100)));
                assert!(t > Duration::from_millis(100));
                break;
            }
            Ok(read) => assert!(
                Instant::now() < deadline,
                "a paused replica never exceeded 100 ms of lag: {:?}",
                read.lag
            ),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.resume_replay().await;
    script.step(EVENTS);
    watcher.sync().await.unwrap();
    cluster.wait_caught_up().await;
    let after = by_blocks
        .state()
        .await
        .expect("caught up: within the bound");
    assert_eq!(after.lag.blocks, Some(0));
    assert_eq!(
        after.state,
        store.head_state().await.unwrap().map(|(_, s)| s)
    );
}
