//! Read replicas: a reader of a Postgres streaming replica (or any server holding the
//! store's schema) that runs no migration, cannot write, checks the schema version, labels
//! every answer with the state it was read at and refuses answers beyond a lag bound. For
//! API servers that read collateral while the single writer ingests into the primary.

mod options;
mod traits;

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};

pub use options::{ReplicaLag, ReplicaOptions, ReplicaRead};

use super::codec::{BACKEND, db};
use super::open::{applied_version, build_version, missing_migrations};
use super::read::{head_state_on, price_views_on};
use super::views::views_on;
use super::{PostgresConfig, PostgresStore, connect};
use crate::error::{Error, StoreError};
use crate::model::{AssetId, BalanceView, Collateral, Lag, PriceView, UserId};
use crate::reader::{ValuationPoint, assets_of};
use crate::traits::StoreWriter;
use crate::valuation::Valuator;

/// Every session of a replica reader: a write is refused by the server
/// (`read_only_sql_transaction`), on a primary too.
const READ_ONLY_SESSION: &str = "SET default_transaction_read_only = on";

/// The transaction of one answer: one snapshot, allowed on a hot standby.
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The replica's time lag at its snapshot, in seconds: zero when it is no replica, or has
/// replayed everything a streaming WAL receiver delivered; else the time since the last
/// replayed commit (infinite when it never replayed one).
const TIME_LAG_SQL: &str = "SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0::float8
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0::float8
    ELSE COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, 0),
                  'Infinity'::float8)
    END";

/// A read-only reader of the store on a Postgres read replica (feature `postgres`).
///
/// - Opening ([`open`](Self::open)) creates nothing and runs no migration; the session is
///   `default_transaction_read_only`, and the type has no writer method (it implements
///   the reader traits [`BalanceReader`](crate::traits::BalanceReader),
///   [`PriceFeed`](crate::traits::PriceFeed) and [`LogReader`](crate::traits::LogReader),
///   not [`StoreWriter`]). A replica whose schema lacks a migration of this build is
///   [`StoreError::ReplicaSchemaBehind`] naming both versions.
/// - Every answer is read in one `REPEATABLE READ READ ONLY` transaction, so it is one
///   committed state of the primary (the writer commits each changeset in one
///   transaction, which the replica replays atomically), and is labelled with that state
///   ([`ReplicaRead`]).
/// - An answer further behind than [`ReplicaOptions::max_lag_blocks`] or
///   [`max_lag_time`](ReplicaOptions::max_lag_time) is [`StoreError::ReplicaLag`]; see
///   [`ReplicaOptions`] for how lag is measured.
///
/// Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct PostgresReplica {
    /// The replica's pool (read-only sessions), with the operation deadline.
    replica: PostgresStore,
    /// The primary's pool (read-only sessions), to measure lag in blocks.
    primary: Option<PostgresStore>,
    max_lag_blocks: Option<u64>,
    max_lag_time: Option<Duration>,
}

/// A read-only pool over `url` in `schema` (which must exist).
async fn read_only(
    url: &str,
    schema: Option<&str>,
    config: &PostgresConfig,
) -> Result<PostgresStore, StoreError> {
    let pool = connect::connect_pool_with(url, schema, config, &[READ_ONLY_SESSION]).await?;
    Ok(PostgresStore::new(pool).with_operation_deadline(config.operation_deadline))
}

