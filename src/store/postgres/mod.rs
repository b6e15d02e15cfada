//! PostgreSQL [`BalanceStore`](crate::BalanceStore) and [`PriceFeed`](crate::PriceFeed)
//! (feature `postgres`). Schema in `migrations/`; the schema, the write path and the tests
//! behind them are described in `docs/postgres.md` in the repository.

mod append;
mod apply;
mod asset_state;
mod chains;
mod codec;
mod connect;
mod deadline;
mod finalize;
mod history;
mod hook;
pub(crate) mod ident;
mod indexes;
mod open;
mod rates;
mod read;
mod replica;
mod resume;
pub(crate) mod snapshot;
mod standby;
mod views;
mod writer;

use sqlx::{Connection, Executor, PgConnection, PgPool};

pub(crate) use connect::classify;
#[cfg(feature = "migration")]
pub(crate) use connect::classify_timeout;
pub use connect::{PostgresConfig, cancel_sessions, ping, redact_url};
#[cfg(feature = "migration")]
pub(crate) use history::in_shares;

use crate::error::StoreError;
use crate::model::AssetRegistry;
use codec::db;
pub use hook::ChangesetHook;
pub use replica::{PostgresReplica, ReplicaLag, ReplicaOptions, ReplicaRead};

/// The crate's migrations (`migrations/*.sql`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies the crate's migrations (`migrations/*.sql`) to `pool`. Idempotent; call it from
/// your own binary at start-up.
///
/// Migrations run without the pool's `statement_timeout` (an index build on a large table
/// may take longer); lock waits stay bounded by `lock_timeout`.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(db("connect to migrate"))?;
    conn.execute("SET statement_timeout = 0")
        .await
        .map_err(db("lift the statement timeout to migrate"))?;
    // `run_direct` on the connection itself, not `run` through `Acquire`: `run`'s future
    // is not provably `Send` (a higher-ranked `Acquire` bound), which made every caller's
    // future not `Send` either (`PostgresStore::chain` among them). sqlx's own way around
    // it; the same migrations, lock and checks.
    let result = MIGRATOR
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(|e| db("migrate")(sqlx::Error::Migrate(Box::new(e))));
    // Back to the session default before the connection returns to the pool; a connection
    // that cannot reset is closed instead.
    if conn.execute("RESET statement_timeout").await.is_err() {
        let _ = conn.detach().close().await;
    }
    result
}

/// The writer lock of the schema on the current `search_path`: a transaction-scoped
/// advisory lock that every [`PostgresStore`] changeset takes first, and that the migration
/// toolkit's merge takes too, so the two serialize instead of racing (or deadlocking) on
/// `user_current_balances`. Keyed by the schema itself (its `pg_namespace` oid, unique in
/// the database, not a hash of its name): stores in other schemas never contend.
pub const WRITER_LOCK_SQL: &str = concat!(
    "SELECT pg_advisory_xact_lock(1919118188, ",
    "(SELECT oid::bigint::bit(32)::int FROM pg_namespace WHERE nspname = current_schema()))"
);

/// The second key of the schema's advisory locks ([`WRITER_LOCK_SQL`] and the writer
/// ownership): the oid of the schema on the `search_path`, as an `int4` whose bits are the
/// oid (so `pg_locks.objid` is the oid itself). An oid names one schema of the database,
/// where `hashtext(name)` let two names share a lock.
pub(crate) const SCHEMA_LOCK_KEY_SQL: &str =
    "(SELECT oid::bigint::bit(32)::int FROM pg_namespace WHERE nspname = current_schema())";

/// Takes the writer lock ([`WRITER_LOCK_SQL`]) in `tx`'s transaction. The wait is bounded
/// by the session's `lock_timeout` ([`PostgresConfig::lock_timeout`]): past it the error is
/// [`StoreError::LockTimeout`] naming the schema and, looked up through `pool`, the server
/// process holding the lock.
pub(crate) async fn take_writer_lock(
    tx: &mut PgConnection,
    pool: &PgPool,
    what: &str,
) -> Result<(), StoreError> {
    let operation = format!("take the writer lock for {what}");
    match sqlx::query(WRITER_LOCK_SQL).execute(&mut *tx).await {
        Ok(_) => Ok(()),
        Err(e) if connect::is_lock_timeout(&e) => {
            let found: Option<(String, Option<i32>)> = sqlx::query_as(
                "SELECT current_schema()::text, (SELECT l.pid FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 1919118188
                     AND l.objid = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
                     AND l.objsubid = 2
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   LIMIT 1)",
            )
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
            let (schema, holder) = found.unwrap_or_else(|| ("?".to_owned(), None));
            Err(StoreError::LockTimeout {
                backend: codec::BACKEND,
                operation,
                lock: format!("the writer lock of schema {schema}"),
                holder,
                source: Box::new(e),
            })
        }
        Err(e) => Err(classify(operation, e)),
    }
}

/// The Postgres store: the `balance_updates` event log, `user_current_balances`
/// (confirmed + per-block pending rows, partitioned by status into
/// `user_confirmed_balances` and `user_pending_balances`), `oracle_prices`, `rates`, `blocks` and
/// `checkpoint`.
///
/// Each [`apply`](crate::StoreWriter::apply) is one transaction with one batched write per
/// table (`COPY` for the log, `UNNEST` arrays for the rest); reorgs and confirmations touch
/// only the rows of the affected blocks, through the pending partition's index by block
/// and the partial indexes of `oracle_prices` and `blocks`. Readers use plain MVCC reads
/// and never block the writer.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Extra writes in each changeset's transaction (e.g. a legacy log table).
    hook: Option<std::sync::Arc<dyn ChangesetHook>>,
    /// The writer ownership once [`claim_writer`](crate::StoreWriter::claim_writer)
    /// succeeded (its session and fencing epoch); shared by clones, the session closed
    /// (releasing the lock) with the last one.
    claim: std::sync::Arc<writer::Claim>,
    /// The client-side deadline of each operation
    /// ([`PostgresConfig::operation_deadline`]).
    deadline: Option<std::time::Duration>,
    /// The base schema whose `chains` catalog this store uses, for a store
    /// [`chain`](Self::chain) returned; `None`: its own schema's.
    catalog: Option<std::sync::Arc<str>>,
    /// The schema of the store's connections once read (shared by clones): what the
    /// one-statement collateral read over several schemas qualifies tables with.
    schema: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<str>>>,
}

