//! A private Postgres primary and a streaming read replica of it (`pg_basebackup -R`), each
//! a [`PrivatePostgres`] on a free loopback port in a temporary directory of its own: for
//! tests of `PostgresReplica`, which pause the replica's replay (the shared server is never
//! touched). Both are shut down and removed on drop, the replica first.
// Shared by every test binary; only some use it.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use super::cluster::{
    PrivatePostgres, as_server_user, give_to_server_user, postgres_bin, server_user,
};
use super::process::{START_TIMEOUT, run};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A primary and its hot-standby replica; see the module docs.
pub struct PrivatePostgresReplica {
    // Declared first: dropped (stopped) before its primary.
    replica: PrivatePostgres,
    primary: PrivatePostgres,
}

impl PrivatePostgresReplica {
    /// Starts a primary (initdb's defaults allow replication from loopback with `trust`,
    /// `wal_level = replica`), takes a base backup of it with `-R` (standby mode and
    /// `primary_conninfo`) and starts the replica on it, streaming; returns once the
    /// replica accepts read-only connections.
    pub fn start() -> Self {
        let primary = PrivatePostgres::start();
        let base = std::env::temp_dir().join(format!(
            "rc_pg_replica_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&base).expect("create the replica's directory");
        give_to_server_user(&[&base]);
        let dir = base.join("pgdata");
        run(
            as_server_user(
                Command::new(postgres_bin().join("pg_basebackup"))
                    .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
                    .args(["-U", "postgres", "-D", &dir.to_string_lossy()])
                    .args(["-R", "-X", "stream", "--no-sync"]),
                server_user(),
            ),
            "pg_basebackup",
        );
        let replica = PrivatePostgres::run_on(dir, &["hot_standby=on".to_owned()]).removing(base);
        Self { replica, primary }
    }

    /// A URL to the primary's `postgres` database.
    pub fn primary_url(&self) -> String {
        self.primary.url()
    }

    /// A URL to the replica's `postgres` database.
    pub fn replica_url(&self) -> String {
        self.replica.url()
    }

    async fn connect(url: &str) -> PgConnection {
        PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    /// Waits until the replica has replayed everything the primary had written when this
    /// was called (its current WAL position); panics after [`START_TIMEOUT`].
    pub async fn wait_caught_up(&self) {
        let mut primary = Self::connect(&self.primary_url()).await;
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .expect("read the primary's WAL position");
        let _ = primary.close().await;
        let mut replica = Self::connect(&self.replica_url()).await;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let done: Option<bool> =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&lsn)
                    .fetch_one(&mut replica)
                    .await
                    .expect("read the replica's replay position");
            if done == Some(true) {
                let _ = replica.close().await;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not replay up to {lsn} within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Pauses the replica's WAL replay (`pg_wal_replay_pause`): it keeps receiving and
    /// answering, at the state it had.
    pub async fn pause_replay(&self) {
        let mut replica = Self::connect(&self.replica_url()).await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut replica)
            .await
            .expect("pause the replica's replay");
        let _ = replica.close().await;
    }

    /// Resumes the replica's WAL replay.
    pub async fn resume_replay(&self) {
        let mut replica = Self::connect(&self.replica_url()).await;
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut replica)
            .await
            .expect("resume the replica's replay");
        let _ = replica.close().await;
    }
}
