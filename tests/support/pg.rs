//! A fresh Postgres schema per test (and per conformance scenario), so tests run in
//! parallel against one database. Under `CI=true` (and always, in fact) an unreachable
//! server fails the test, naming what to start: nothing here skips. Sessions of the shared
//! server are terminated only through [`OwnSessions`] (`tests/shared_servers.rs` checks it).
//!
//! Why not `#[sqlx::test]` (a database per test, created and dropped by sqlx)? Its database
//! name is a hash of the test's path, the same in every process: two runs of the suite
//! against one server (two checkouts, two CI jobs) create and drop each other's databases,
//! and the later setups fail (`duplicate key ... _sqlx_test.databases` / `pg_database`;
//! three of four concurrent runs of one test failed so). A schema here is named by
//! creation time, process and counter. Besides, its runtime is current-thread while the
//! fault and real-time tests need a multi-thread one, it gives one database per test
//! function while the conformance suite needs a store per scenario, and the CLI, tenant
//! and writer-lock tests need a schema name anyway.

use std::sync::atomic::{AtomicUsize, Ordering};

use reorg_collateral::store::{PostgresStore, migrate};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use tokio::sync::OnceCell;

static NEXT: AtomicUsize = AtomicUsize::new(0);
static CLEANED: OnceCell<()> = OnceCell::const_new();

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// What a test that cannot reach the shared Postgres says: what is missing and how to
/// start it.
pub fn missing_postgres(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "Postgres must be reachable at DATABASE_URL={url} ({error}): start the installed \
         cluster with `pg_ctlcluster <version> main start` (`bash .ci/run` does) and create \
         the URL's database (`createdb -U postgres test`, trust auth on 127.0.0.1), or point \
         DATABASE_URL at one"
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Drops test schemas (`t<created unix secs>_<pid>_<n>`, and the per-chain schemas
/// `<schema>_c<chain id>` that `PostgresStore::chain` creates beside one) created more than
/// an hour ago, so concurrent test processes never drop each other's live schemas.
async fn clean_old_schemas(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ '^t[0-9]+_[0-9]+_[0-9]+(_c[0-9]+)?$'",
    )
    .fetch_all(&mut *admin)
    .await
    .expect("list old test schemas");
    let cutoff = now_secs().saturating_sub(3_600);
    for schema in names {
        let created: u64 = schema[1..]
            .split('_')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        if created < cutoff {
            let _ = (&mut *admin)
                .execute(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .await;
        }
    }
}

/// The options of `url`, without TLS unless the URL asks for it (`sslmode=`). The shared
/// server is on loopback and has `ssl = on`, so sqlx's default (`prefer`) would negotiate
/// TLS on every connection; in a debug build that handshake dominates a test that makes
/// connections by the thousand (the connection-killing fault test). TLS itself is tested
/// against a server of its own in `tests/connections/tls.rs`.
pub fn plain(url: &str) -> PgConnectOptions {
    let options: PgConnectOptions = url.parse().expect("valid DATABASE_URL");
    if url.contains("sslmode=") {
        options
    } else {
        options.ssl_mode(PgSslMode::Disable)
    }
}

/// A pool whose connections use a brand-new schema with the migrations applied.
pub async fn fresh_pool() -> PgPool {
    fresh_pool_named("reorg_collateral_test").await
}

/// Like [`fresh_pool`], with every connection reporting `application_name` (so a test can
/// find and terminate exactly its own connections).
pub async fn fresh_pool_named(application_name: &str) -> PgPool {
    let pool = empty_schema_pool(application_name).await;
    migrate(&pool).await.expect("migrations apply");
    pool
}

/// A pool whose connections use a brand-new, empty schema (no migration applied).
pub async fn empty_schema_pool(application_name: &str) -> PgPool {
    let schema = fresh_schema().await;
    connect(schema_options(&schema).application_name(application_name)).await
}

/// Creates a brand-new, empty schema and returns its name ([`unique_schema_name`]).
pub async fn fresh_schema() -> String {
    let url = database_url();
    // One connection, not a pool: a pool would retry until its acquire timeout and report
    // that instead of the cause (connection refused, no such database, …).
    let mut admin = PgConnection::connect_with(&plain(&url))
        .await
        .unwrap_or_else(|e| panic!("{}", missing_postgres(&url, &e)));
    CLEANED.get_or_init(|| clean_old_schemas(&mut admin)).await;
    let schema = unique_schema_name();
    admin
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create test schema");
    let _ = admin.close().await;
    schema
}

/// A schema name no other test (in this process or another) uses, that a later run's
/// cleanup recognises: `t<unix secs>_<pid>_<n>`. Nothing is created: for a test that lets
/// the store create its schema (`PostgresStore::connect_in_schema`).
pub fn unique_schema_name() -> String {
    format!(
        "t{}_{}_{}",
        now_secs(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connect options for the test database (see [`plain`]) whose sessions use `schema`
/// (`search_path` is a start-up parameter of each connection); a test adds its own
/// settings on top.
pub fn schema_options(schema: &str) -> PgConnectOptions {
    plain(&database_url()).options([("search_path", schema)])
}

/// A pool of up to 4 connections with `options`.
pub async fn connect(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("{}", missing_postgres(&database_url(), &e)))
}

/// The sessions one test opens on the shared Postgres, told apart by an `application_name`
/// no other test or process uses (`rc_test_<tag>_<pid>_<n>`): the only way a test
/// terminates sessions there, so it can never end another's.
#[derive(Clone, Debug)]
pub struct OwnSessions {
    application_name: String,
}

#[allow(dead_code)]
impl OwnSessions {
    /// A fresh application name for this test's sessions.
    pub fn new(tag: &str) -> Self {
        Self {
            application_name: format!(
                "rc_test_{tag}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// The name to give the sessions ([`PgConnectOptions::application_name`]).
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// `DATABASE_URL` with this application name (for a store that connects by URL).
    pub fn url(&self) -> String {
        let url = database_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}application_name={}", self.application_name)
    }

    /// Terminates this test's sessions (other than `admin`'s own) for which `condition`
    /// (an SQL boolean over `pg_stat_activity`, e.g. `TRUE`) holds; one `true` per session
    /// terminated.
    pub async fn terminate<'c, E>(&self, admin: E, condition: &str) -> Vec<bool>
    where
        E: sqlx::PgExecutor<'c>,
    {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND application_name = $1 AND ({condition})"
        )))
        .bind(&self.application_name)
        .fetch_all(admin)
        .await
        .unwrap_or_else(|e| panic!("terminate {}'s sessions: {e}", self.application_name))
    }
}

/// The schema a pool's sessions use.
#[allow(dead_code)]
pub async fn schema_of(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await
        .expect("current schema")
}

/// A store in a fresh schema.
#[allow(dead_code)]
pub async fn fresh_store() -> PostgresStore {
    PostgresStore::new(fresh_pool().await)
}

/// Drops a test's schema `schema` and the per-chain schemas beside it
/// (`<schema>_c<chain id>`, created by `PostgresStore::chain`), ignoring errors: the end of
/// a test that made any. A schema name is `[a-z0-9_]` only, so it is safe in the pattern.
#[allow(dead_code)]
pub async fn drop_schema_with_chains(pool: &PgPool, schema: &str) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace
         WHERE nspname = $1 OR nspname ~ ('^' || $1 || '_c[0-9]+$')",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for name in names {
        let _ = pool
            .execute(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .await;
    }
}