impl PostgresStore {
    /// A store over an existing pool (migrations must have run: see [`migrate`]), with the
    /// default [`operation_deadline`](PostgresConfig::operation_deadline) (see
    /// [`with_operation_deadline`](Self::with_operation_deadline)).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            hook: None,
            claim: Default::default(),
            deadline: PostgresConfig::default().operation_deadline,
            catalog: None,
            schema: Default::default(),
        }
    }

    /// Every operation of this handle (and of its later clones) gives up after `deadline`
    /// with [`StoreError::Deadline`] (see [`PostgresConfig::operation_deadline`], which
    /// [`connect_with`](Self::connect_with) applies); `None`: no client deadline. Keep it
    /// above the pool's `statement_timeout`.
    pub fn with_operation_deadline(mut self, deadline: Option<std::time::Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Every changeset also runs `hook` in its transaction, after the store's own writes
    /// (see [`ChangesetHook`]); replaces an earlier hook. The migration toolkit's
    /// `with_legacy_log` (feature `migration`) is one.
    pub fn with_changeset_hook(mut self, hook: std::sync::Arc<dyn ChangesetHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Connects to `url` with the default [`PostgresConfig`] and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, None, &PostgresConfig::default()).await
    }

    /// Connects to `url` with every connection's `search_path` set to `schema` (created if
    /// missing) and runs the migrations there: one database can hold several independent
    /// stores (tenants, tests). `schema` must be a plain lower-case identifier
    /// (`[a-z_][a-z0-9_]*`) of at most 63 bytes and not a system schema
    /// (`information_schema`, `pg_*`); anything else is [`StoreError::Config`].
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Some(schema), &PostgresConfig::default()).await
    }

    /// Connects to `url` (a `postgres://` URL or a libpq `key=value` string) with `config`'s
    /// pool size and timeouts, in `schema` when given (see
    /// [`connect_in_schema`](Self::connect_in_schema)), and runs the migrations. The first
    /// connection is opened before this returns, so a refused connection, a full server or
    /// an unusable schema is an error naming its cause. Errors never contain the password.
    pub async fn connect_with(
        url: &str,
        schema: Option<&str>,
        config: &PostgresConfig,
    ) -> Result<Self, StoreError> {
        let pool = connect::connect_pool(url, schema, config).await?;
        migrate(&pool).await?;
        Ok(Self::new(pool).with_operation_deadline(config.operation_deadline))
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records the tracked assets (decimals, collateral factor) in the `assets` table.
    pub async fn register_assets(&self, assets: &AssetRegistry) -> Result<(), StoreError> {
        for asset in assets.iter() {
            let what = format!("register asset {}", asset.symbol);
            self.bounded(&what, async |conn, _| {
                sqlx::query(
                    "INSERT INTO assets (asset, symbol, decimals, collateral_factor_bps) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (asset) DO UPDATE SET symbol = EXCLUDED.symbol, decimals = EXCLUDED.decimals,
                     collateral_factor_bps = EXCLUDED.collateral_factor_bps",
                )
                .bind(asset.id.as_slice())
                .bind(&asset.symbol)
                .bind(i16::from(asset.decimals))
                .bind(i32::from(asset.collateral_factor_bps))
                .execute(conn)
                .await
                .map_err(db(what.as_str()))
            })
            .await?;
        }
        Ok(())
    }
}

impl PostgresStore {
    /// The tracked assets recorded by [`register_assets`](Self::register_assets).
    pub async fn assets(&self) -> Result<AssetRegistry, StoreError> {
        use sqlx::Row;
        let rows = self
            .bounded("read assets", async |conn, _| {
                sqlx::query(
                    "SELECT asset, symbol, decimals, collateral_factor_bps FROM assets ORDER BY asset",
                )
                .fetch_all(conn)
                .await
                .map_err(db("read assets"))
            })
            .await?;
        let mut assets = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: Vec<u8> = r.try_get("asset").map_err(db("read asset id"))?;
            let decimals: i16 = r.try_get("decimals").map_err(db("read asset decimals"))?;
            let bps: i32 = r
                .try_get("collateral_factor_bps")
                .map_err(db("read collateral factor"))?;
            let out_of_range = |column: &'static str, value: String| StoreError::OutOfRange {
                backend: codec::BACKEND,
                column,
                value,
            };
            assets.push(crate::model::Asset::new(
                codec::address(&id, "asset")?,
                &r.try_get::<String, _>("symbol")
                    .map_err(db("read asset symbol"))?,
                u8::try_from(decimals)
                    .map_err(|_| out_of_range("decimals", decimals.to_string()))?,
                u16::try_from(bps)
                    .map_err(|_| out_of_range("collateral_factor_bps", bps.to_string()))?,
            ));
        }
        AssetRegistry::new(assets).map_err(|e| StoreError::Inconsistent {
            backend: codec::BACKEND,
            detail: format!("assets table: {e}"),
        })
    }
}
