//! A hung or busy dependency turns into a typed error instead of a stall: the writer lock
//! held by another session, a row lock, a runaway statement, a refused connection, a
//! frozen Redis (SIGSTOP). `tokio::time::timeout` only guards against a hang (a test that
//! would otherwise never end); no assertion is about how long anything took.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::error::StoreError;
use reorg_collateral::model::{AssetRegistry, CachedCollateral};
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::{PostgresConfig, PostgresStore, WRITER_LOCK_SQL};
use reorg_collateral::{CollateralCache, EngineConfig, Error, Watcher, WatcherConfig};
use rust_decimal::Decimal;
use sqlx::{Connection, Executor, PgConnection};

use crate::support;
use crate::support::pg::unique_schema_name;

/// Hang guard: far beyond any bound under test.
const GUARD: Duration = Duration::from_secs(60);
/// The lock and statement timeouts under test: a wait on a held lock always reaches them,
/// and an unblocked statement on a busy machine stays well under them.
const LIMIT_MS: u64 = 2_000;

fn config(lock: Option<u64>, statement: Option<u64>) -> PostgresConfig {
    PostgresConfig {
        lock_timeout: lock.map(Duration::from_millis),
        statement_timeout: statement.map(Duration::from_millis),
        ..PostgresConfig::default()
    }
}

/// A second session in `schema`, and its server process id.
async fn other_session(schema: &str) -> (PgConnection, i32) {
    let mut conn = PgConnection::connect(&support::pg::database_url())
        .await
        .expect("connect");
    conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
        .await
        .expect("search_path");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("pid");
    (conn, pid)
}

