//! PostgreSQL [`BalanceStore`](crate::BalanceStore) and [`PriceFeed`](crate::PriceFeed)
//! (feature `postgres`). Schema in `migrations/`; the schema, the write path and the tests
//! behind them are described in `docs/postgres.md` in the repository.

mod apply;
mod codec;
mod read;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor, PgPool};

use crate::error::StoreError;
use crate::model::AssetRegistry;
use codec::db;

/// Applies the crate's migrations (`migrations/*.sql`) to `pool`. Idempotent; call it from
/// your own binary at start-up.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .map_err(|e| db("migrate")(sqlx::Error::Migrate(Box::new(e))))
}

/// The writer lock of the schema on the current `search_path`: a transaction-scoped
/// advisory lock that every [`PostgresStore`] changeset takes first, and that the migration
/// toolkit's merge takes too, so the two serialize instead of racing (or deadlocking) on
/// `user_current_balances`. Keyed by schema: stores in other schemas do not contend.
pub const WRITER_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(1919118188, hashtext(current_schema()))";

/// The Postgres store: the `balance_updates` event log, `user_current_balances`
/// (confirmed + per-block pending rows, partitioned by status into
/// `user_confirmed_balances` and `user_pending_balances`), `oracle_prices`, `blocks` and
/// `checkpoint`.
///
/// Each [`apply`](crate::BalanceStore::apply) is one transaction with one batched write per
/// table (`COPY` for the log, `UNNEST` arrays for the rest); reorgs and confirmations touch
/// only the rows of the affected blocks, through the pending partition's index by block
/// and the partial indexes of `oracle_prices` and `blocks`. Readers use plain MVCC reads
/// and never block the writer.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Dual-write: a legacy log table written in each changeset's transaction.
    legacy: Option<std::sync::Arc<crate::migration::LegacyLog>>,
}

impl PostgresStore {
    /// A store over an existing pool (migrations must have run: see [`migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool, legacy: None }
    }

    /// Dual-write mode: every changeset also writes `legacy` (your own log table, described
    /// by its columns) in the same transaction — rows of new blocks inserted (pending, or
    /// confirmed when finalized in the same changeset), rows of reverted blocks deleted,
    /// pending rows marked confirmed on finalization — so readers of the legacy table keep
    /// working until the cutover. See [`crate::migration`].
    pub fn with_legacy_log(
        mut self,
        legacy: crate::migration::LegacyLog,
    ) -> Result<Self, StoreError> {
        legacy.validate().map_err(|e| StoreError::Inconsistent {
            backend: codec::BACKEND,
            detail: e.to_string(),
        })?;
        self.legacy = Some(std::sync::Arc::new(legacy));
        Ok(self)
    }

    /// Connects to `url` with a small pool and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(db(format!("connect to {}", redact(url))))?;
        migrate(&pool).await?;
        Ok(Self::new(pool))
    }

    /// Connects to `url` with every connection's `search_path` set to `schema` (created if
    /// missing) and runs the migrations there: one database can hold several independent
    /// stores (tenants, tests). `schema` must be a plain identifier (`[a-z_][a-z0-9_]*`).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let valid = schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StoreError::Inconsistent {
                backend: codec::BACKEND,
                detail: format!("schema name {schema:?} is not a plain lower-case identifier"),
            });
        }
        let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        let search_path = format!("SET search_path TO {schema}");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _| {
                let (create, search_path) = (create.clone(), search_path.clone());
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(create)).await?;
                    conn.execute(AssertSqlSafe(search_path)).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(db(format!("connect to {} (schema {schema})", redact(url))))?;
        migrate(&pool).await?;
        Ok(Self::new(pool))
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records the tracked assets (decimals, collateral factor) in the `assets` table.
    pub async fn register_assets(&self, assets: &AssetRegistry) -> Result<(), StoreError> {
        for asset in assets.iter() {
            sqlx::query(
                "INSERT INTO assets (asset, symbol, decimals, collateral_factor_bps) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (asset) DO UPDATE SET symbol = EXCLUDED.symbol, decimals = EXCLUDED.decimals,
                 collateral_factor_bps = EXCLUDED.collateral_factor_bps",
            )
            .bind(asset.id.as_slice())
            .bind(&asset.symbol)
            .bind(i16::from(asset.decimals))
            .bind(i32::from(asset.collateral_factor_bps))
            .execute(&self.pool)
            .await
            .map_err(db(format!("register asset {}", asset.symbol)))?;
        }
        Ok(())
    }
}

impl PostgresStore {
    /// The tracked assets recorded by [`register_assets`](Self::register_assets).
    pub async fn assets(&self) -> Result<AssetRegistry, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT asset, symbol, decimals, collateral_factor_bps FROM assets ORDER BY asset",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read assets"))?;
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

/// `url` without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