impl PostgresReplica {
    /// Connects to the replica at `url` (a `postgres://` URL or a libpq `key=value`
    /// string) in `options.schema`, read-only, creating and migrating nothing. A missing
    /// schema is [`StoreError::Config`]; a schema lacking a migration of this build is
    /// [`StoreError::ReplicaSchemaBehind`]; a schema migrated further (a newer build) is
    /// accepted. [`max_lag_blocks`](ReplicaOptions::max_lag_blocks) without a
    /// [`primary_url`](ReplicaOptions::primary_url) is [`StoreError::Config`]. With a
    /// primary URL, the primary is connected to as well (read-only, for its head).
    pub async fn open(url: &str, options: &ReplicaOptions) -> Result<Self, StoreError> {
        if let (Some(max), None) = (options.max_lag_blocks, &options.primary_url) {
            return Err(StoreError::Config {
                what: "replica lag bound",
                value: format!("max_lag_blocks = {max}"),
                reason: "lag in blocks is measured against the primary: set primary_url too"
                    .to_owned(),
            });
        }
        let config = PostgresConfig {
            create_schema: false,
            ..options.config.clone()
        };
        let schema = options.schema.as_deref();
        let replica = read_only(url, schema, &config).await?;
        let checked = replica
            .bounded("check the replica's schema", async |conn, _| {
                let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db("read transaction_read_only"))?;
                let current: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db("read the current schema"))?;
                let missing = missing_migrations(conn).await?;
                let applied = applied_version(conn).await?;
                Ok((read_only, current, missing, applied))
            })
            .await;
        let (read_only_setting, current, missing, applied) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                replica.pool().close().await;
                return Err(e);
            }
        };
        if read_only_setting != "on" {
            replica.pool().close().await;
            return Err(StoreError::Inconsistent {
                backend: BACKEND,
                detail: format!(
                    "the replica session is not read-only (transaction_read_only = {read_only_setting})"
                ),
            });
        }
        if !missing.is_empty() {
            replica.pool().close().await;
            return Err(StoreError::ReplicaSchemaBehind {
                backend: BACKEND,
                schema: current.unwrap_or_else(|| "(none on the search_path)".to_owned()),
                replica_version: applied,
                build_version: build_version(),
                missing,
            });
        }
        let primary = match &options.primary_url {
            Some(primary_url) => match read_only(primary_url, schema, &config).await {
                Ok(primary) => Some(primary),
                Err(e) => {
                    replica.pool().close().await;
                    return Err(e);
                }
            },
            None => None,
        };
        Ok(Self {
            replica,
            primary,
            max_lag_blocks: options.max_lag_blocks,
            max_lag_time: options.max_lag_time,
        })
    }

    /// The replica's pool (every session `default_transaction_read_only`).
    pub fn pool(&self) -> &PgPool {
        self.replica.pool()
    }

    /// The state the replica is at (head, finalized height) and its lag, within the bounds.
    pub async fn state(&self) -> Result<ReplicaRead<()>, StoreError> {
        self.read("read the replica's state", async |_| Ok(()))
            .await
    }

    /// The balances of `users` (in the order asked, as
    /// [`user_balances_many`](crate::traits::BalanceReader::user_balances_many)), from one
    /// snapshot, labelled with its state.
    pub async fn balances(
        &self,
        users: &[UserId],
    ) -> Result<ReplicaRead<Vec<Vec<(AssetId, BalanceView)>>>, StoreError> {
        let what = format!("read balances of {} users on the replica", users.len());
        self.read(&what, async |conn| views_on(conn, users, &what).await)
            .await
    }

    /// The price views of `assets` (in the order asked), from one snapshot, labelled with
    /// its state.
    pub async fn prices(
        &self,
        assets: &[AssetId],
    ) -> Result<ReplicaRead<Vec<PriceView>>, StoreError> {
        let what = format!("read prices of {} assets on the replica", assets.len());
        self.read(&what, async |conn| {
            price_views_on(conn, assets, &what).await
        })
        .await
    }

    /// The collateral of `users` (in the order asked) valued by `valuator` at the
    /// snapshot's head, balances and prices read from ONE snapshot of the replica (one
    /// transaction, three statements): what
    /// [`CollateralReader::collateral_snapshot`](crate::reader::CollateralReader::collateral_snapshot)
    /// gives on the primary, without retries. A user whose valuation fails gets its own
    /// error.
    pub async fn collateral(
        &self,
        valuator: &Valuator,
        users: &[UserId],
    ) -> Result<ReplicaRead<Vec<Result<Collateral, crate::error::ValuationError>>>, Error> {
        let what = format!(
            "read the collateral of {} users on the replica",
            users.len()
        );
        let read = self
            .read(&what, async |conn| {
                let balances = views_on(conn, users, &what).await?;
                let assets = assets_of(balances.iter().map(Vec::as_slice));
                let prices = price_views_on(conn, &assets, &what).await?;
                Ok((balances, assets, prices))
            })
            .await?;
        let at = ValuationPoint::of(read.head.as_ref());
        Ok(read.map(|(balances, assets, prices)| {
            let mut user_prices = Vec::new();
            users
                .iter()
                .zip(&balances)
                .map(|(user, held)| {
                    user_prices.clear();
                    user_prices.extend(held.iter().map(|(asset, _)| {
                        assets
                            .binary_search(asset)
                            .map(|i| prices[i])
                            .unwrap_or_default()
                    }));
                    valuator.collateral(*user, at.block, at.now, held, &user_prices)
                })
                .collect()
        }))
    }

    /// Runs `work` in one `REPEATABLE READ READ ONLY` transaction on the replica, with the
    /// snapshot's head state and time lag, then measures the block lag against the primary
    /// (if any) and checks both bounds: beyond one, [`StoreError::ReplicaLag`] and the
    /// value is dropped. An error names `operation`.
    pub(super) async fn read<T>(
        &self,
        operation: &str,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<ReplicaRead<T>, StoreError> {
        let (value, state, time) = self
            .replica
            .bounded(operation, async |conn, _| {
                let mut tx = conn.begin_with(SNAPSHOT).await.map_err(db(operation))?;
                // The snapshot is taken by the first statement: the lag is the snapshot's.
                let seconds: f64 = sqlx::query_scalar(TIME_LAG_SQL)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db(format!("{operation}: measure the replica's lag")))?;
                let state = head_state_on(&mut tx, operation).await?;
                let value = work(&mut tx).await?;
                tx.commit().await.map_err(db(operation))?;
                Ok((value, state, seconds))
            })
            .await?;
        let time = Duration::try_from_secs_f64(time).unwrap_or(Duration::MAX);
        let head = state.map(|(h, _)| h);
        let mut lag = ReplicaLag {
            time,
            ..ReplicaLag::default()
        };
        if let Some(primary) = &self.primary {
            lag.primary_head = primary.head().await?.map(|h| h.number);
            lag.blocks = Some(match (lag.primary_head, head) {
                (Some(p), Some(r)) => p.saturating_sub(r.number),
                (Some(p), None) => p.saturating_add(1),
                (None, _) => 0,
            });
        }
        let refuse = |lag_now: Lag, max: Lag| StoreError::ReplicaLag {
            backend: BACKEND,
            operation: operation.to_owned(),
            replica_head: head.map(|h| h.number),
            primary_head: lag.primary_head,
            lag: lag_now,
            max,
        };
        if let (Some(max), Some(blocks)) = (self.max_lag_blocks, lag.blocks)
            && blocks > max
        {
            return Err(refuse(Lag::Blocks(blocks), Lag::Blocks(max)));
        }
        if let Some(max) = self.max_lag_time
            && lag.time > max
        {
            return Err(refuse(Lag::Time(lag.time), Lag::Time(max)));
        }
        Ok(ReplicaRead {
            value,
            head,
            state: state.map(|(_, s)| s),
            lag,
        })
    }
}
