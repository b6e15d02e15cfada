//! A dependency frozen with SIGSTOP under a running watcher: it neither answers nor closes
//! its connections. A frozen Postgres turns each step into a typed deadline error (saying
//! whether a commit was in flight) and the watcher recovers on its own once it thaws; a
//! frozen Redis holds back nothing of ingestion, and the cache converges once it thaws.
//! `tokio::time::timeout` only guards against a hang; no assertion is about how long
//! anything took.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy_primitives::U256;
use async_trait::async_trait;
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::error::Committed;
use reorg_collateral::model::Changeset;
use reorg_collateral::store::{ChangesetHook, MemoryStore, PostgresConfig, PostgresStore};
use reorg_collateral::testing::{Backends, Harness};
use reorg_collateral::{CollateralCache, Error, StoreError, StoreWriter};
use sqlx::PgConnection;
use support::cluster::{Freezer, PrivatePostgres};
use support::redis::PrivateRedis;

/// Hang guard: far beyond any timeout under test.
const GUARD: Duration = Duration::from_secs(120);

/// Freezes the cluster (postmaster and backends) from inside the changeset's transaction,
/// once armed: the store's writes are sent and answered, and the commit then goes to a
/// server that never answers it.
#[derive(Debug)]
struct FreezeBeforeCommit {
    freezer: Freezer,
    armed: AtomicBool,
}

#[async_trait]
impl ChangesetHook for FreezeBeforeCommit {
    async fn write(&self, _: &mut PgConnection, _: &Changeset) -> Result<(), StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.freezer.freeze();
        }
        Ok(())
    }
}

fn deposit_block(h: &Harness, i: u64) {
    h.chain.mine(|b| {
        for u in 0..3usize {
            b.deposit(
                h.assets[u].id,
                h.users[u],
                U256::from(1_000 * i + u as u64 + 1),
            );
        }
    });
}