#[tokio::test]
async fn a_held_writer_lock_is_a_typed_timeout_naming_the_holder() {
    let schema = unique_schema_name();
    let url = support::pg::database_url();
    let store = Arc::new(
        PostgresStore::connect_with(&url, Some(&schema), &config(Some(LIMIT_MS), None))
            .await
            .expect("store"),
    );
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("registry");
    store.register_assets(&registry).await.expect("assets");
    let users = (0..4).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(7, 1, users, assets);
    let mut wc = WatcherConfig::new(EngineConfig::new(registry, 3));
    wc.start_block = 1;
    let mut watcher = Watcher::new(wc, script.chain.clone(), store.clone())
        .await
        .expect("watcher");
    script.step(4);
    watcher.sync().await.expect("first block applies");
    let window_before = format!(
        "{:?}",
        reorg_collateral::traits::StoreWriter::window(&*store).await
    );

    // Another session takes the writer lock of this schema and keeps it.
    let (mut holder, holder_pid) = other_session(&schema).await;
    holder.execute("BEGIN").await.expect("begin");
    holder.execute(WRITER_LOCK_SQL).await.expect("lock");
    script.step(4);
    let err = tokio::time::timeout(GUARD, watcher.sync())
        .await
        .expect("the writer gives up instead of waiting forever")
        .expect_err("the lock is held");
    match &err {
        Error::Store(StoreError::LockTimeout { lock, holder, .. }) => {
            assert!(
                lock.contains("writer lock") && lock.contains(&schema),
                "{err}"
            );
            assert_eq!(*holder, Some(holder_pid), "{err}");
        }
        other => panic!("expected a writer-lock timeout, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&holder_pid.to_string()), "{text}");
    assert!(text.contains("nothing was committed"), "{text}");
    // Nothing of the refused block was written.
    assert_eq!(
        format!(
            "{:?}",
            reorg_collateral::traits::StoreWriter::window(&*store).await
        ),
        window_before
    );
    holder.execute("ROLLBACK").await.expect("release");
    // Once released, the same block applies.
    watcher
        .sync()
        .await
        .expect("applies after the lock is released");
}

#[tokio::test]
async fn a_row_lock_hits_lock_timeout_and_a_runaway_statement_hits_statement_timeout() {
    let schema = unique_schema_name();
    let url = support::pg::database_url();
    let store = PostgresStore::connect_with(&url, Some(&schema), &config(Some(LIMIT_MS), None))
        .await
        .expect("store");
    let registry = AssetRegistry::new(ScriptedChain::demo_assets()).expect("registry");
    store.register_assets(&registry).await.expect("assets");
    let (mut other, _) = other_session(&schema).await;
    other.execute("BEGIN").await.expect("begin");
    other
        .execute("SELECT * FROM assets FOR UPDATE")
        .await
        .expect("row locks");
    let err = tokio::time::timeout(GUARD, store.register_assets(&registry))
        .await
        .expect("no hang")
        .expect_err("the rows are locked");
    assert!(
        matches!(&err, StoreError::LockTimeout { operation, .. } if operation.contains("register asset")),
        "{err:?}"
    );

    // Without a lock timeout, the statement timeout bounds the same wait.
    let store = PostgresStore::connect_with(&url, Some(&schema), &config(None, Some(LIMIT_MS)))
        .await
        .expect("store");
    let err = tokio::time::timeout(GUARD, store.register_assets(&registry))
        .await
        .expect("no hang")
        .expect_err("the rows are still locked");
    assert!(
        matches!(&err, StoreError::StatementTimeout { .. }),
        "{err:?}"
    );
    other.execute("ROLLBACK").await.expect("release");
    store.register_assets(&registry).await.expect("free again");
}

#[tokio::test]
async fn connection_failures_name_their_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let err = tokio::time::timeout(GUARD, PostgresStore::connect(&url))
        .await
        .expect("no hang")
        .expect_err("refused");
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(!text.contains("pool timed out"), "{text}");

    // A database that does not exist: the server's own words.
    let url = format!(
        "{}_no_such_db",
        support::pg::database_url().trim_end_matches('/')
    );
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("no such database");
    assert!(err.to_string().contains("does not exist"), "{err}");

    // A missing schema with creation off: a configuration error naming it.
    let cfg = PostgresConfig {
        create_schema: false,
        ..PostgresConfig::default()
    };
    let missing = unique_schema_name();
    let err = PostgresStore::connect_with(&support::pg::database_url(), Some(&missing), &cfg)
        .await
        .expect_err("missing schema");
    assert!(
        matches!(&err, StoreError::Config { value, reason, .. } if *value == missing && reason.contains("no such schema")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_operation_deadline_not_above_the_statement_timeout_is_refused() {
    let cfg = PostgresConfig {
        statement_timeout: Some(Duration::from_secs(5)),
        operation_deadline: Some(Duration::from_secs(5)),
        ..PostgresConfig::default()
    };
    let err = PostgresStore::connect_with(
        &support::pg::database_url(),
        Some(&unique_schema_name()),
        &cfg,
    )
    .await
    .expect_err("a deadline that would pre-empt the server's own timeout");
    assert!(
        matches!(&err, StoreError::Config { what, reason, .. } if *what == "operation deadline" && reason.contains("statement timeout")),
        "{err:?}"
    );
    assert!(
        PostgresConfig::default().operation_deadline > PostgresConfig::default().statement_timeout
    );
}

fn entries(n: usize, block: u64) -> Vec<CachedCollateral> {
    (0..n)
        .map(|i| CachedCollateral {
            user: Address::left_padding_from(&(i as u64).to_be_bytes()),
            block,
            hash: alloy_primitives::B256::ZERO,
            finalized: None,
            confirmed: Decimal::from(i),
            pending: Decimal::from(i),
            assets: std::collections::BTreeMap::new(),
            complete: true,
        })
        .collect()
}

#[tokio::test]
async fn a_frozen_redis_turns_puts_into_errors() {
    let mut server = support::redis::PrivateRedis::start();
    let cfg = RedisCacheConfig {
        // Long enough for a live server on a busy machine; a frozen one never answers.
        response_timeout: Duration::from_secs(2),
        connection_timeout: Duration::from_secs(2),
        ..RedisCacheConfig::default()
    };
    let cache = RedisCollateralCache::connect_with(&server.url(), "frozen", cfg)
        .await
        .expect("connect");
    cache.put(&entries(10, 1)).await.expect("a live server");
    server.freeze();
    let result = tokio::time::timeout(GUARD, cache.put(&entries(10, 2)))
        .await
        .expect("the put returns instead of hanging");
    let err = result.expect_err("a frozen server cannot answer");
    assert!(err.to_string().contains("put 10 entries"), "{err}");
    let read = tokio::time::timeout(GUARD, cache.get(entries(1, 0)[0].user))
        .await
        .expect("the get returns instead of hanging");
    assert!(read.is_err(), "{read:?}");
    server.thaw();
    // The connection manager reconnects once the server answers again (on its own
    // schedule: retried until it has, within the hang guard).
    tokio::time::timeout(GUARD, async {
        while cache.put(&entries(10, 3)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("puts succeed again after the server thaws");
}

#[tokio::test]
async fn an_out_of_memory_redis_error_is_truncated() {
    let server = support::redis::PrivateRedis::start();
    let cache = RedisCollateralCache::connect(&server.url(), "oom")
        .await
        .expect("connect");
    // Fill the server past a limit set afterwards: every command of the next transaction
    // is refused with OOM when queued, and the server's reply lists each of them.
    let mut conn = cache.connection();
    let _: () = redis::cmd("SET")
        .arg("ballast")
        .arg("x".repeat(8 << 20))
        .query_async(&mut conn)
        .await
        .expect("ballast");
    server.config_set("maxmemory", "2mb").await;
    let err = cache
        .put(&entries(20_000, 1))
        .await
        .expect_err("over maxmemory");
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert!(text.contains("OOM"), "{text}");
    assert!(text.contains("put 20000 entries"), "{text}");
    assert!(
        text.len() < 2_000,
        "{} bytes: {}…",
        text.len(),
        &text[..2_000.min(text.len())]
    );
}
