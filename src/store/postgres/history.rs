//! History reads of the [`PostgresStore`]: a balance's latest log rows (`user_log`) and a
//! user's confirmed state at a past block (`history_at`), from `balance_updates` through
//! the history index `balance_updates_user (user_address, asset, block_number)` and from
//! `price_log` (migration 0012). The index costs ingest (see BENCHMARKS.md), so it is built
//! on demand by [`PostgresStore::create_history_indexes`].

use std::collections::BTreeMap;

use alloy_primitives::U256;
use sqlx::{Connection, Executor, Row};

use super::PostgresStore;
use super::codec::{BACKEND, address, bigint, db, number, u256};
use super::deadline::FetchBounded;
use super::read::{header, log_record, price};
use crate::error::StoreError;
use crate::model::{AssetId, BalanceKey, BlockNumber, UserId};
use crate::traits::{HistoryAt, HistoryError, LogSide, UserLog};

/// The name of the log's history index.
pub const HISTORY_INDEX: &str = "balance_updates_user";

impl PostgresStore {
    /// Builds the history index `balance_updates_user (user_address, asset, block_number)`
    /// with `CREATE INDEX CONCURRENTLY` (writes go on while it builds; on an empty log a
    /// plain `CREATE INDEX`, which is instant), replacing an
    /// invalid one a failed build left. Idempotent. Without it
    /// [`collateral_at_block`](crate::reader::CollateralReader::collateral_at_block) is
    /// refused as `Unsupported` and `explain` scans the log. Runs without the pool's
    /// `statement_timeout`. On error no index or an invalid one (dropped by the next call)
    /// exists; nothing else was written.
    pub async fn create_history_indexes(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(db("connect to build the history index"))?;
        conn.execute("SET statement_timeout = 0")
            .await
            .map_err(db("lift the statement timeout for the history index"))?;
        let invalid: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid)",
        )
        .bind(HISTORY_INDEX)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("look up the history index"))?;
        // On an empty log a plain build is instant and waits for no other transaction
        // (CONCURRENTLY waits for every older snapshot in the database).
        let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM balance_updates)")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("look at the log"))?;
        if invalid {
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS balance_updates_user")
                .await
                .map_err(db("drop the invalid history index"))?;
        }
        let result = conn
            .execute(if empty && !invalid {
                "CREATE INDEX IF NOT EXISTS balance_updates_user
                 ON balance_updates (user_address, asset, block_number)"
            } else {
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS balance_updates_user
                 ON balance_updates (user_address, asset, block_number)"
            })
            .await
            .map_err(db("create the history index"));
        if conn.execute("RESET statement_timeout").await.is_err() {
            let _ = conn.detach().close().await;
        }
        result.map(|_| ())
    }

    /// Whether the history index exists and is valid.
    pub async fn has_history_indexes(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid)",
        )
        .bind(HISTORY_INDEX)
        .fetch_one(self.pool())
        .await
        .map_err(db("look up the history index"))
    }

    pub(super) async fn user_log_rows(
        &self,
        key: BalanceKey,
        side: LogSide,
        limit: usize,
    ) -> Result<UserLog, HistoryError> {
        let statuses: &[i16] = match side {
            LogSide::Confirmed => &[1],
            LogSide::Canonical => &[0, 1],
        };
        let rows = sqlx::query(
            "SELECT u.block_number, u.block_hash, u.tx_hash, u.log_index, u.ordinal, u.user_address, u.asset,
                    u.kind, u.amount::text AS amount, b.status
             FROM balance_updates u JOIN blocks b ON b.hash = u.block_hash
             WHERE u.user_address = $1 AND u.asset = $2 AND b.status = ANY($3)
             ORDER BY u.block_number DESC, u.log_index DESC, u.ordinal DESC
             LIMIT $4",
        )
        .bind(key.user.as_slice())
        .bind(key.asset.as_slice())
        .bind(statuses)
        .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
        .fetch_bounded(self, format!("read the log of {} in {}", key.user, key.asset))
        .await?;
        let mut rows = rows.iter().map(log_record).collect::<Result<Vec<_>, _>>()?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        Ok(UserLog { rows, truncated })
    }

    pub(super) async fn history_state(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<HistoryAt, HistoryError> {
        let what = format!("read the history of {user} at #{block}");
        let mut tx = self.pool().begin().await.map_err(db(what.clone()))?;
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db(what.clone()))?;
        let has_index: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid)",
        )
        .bind(HISTORY_INDEX)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        if !has_index {
            return Err(HistoryError::Unsupported {
                backend: BACKEND,
                what: "history index (PostgresStore::create_history_indexes)",
            });
        }
        let meta = sqlx::query(
            "SELECT (SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash) AS finalized,
                    (SELECT prices_from FROM history_start) AS prices_from,
                    (SELECT high_water FROM migration_state) AS high_water,
                    (SELECT phase FROM migration_state) AS phase",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        let get = |c: &'static str| -> Result<Option<i64>, StoreError> {
            meta.try_get::<Option<i64>, _>(c)
                .map_err(db(format!("read {c}")))
        };
        let finalized = get("finalized")?.map(|n| number(n, "number")).transpose()?;
        if finalized.is_none_or(|f| block > f) {
            return Err(HistoryError::NotFinal { block, finalized });
        }
        let at = bigint(block, "block_number")?;
        if let Some(from) = get("prices_from")?
            && at < from
        {
            return Err(HistoryError::PricesNotInLog {
                block,
                from: number(from, "prices_from")?,
            });
        }
        let phase: Option<i16> = meta
            .try_get("phase")
            .map_err(db("read the backfill phase"))?;
        let high_water = get("high_water")?;
        if let Some(h) = high_water {
            if at < h {
                return Err(HistoryError::NotInLog {
                    block,
                    high_water: number(h, "high_water")?,
                });
            }
            if phase != Some(2) {
                return Err(HistoryError::Unsupported {
                    backend: BACKEND,
                    what: "history while a migration backfill runs",
                });
            }
        }
        let Some(row) = sqlx::query(
            "SELECT number, hash, parent_hash, timestamp FROM blocks WHERE number = $1 AND status = 1",
        )
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(what.clone()))?
        else {
            let first: Option<i64> =
                sqlx::query_scalar("SELECT min(number) FROM blocks WHERE status < 2")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db(what.clone()))?;
            return Err(HistoryError::BeforeLog {
                block,
                first: first.map(|n| number(n, "number")).transpose()?,
            });
        };
        let header = header(&row)?;
        let mut balances: BTreeMap<AssetId, U256> = BTreeMap::new();
        if high_water.is_some() {
            for r in sqlx::query(
                "SELECT asset, balance::text AS balance FROM history_base WHERE user_address = $1",
            )
            .bind(user.as_slice())
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what.clone()))?
            {
                let asset = address(
                    &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
                    "asset",
                )?;
                let balance = u256(
                    &r.try_get::<String, _>("balance")
                        .map_err(db("read balance"))?,
                    "balance",
                )?;
                balances.insert(asset, balance);
            }
        }
        let rows = sqlx::query(
            "SELECT u.asset, u.kind, u.amount::text AS amount
             FROM balance_updates u JOIN blocks b ON b.hash = u.block_hash AND b.status = 1
             WHERE u.user_address = $1 AND u.block_number <= $2 AND u.block_number > $3
             ORDER BY u.asset, u.block_number, u.log_index, u.ordinal",
        )
        .bind(user.as_slice())
        .bind(at)
        .bind(high_water.unwrap_or(-1))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        for r in &rows {
            let asset = address(
                &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
                "asset",
            )?;
            let amount = u256(
                &r.try_get::<String, _>("amount")
                    .map_err(db("read amount"))?,
                "amount",
            )?;
            let kind: i16 = r.try_get("kind").map_err(db("read kind"))?;
            let b = balances.entry(asset).or_default();
            let folded = match kind {
                0 => b.checked_add(amount),
                1 => b.checked_sub(amount),
                _ => Some(amount),
            };
            *b = folded.ok_or_else(|| StoreError::Inconsistent {
                backend: BACKEND,
                detail: format!("the log of {user} in {asset} does not fold at #{block}"),
            })?;
        }
        let assets: Vec<AssetId> = balances.keys().copied().collect();
        let asset_bytes: Vec<&[u8]> = assets.iter().map(|a| a.as_slice()).collect();
        let mut prices = BTreeMap::new();
        for r in sqlx::query(
            "SELECT DISTINCT ON (p.asset) p.asset, p.answer::text AS answer, p.decimals,
                    p.round_id::text AS round_id, p.updated_at, p.block_number
             FROM price_log p JOIN blocks b ON b.hash = p.block_hash AND b.status = 1
             WHERE p.asset = ANY($1) AND p.block_number <= $2
             ORDER BY p.asset, p.block_number DESC",
        )
        .bind(&asset_bytes)
        .bind(at)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what.clone()))?
        {
            let asset = address(
                &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
                "asset",
            )?;
            prices.insert(asset, price(&r, asset)?);
        }
        tx.commit().await.map_err(db(what))?;
        Ok(HistoryAt {
            header,
            prices: assets.iter().map(|a| prices.get(a).copied()).collect(),
            balances: balances.into_iter().collect(),
        })
    }
}