/// Syncs until a step succeeds (the first may still meet the aftermath of the freeze: a
/// store ahead of the watcher's window after a commit of unknown outcome landed).
async fn sync_until_ok(h: &mut Harness) {
    let mut failures = Vec::new();
    for _ in 0..20 {
        match tokio::time::timeout(GUARD, h.watcher.sync())
            .await
            .expect("sync returns after the thaw")
        {
            Ok(_) => {
                // A no-op step through the harness, which records the head it reached
                // (the finality its checks expect).
                h.sync().await;
                return;
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    panic!("the watcher did not recover after the thaw: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_postgres_is_a_typed_deadline_and_the_watcher_recovers() {
    let cluster = PrivatePostgres::start();
    // Long enough for a live cluster on a busy machine (a step before the freeze must not
    // time out); a frozen one never answers.
    let config = PostgresConfig {
        statement_timeout: Some(Duration::from_secs(2)),
        lock_timeout: Some(Duration::from_millis(1_500)),
        operation_deadline: Some(Duration::from_secs(4)),
        acquire_timeout: Duration::from_secs(3),
        ..PostgresConfig::default()
    };
    let hook = Arc::new(FreezeBeforeCommit {
        freezer: cluster.freezer(),
        armed: AtomicBool::new(false),
    });
    let store = PostgresStore::connect_with(&cluster.url(), Some("frozen"), &config)
        .await
        .expect("connect to the private cluster")
        .with_changeset_hook(hook.clone());
    let store = Arc::new(store);
    let mut h = Harness::new(Backends::new(store.clone()), 3).await;
    for i in 0..4 {
        deposit_block(&h, i);
        h.sync().await;
    }
    let before = store.window().await.expect("window");

    // Frozen between steps: nothing was sent, nothing is committed.
    cluster.freeze();
    deposit_block(&h, 4);
    for _ in 0..2 {
        let err = tokio::time::timeout(GUARD, h.watcher.sync())
            .await
            .expect("sync returns while Postgres is frozen")
            .expect_err("a frozen server cannot answer");
        match &err {
            Error::Store(StoreError::Deadline { committed, .. }) => {
                assert_eq!(*committed, Committed::Nothing, "{err}");
            }
            other => panic!("expected a typed deadline, got {other:?}"),
        }
        assert!(err.to_string().contains("nothing was committed"), "{err}");
    }
    cluster.thaw();
    sync_until_ok(&mut h).await;
    assert_ne!(store.window().await.expect("window"), before);
    h.check().await;

    // Frozen with the commit in flight: the outcome is unknown, and the watcher re-reads
    // the store instead of assuming either.
    hook.armed.store(true, Ordering::SeqCst);
    deposit_block(&h, 5);
    let err = tokio::time::timeout(GUARD, h.watcher.sync())
        .await
        .expect("sync returns while Postgres is frozen")
        .expect_err("the commit cannot be answered");
    match &err {
        Error::Store(StoreError::Deadline {
            operation,
            committed,
            ..
        }) => {
            assert_eq!(*committed, Committed::Unknown, "{err}");
            assert!(operation.starts_with("apply blocks"), "{err}");
        }
        other => panic!("expected a typed deadline of the commit, got {other:?}"),
    }
    assert!(err.to_string().contains("committed: unknown"), "{err}");
    cluster.thaw();
    sync_until_ok(&mut h).await;
    for i in 6..9 {
        deposit_block(&h, i);
        sync_until_ok(&mut h).await;
    }
    h.check().await;
    // A restarted watcher resumes from what the store holds.
    h.restart().await;
    h.sync().await;
    h.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_holds_back_no_block_and_the_cache_converges() {
    let mut server = PrivateRedis::start();
    let config = RedisCacheConfig {
        // Long enough for a live server on a busy machine; a frozen one never answers.
        response_timeout: Duration::from_secs(2),
        connection_timeout: Duration::from_secs(2),
        ..RedisCacheConfig::default()
    };
    let cache = Arc::new(
        RedisCollateralCache::connect_with(&server.url(), "frozen_watcher", config)
            .await
            .expect("connect to the private redis-server"),
    );
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(Backends::new(store.clone()).with_cache(cache.clone()), 3).await;
    deposit_block(&h, 0);
    h.sync().await;

    server.freeze();
    // One step, then wait (liveness-guarded) until the refresher's write to the frozen
    // server has failed: from here on the cache is known to be stuck.
    deposit_block(&h, 1);
    h.watcher.sync().await.expect("ingestion goes on");
    tokio::time::timeout(GUARD, async {
        while h.watcher.refresh_status().cache_errors == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the cache write to the frozen server fails instead of hanging");
    for i in 2..40 {
        deposit_block(&h, i);
        tokio::time::timeout(GUARD, h.watcher.sync())
            .await
            .expect("sync returns while Redis is frozen")
            .expect("ingestion does not wait on the cache");
        let head = store
            .window()
            .await
            .expect("window")
            .head()
            .map(|b| b.number);
        assert_eq!(head, Some(h.chain.head_number()), "block {i} applied");
    }
    assert!(h.watcher.refresh_status().failing.is_some());

    server.thaw();
    let head = store.window().await.expect("window").head().map(|b| b.id());
    tokio::time::timeout(GUARD, async {
        loop {
            let mark = cache.watermark().await.ok().flatten().map(|m| m.head);
            let healed = h.watcher.refresh_status().failing.is_none();
            if healed && mark == head && h.watcher.verify_cache().await.is_ok_and(|m| m.is_empty())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the cache converges after the thaw (the circuit breaker retries)");
    h.sync().await;
    h.check().await;
}

/// Whether process `pid` has a TCP connection to loopback port `port` (from `/proc`).
fn connected_to(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.ok()?.path()).ok()?;
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    tcp.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() > 9 && cols[2] == remote && inodes.iter().any(|i| i == cols[9])
    })
}

/// The CLI on a frozen Postgres: `verify`, `backfill` and `cutover` end with an error naming
/// the unresponsive server (the liveness probe), a raised `--statement-timeout` is
/// accepted, and SIGTERM ends the command although the server cannot take the cancel
/// requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_on_a_frozen_postgres_gives_up_and_obeys_sigterm() {
    use std::process::{Command, Stdio};

    let cluster = PrivatePostgres::start();
    let cli = |args: &[&str]| {
        let mut c = Command::new(support::cli::BIN);
        c.env("DATABASE_URL", cluster.url())
            .args(["--schema", "fz"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let out = cli(&["simulate", "--steps", "12", "--users", "4"])
        .output()
        .expect("simulate");
    assert!(out.status.success(), "{}", support::cli::stderr(&out));
    let out = cli(&["--statement-timeout", "600", "verify"])
        .output()
        .expect("verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a raised statement timeout is accepted: {}",
        support::cli::stderr(&out)
    );

    cluster.freeze();
    for command in [&["verify"][..], &["backfill"], &["cutover"]] {
        let child = cli(&[&["--unresponsive-timeout", "2"][..], command].concat())
            .spawn()
            .expect("spawn");
        let out = tokio::time::timeout(
            GUARD,
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await
        .unwrap_or_else(|_| panic!("{command:?} ends while the server is frozen"))
        .expect("join")
        .expect("wait");
        let err = support::cli::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {err}");
        assert!(
            err.contains("did not answer a liveness probe"),
            "{command:?}: {err}"
        );
    }

    // SIGTERM while the command waits on the frozen server (no probe: it would wait for
    // the server's deadline), once it has connected, so its handler runs.
    let mut child = cli(&["--unresponsive-timeout", "0", "verify"])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let port = cluster.port;
    tokio::time::timeout(GUARD, async {
        while !connected_to(pid, port) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the CLI connects to the frozen server");
    assert!(support::process::signal_child(&child, "-TERM"), "SIGTERM");
    let waited = tokio::time::timeout(
        GUARD,
        tokio::task::spawn_blocking(move || {
            let status = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            (status, err)
        }),
    )
    .await
    .expect("SIGTERM ends the command while the server is frozen");
    let (status, err) = waited.expect("join");
    assert_eq!(status.expect("wait").code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    cluster.thaw();
}
