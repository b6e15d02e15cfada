//! PostgreSQL [`BalanceStore`](crate::BalanceStore) and [`PriceFeed`](crate::PriceFeed)
//! (feature `postgres`). Schema in `migrations/`; see the README's "Postgres backend".

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

/// The Postgres store: the `balance_updates` event log, `user_current_balances`
/// (confirmed + per-block pending rows), `oracle_prices`, `blocks` and `checkpoint`.
///
/// Each [`apply`](crate::BalanceStore::apply) is one transaction with one batched write per
/// table (`COPY` for the log, `UNNEST` arrays for the rest); reorgs and confirmations touch
/// only the rows of the affected blocks through partial indexes. Readers use plain MVCC
/// reads and never block the writer.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// A store over an existing pool (migrations must have run: see [`migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
