//! History reads of the [`PostgresStore`]: a balance's latest log rows (`user_log`) and a
//! user's confirmed state at a past block (`history_at`), from `balance_updates` through
//! the history index `balance_updates_user (user_address, asset, block_number)` and from
//! `price_log` (migration 0012). The index costs ingest (see BENCHMARKS.md), so it is built
//! on demand by [`PostgresStore::create_history_indexes`].

use std::collections::BTreeMap;

use alloy_primitives::U256;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

mod bounds;

use bounds::{bound, finalized_with_prices};

use super::PostgresStore;
use super::codec::{BACKEND, address, db, number, u256};
use super::deadline::FetchBounded;
use super::read::{header, log_record, price};
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, AssetStateView, BalanceKey, BlockNumber, CORRECTION_LOG_INDEX, Price,
    RESUME_LOG_INDEX, RateUpdate, UserId,
};
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
        let mut tx = self.history_snapshot(&what).await?;
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
                    (SELECT state_from FROM history_start) AS state_from,
                    (SELECT high_water FROM migration_state) AS high_water,
                    (SELECT phase FROM migration_state) AS phase",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        let at = finalized_with_prices(&meta, block)?;
        if let Some(from) = bound(&meta, "state_from")?
            && at < from
        {
            return Err(HistoryError::StateNotInLog {
                block,
                from: number(from, "state_from")?,
            });
        }
        let phase: Option<i16> = meta
            .try_get("phase")
            .map_err(db("read the backfill phase"))?;
        let high_water = bound(&meta, "high_water")?;
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
        let unindexed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM history_unindexed x JOIN balance_updates u
                            ON u.asset = x.asset AND u.user_address = $1)",
        )
        .bind(user.as_slice())
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        if unindexed {
            return Err(HistoryError::Unsupported {
                backend: BACKEND,
                what: "history of a rebasing asset indexed before migration 0016",
            });
        }
        let relation = "(SELECT u.user_address AS u, u.asset AS a, u.kind AS k, u.amount AS v,
                 u.block_number AS n, u.log_index AS i, u.ordinal::int AS o
              FROM balance_updates u JOIN blocks b ON b.hash = u.block_hash AND b.status = 1
              WHERE u.user_address = $1 AND u.block_number <= $2 AND u.block_number > $3)";
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT h.a AS asset, h.k AS kind, h.v::text AS amount, h.n, h.i FROM {} h ORDER BY h.a, h.n, h.i, h.o",
            in_shares(&corrections_first(relation))
        )))
        .bind(user.as_slice())
        .bind(at)
        .bind(high_water.unwrap_or(-1))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        let quarantines = quarantines(&mut tx, at, &what).await?;
        for r in &rows {
            let asset = address(
                &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
                "asset",
            )?;
            let n: i64 = r.try_get("n").map_err(db("read block_number"))?;
            let i: i64 = r.try_get("i").map_err(db("read log_index"))?;
            if quarantines.get(&asset).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|(from, to)| *from <= (n, i) && (n, i) < *to)
            }) {
                // A row of a quarantined asset: the engine skipped it.
                continue;
            }
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
        // A rebasing asset's fold is shares: converted with its index after the block.
        for r in sqlx::query(
            "SELECT DISTINCT ON (r.asset) r.asset, r.num::text AS num, r.den::text AS den
             FROM rebase_log r JOIN blocks b ON b.hash = r.block_hash AND b.status = 1
             WHERE r.asset = ANY($1) AND r.block_number <= $2
             ORDER BY r.asset, r.block_number DESC, r.log_index DESC, r.part DESC",
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
            let part = |c: &'static str| -> Result<U256, StoreError> {
                u256(&r.try_get::<String, _>(c).map_err(db("read index"))?, c)
            };
            let index = AssetIndex {
                num: part("num")?,
                den: part("den")?,
            };
            if let Some(b) = balances.get_mut(&asset) {
                *b = index.balance(*b).unwrap_or(U256::MAX);
            }
        }
        let prices = prices_at(&mut tx, &assets, at, &what).await?;
        let mut rates = BTreeMap::new();
        for r in sqlx::query(
            "SELECT DISTINCT ON (r.asset) r.asset, r.rate::text AS rate, r.block_number
             FROM rate_log r JOIN blocks b ON b.hash = r.block_hash AND b.status = 1
             WHERE r.asset = ANY($1) AND r.block_number <= $2
             ORDER BY r.asset, r.block_number DESC",
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
            let rate = u256(
                &r.try_get::<String, _>("rate").map_err(db("read rate"))?,
                "rate",
            )?;
            let n: i64 = r.try_get("block_number").map_err(db("read rate block"))?;
            rates.insert(
                asset,
                RateUpdate {
                    asset,
                    rate,
                    block: number(n, "block_number")?,
                },
            );
        }
        let mut states = Vec::new();
        for r in sqlx::query(
            "SELECT DISTINCT ON (s.asset) s.asset, s.state, s.since_number, s.since_hash, s.tx_hash,
                    s.log_index, s.reason, s.user_address, s.balance::text AS balance,
                    s.amount::text AS amount, s.detail
             FROM asset_state_log s JOIN blocks b ON b.hash = s.block_hash AND b.status = 1
             WHERE s.asset = ANY($1) AND s.block_number <= $2
             ORDER BY s.asset, s.block_number DESC",
        )
        .bind(&asset_bytes)
        .bind(at)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what.clone()))?
        {
            let (asset, state) = super::asset_state::state(&r)?;
            if state.is_quarantined() {
                states.push(AssetStateView {
                    asset,
                    confirmed: state.clone(),
                    pending: state,
                });
            }
        }
        tx.commit().await.map_err(db(what))?;
        Ok(HistoryAt {
            header,
            prices,
            rates: assets.iter().map(|a| rates.get(a).copied()).collect(),
            balances: balances.into_iter().collect(),
            states,
        })
    }

    pub(super) async fn history_prices(
        &self,
        assets: &[AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<Price>>, HistoryError> {
        let what = format!("read the prices at #{block}");
        let mut tx = self.history_snapshot(&what).await?;
        let meta = sqlx::query(
            "SELECT (SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash) AS finalized,
                    (SELECT prices_from FROM history_start) AS prices_from",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what.clone()))?;
        let at = finalized_with_prices(&meta, block)?;
        let prices = prices_at(&mut tx, assets, at, &what).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(prices)
    }
}

/// `relation` (columns `u, a, k, v, n, i, o` of the crate's log) with a block's correction
/// rows (synthetic log indexes from 2^62, below the resumes' 2^62 + 2^61) shifted below
/// zero: they apply before its events.
fn corrections_first(relation: &str) -> String {
    format!(
        "(SELECT c.u, c.a, c.k, c.v, c.n,
                 CASE WHEN c.i >= {CORRECTION_LOG_INDEX} AND c.i < {RESUME_LOG_INDEX}
                      THEN c.i - 9223372036854775807 ELSE c.i END AS i, c.o
          FROM {relation} c)"
    )
}

/// `relation` (columns `u, a, k, v, n, i, o`: user, asset, kind, amount, block, log index,
/// ordinal) with each amount of a rebasing asset converted to shares as the engine
/// converted it: `floor(v × den ÷ num)` with the index of the latest rebase before the row
/// (by block, log index, event part) in a finalized block of `rebase_log` (migration
/// 0016); rows before an asset's first rebase, and of assets that never rebased, as they
/// are.
pub(crate) fn in_shares(relation: &str) -> String {
    format!(
        "(SELECT h.u, h.a, h.k, h.v, h.n, h.i, h.o FROM {relation} h
          WHERE NOT EXISTS (SELECT 1 FROM rebase_log r WHERE r.asset = h.a)
          UNION ALL
          SELECT h.u, h.a, h.k, COALESCE(div(h.v * x.den, x.num), h.v) AS v, h.n, h.i, h.o
          FROM {relation} h
          LEFT JOIN LATERAL (
              SELECT r.num, r.den FROM rebase_log r
              JOIN blocks b ON b.hash = r.block_hash AND b.status = 1
              WHERE r.asset = h.a AND (r.block_number, r.log_index, r.part) < (h.n, h.i, h.o >> 1)
              ORDER BY r.block_number DESC, r.log_index DESC, r.part DESC LIMIT 1
          ) x ON TRUE
          WHERE EXISTS (SELECT 1 FROM rebase_log r WHERE r.asset = h.a))"
    )
}

/// `(block, log index)` positions: from a faulting log (included) to a resume (excluded).
type Span = ((i64, i64), (i64, i64));

/// Per asset, the spans of the finalized blocks at or below `at` in which the asset was
/// quarantined (from its faulting log to its resume, which sorts after every real log of
/// its block; open-ended if not resumed by `at`): the engine folded none of its log rows
/// there. Quarantines are rare, so every one is read.
async fn quarantines(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    at: i64,
    what: &str,
) -> Result<BTreeMap<AssetId, Vec<Span>>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.asset, s.block_number, s.state, s.log_index
         FROM asset_state_log s JOIN blocks b ON b.hash = s.block_hash AND b.status = 1
         WHERE s.block_number <= $1
         ORDER BY s.asset, s.block_number",
    )
    .bind(at)
    .fetch_all(&mut **tx)
    .await
    .map_err(db(what.to_owned()))?;
    let resume = i64::try_from(RESUME_LOG_INDEX).unwrap_or(i64::MAX);
    let mut out: BTreeMap<AssetId, Vec<Span>> = BTreeMap::new();
    for r in &rows {
        let asset = address(
            &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
            "asset",
        )?;
        let n: i64 = r.try_get("block_number").map_err(db("read block_number"))?;
        let state: i16 = r.try_get("state").map_err(db("read state"))?;
        let spans = out.entry(asset).or_default();
        let open = spans
            .last()
            .is_some_and(|(_, to)| *to == (i64::MAX, i64::MAX));
        match (state, open) {
            (1, false) => {
                let log: Option<i64> = r.try_get("log_index").map_err(db("read log_index"))?;
                spans.push(((n, log.unwrap_or_default()), (i64::MAX, i64::MAX)));
            }
            (0, true) => {
                if let Some(last) = spans.last_mut() {
                    last.1 = (n, resume);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The latest price of each of `assets` accepted in a finalized block at or below `at`.
async fn prices_at(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    assets: &[AssetId],
    at: i64,
    what: &str,
) -> Result<Vec<Option<Price>>, StoreError> {
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
    .fetch_all(&mut **tx)
    .await
    .map_err(db(what.to_owned()))?
    {
        let asset = address(
            &r.try_get::<Vec<u8>, _>("asset").map_err(db("read asset"))?,
            "asset",
        )?;
        prices.insert(asset, price(&r, asset)?);
    }
    Ok(assets.iter().map(|a| prices.get(a).copied()).collect())
}
