//! The read path and the trait implementations. Reads are plain MVCC selects: they take
//! no locks that could block the writer.

use std::ops::RangeInclusive;

use alloy_primitives::{B256, U256};
use async_trait::async_trait;
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{PgConnection, Row};

use super::PostgresStore;
use super::codec::{address, b256, bigint, db, i256, number, numeric_u256, timestamp, u256};
use super::deadline::FetchBounded;
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, BalanceKey, BalanceView, BlockHeader, BlockNumber, BlockRef, Changeset,
    Effect, LogId, Price, PriceView, StateRef, StoreIdentity, UserId, Window,
};
use crate::traits::{
    BalanceReader, LogReader, LogRecord, LogStatus, PriceFeed, StoreWriter, Touched,
};

pub(super) fn header(row: &PgRow) -> Result<BlockHeader, StoreError> {
    Ok(BlockHeader {
        number: number(
            row.try_get("number").map_err(db("read block number"))?,
            "number",
        )?,
        hash: b256(
            &row.try_get::<Vec<u8>, _>("hash")
                .map_err(db("read block hash"))?,
            "hash",
        )?,
        parent_hash: b256(
            &row.try_get::<Vec<u8>, _>("parent_hash")
                .map_err(db("read parent hash"))?,
            "parent_hash",
        )?,
        timestamp: timestamp(row.try_get("timestamp").map_err(db("read timestamp"))?),
    })
}

/// A `NUMERIC` column holding a `U256`, as sent: binary for prepared statements, text
/// otherwise.
pub(super) fn numeric(row: &PgRow, index: usize, column: &'static str) -> Result<U256, StoreError> {
    let raw = row
        .try_get_raw(index)
        .map_err(db(format!("read {column}")))?;
    let read = |e| db(format!("read {column}"))(sqlx::Error::Decode(e));
    match raw.format() {
        PgValueFormat::Binary => numeric_u256(raw.as_bytes().map_err(read)?, column),
        PgValueFormat::Text => u256(raw.as_str().map_err(read)?, column),
    }
}

pub(super) fn price(row: &PgRow, asset: AssetId) -> Result<Price, StoreError> {
    let get_text = |c: &'static str| {
        row.try_get::<String, _>(c)
            .map_err(db(format!("read price {c}")))
    };
    Ok(Price {
        asset,
        answer: i256(&get_text("answer")?, "answer")?,
        decimals: u8::try_from(
            row.try_get::<i16, _>("decimals")
                .map_err(db("read price decimals"))?,
        )
        .map_err(|_| StoreError::OutOfRange {
            backend: "postgres",
            column: "decimals",
            value: "negative".into(),
        })?,
        round_id: u256(&get_text("round_id")?, "round_id")?,
        updated_at: timestamp(row.try_get("updated_at").map_err(db("read updated_at"))?),
        block: number(
            row.try_get("block_number")
                .map_err(db("read price block"))?,
            "block_number",
        )?,
    })
}

/// The finalized block as the CTE `f` (zero or one row), as a literal for `concat!`: a
/// primary-key probe by the checkpoint's hash, whatever the table's statistics say (a
/// join would let the planner hash all of `blocks`).
macro_rules! finalized_cte {
    () => {
        "WITH f AS (SELECT number, hash, parent_hash, timestamp FROM blocks
                    WHERE hash = (SELECT finalized_hash FROM checkpoint)) "
    };
}

/// The price columns, as a literal for `concat!`.
macro_rules! price_columns {
    () => {
        "answer::text AS answer, decimals, round_id::text AS round_id, updated_at, block_number"
    };
}

#[async_trait]
impl StoreWriter for PostgresStore {
    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<crate::model::AssetState>, StoreError> {
        self.read_asset_states_at(assets, at).await
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.claim(identity).await
    }

    async fn release_writer(&self) -> Result<(), StoreError> {
        self.release().await
    }

    async fn resume_requests(&self) -> Result<Vec<crate::model::ResumeRequest>, StoreError> {
        self.read_resumes().await
    }

    async fn remove_resume_request(
        &self,
        request: &crate::model::ResumeRequest,
    ) -> Result<(), StoreError> {
        self.remove_resume(request).await
    }

    /// One statement: the finalized block (by the checkpoint's hash, a primary-key probe)
    /// and the pending blocks above its height, a range scan of `blocks_pending` that
    /// touches the window's entries only. Every block of a catch-up is inserted pending
    /// and updated to confirmed, which leaves a dead `blocks_pending` entry per block
    /// until a vacuum; those all lie at or below the finalized height, outside the range.
    async fn window(&self) -> Result<Window, StoreError> {
        let rows = sqlx::query(concat!(
            finalized_cte!(),
            "SELECT number, hash, parent_hash, timestamp, TRUE AS finalized FROM f
             UNION ALL
             SELECT number, hash, parent_hash, timestamp, FALSE FROM blocks
             WHERE status = 0 AND number > COALESCE((SELECT number FROM f), -1)
             ORDER BY finalized DESC, number"
        ))
        .fetch_bounded(self, "read the unconfirmed window")
        .await?;
        let mut window = Window::default();
        for row in &rows {
            let h = header(row)?;
            if row
                .try_get::<bool, _>("finalized")
                .map_err(db("read window role"))?
            {
                window.finalized = Some(h);
            } else {
                window.unconfirmed.push(h);
            }
        }
        Ok(window)
    }

    /// The highest pending block above the finalized height (one backward probe of
    /// `blocks_pending`), else the finalized block: no read of the rest of the window.
    async fn head(&self) -> Result<Option<BlockHeader>, StoreError> {
        sqlx::query(concat!(
            finalized_cte!(),
            "SELECT * FROM (
                (SELECT number, hash, parent_hash, timestamp FROM blocks
                 WHERE status = 0 AND number > COALESCE((SELECT number FROM f), -1)
                 ORDER BY number DESC LIMIT 1)
                UNION ALL
                SELECT number, hash, parent_hash, timestamp FROM f
             ) w ORDER BY number DESC LIMIT 1"
        ))
        .fetch_bounded(self, "read the head block")
        .await?
        .first()
        .map(header)
        .transpose()
    }

    /// The head (as [`head`](Self::head)) and the finalized height in the same statement.
    async fn head_state(&self) -> Result<Option<(BlockHeader, StateRef)>, StoreError> {
        let what = "read the head block and the finalized height";
        self.bounded(what, async |conn, _| head_state_on(conn, what).await)
            .await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<Vec<u8>> = keys.iter().map(|k| k.user.to_vec()).collect();
        let assets: Vec<Vec<u8>> = keys.iter().map(|k| k.asset.to_vec()).collect();
        // Per key, the latest pending row at or below `at` (one backward probe of the
        // pending partition's primary key), else the confirmed row (one probe of the
        // confirmed partition's, only when there is no such pending row).
        let rows = sqlx::query(
            "SELECT COALESCE(
                (SELECT p.balance FROM user_pending_balances p
                 WHERE p.user_address = k.u AND p.asset = k.a AND p.block_number <= $3
                 ORDER BY p.block_number DESC LIMIT 1),
                (SELECT c.balance FROM user_confirmed_balances c
                 WHERE c.user_address = k.u AND c.asset = k.a),
                0)
             FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY AS k(u, a, i) ORDER BY k.i",
        )
        .bind(&users)
        .bind(&assets)
        .bind(bigint(at, "block_number")?)
        .fetch_bounded(self, format!("read {} balances at #{at}", keys.len()))
        .await?;
        rows.iter().map(|r| numeric(r, 0, "balance")).collect()
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u8>> = assets.iter().map(|a| a.to_vec()).collect();
        // Per asset, the confirmed row or the latest pending row at or below `at`: one
        // indexed probe each, one round trip for all.
        let rows = sqlx::query(concat!(
            "SELECT k.i, p.* FROM UNNEST($1::bytea[]) WITH ORDINALITY AS k(a, i)
             LEFT JOIN LATERAL (SELECT ",
            price_columns!(),
            " FROM oracle_prices
                 WHERE asset = k.a AND (block_status = 1 OR (block_status = 0 AND block_number <= $2))
                 ORDER BY block_status ASC, block_number DESC LIMIT 1) p ON TRUE
             ORDER BY k.i"
        ))
        .bind(&ids)
        .bind(bigint(at, "block_number")?)
        .fetch_bounded(self, format!("read {} prices at #{at}", assets.len()))
        .await?;
        rows.iter()
            .zip(assets)
            .map(|(r, asset)| {
                let priced: Option<i16> = r.try_get("decimals").map_err(db("read price"))?;
                priced.map(|_| price(r, *asset)).transpose()
            })
            .collect()
    }

    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        self.read_indexes_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.apply_changeset(changes).await
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        let mut touched = Touched::default();
        let (from, to) = (*blocks.start(), *blocks.end());
        if from > to {
            return Ok(touched);
        }
        let (f, t) = (
            bigint(from, "block_number")?,
            bigint(to.min(i64::MAX as u64), "block_number")?,
        );
        let users: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT DISTINCT user_address FROM user_current_balances WHERE block_status = 0 AND block_number BETWEEN $1 AND $2",
        )
        .bind(f)
        .bind(t)
        .fetch_bounded(self, format!("read users touched in #{from}..=#{to}"))
        .await?;
        for u in users {
            touched.users.insert(address(&u, "user_address")?);
        }
        let assets: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT DISTINCT asset FROM oracle_prices WHERE block_status = 0 AND block_number BETWEEN $1 AND $2",
        )
        .bind(f)
        .bind(t)
        .fetch_bounded(self, format!("read prices touched in #{from}..=#{to}"))
        .await?;
        for a in assets {
            touched.price_assets.insert(address(&a, "asset")?);
        }
        // A rebase changes every holder's balance, as a price changes their value.
        let rebased: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT DISTINCT asset FROM indexes WHERE block_status = 0 AND rebased AND block_number BETWEEN $1 AND $2",
        )
        .bind(f)
        .bind(t)
        .fetch_bounded(self, format!("read rebases in #{from}..=#{to}"))
        .await?;
        for a in rebased {
            touched.price_assets.insert(address(&a, "asset")?);
        }
        touched
            .price_assets
            .extend(super::rates::touched(self, f, t).await?);
        Ok(touched)
    }
}

#[async_trait]
impl BalanceReader for PostgresStore {
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        let views = self.views_many(&[key.user]).await?;
        Ok(views
            .into_iter()
            .flatten()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, v)| v)
            .unwrap_or_default())
    }

    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        Ok(self.views_many(&[user]).await?.pop().unwrap_or_default())
    }

    /// One query for all the users (`user_address = ANY($1)` on the primary key).
    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        self.views_many(users).await
    }

    /// This store: the collateral readers read it in one statement.
    fn as_postgres(&self) -> Option<&PostgresStore> {
        Some(self)
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        let users: Vec<Vec<u8>> =
            // Confirmed holders by index (`ucb_confirmed_holders`), plus those with pending
            // rows only: the pending partition holds just the unconfirmed window.
            sqlx::query_scalar(
                "SELECT user_address FROM user_confirmed_balances WHERE asset = $1
                 UNION
                 SELECT user_address FROM user_pending_balances WHERE asset = $1
                 ORDER BY user_address",
            )
                .bind(asset.as_slice())
                .fetch_bounded(self, format!("read holders of {asset}"))
                .await?;
        users.iter().map(|u| address(u, "user_address")).collect()
    }
}

#[async_trait]
impl LogReader for PostgresStore {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        let (from, to) = (*blocks.start(), *blocks.end());
        if from > to {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT u.block_number, u.block_hash, u.tx_hash, u.log_index, u.ordinal, u.user_address, u.asset, u.kind,
                    u.amount::text AS amount, b.status
             FROM balance_updates u JOIN blocks b ON b.hash = u.block_hash
             WHERE u.block_number BETWEEN $1 AND $2
             ORDER BY u.block_number, NOT (u.log_index >= 4611686018427387904 AND u.log_index < 6917529027641081856), u.log_index, u.ordinal, b.status DESC",
        )
        .bind(bigint(from, "block_number")?)
        .bind(bigint(to.min(i64::MAX as u64), "block_number")?)
        .fetch_bounded(self, format!("read log #{from}..=#{to}"))
        .await?;
        rows.iter().map(log_record).collect()
    }

    async fn user_log(
        &self,
        key: BalanceKey,
        side: crate::traits::LogSide,
        limit: usize,
    ) -> Result<crate::traits::UserLog, crate::traits::HistoryError> {
        self.user_log_rows(key, side, limit).await
    }

    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<crate::traits::HistoryAt, crate::traits::HistoryError> {
        self.history_state(user, block).await
    }

    async fn history_prices(
        &self,
        assets: &[AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<crate::model::Price>>, crate::traits::HistoryError> {
        self.history_prices(assets, block).await
    }
}

pub(super) fn log_record(r: &PgRow) -> Result<LogRecord, StoreError> {
    let bytes = |c: &'static str| {
        r.try_get::<Vec<u8>, _>(c)
            .map_err(db(format!("read log {c}")))
    };
    let amount = u256(
        &r.try_get::<String, _>("amount")
            .map_err(db("read log amount"))?,
        "amount",
    )?;
    let effect = match r.try_get::<i16, _>("kind").map_err(db("read log kind"))? {
        0 => Effect::Credit(amount),
        1 => Effect::Debit(amount),
        3 => Effect::Reconcile(amount),
        _ => Effect::Set(amount),
    };
    let status = match r
        .try_get::<i16, _>("status")
        .map_err(db("read log status"))?
    {
        0 => LogStatus::Pending,
        1 => LogStatus::Confirmed,
        _ => LogStatus::Reverted,
    };
    Ok(LogRecord {
        block: BlockRef {
            number: number(
                r.try_get("block_number").map_err(db("read log block"))?,
                "block_number",
            )?,
            hash: b256(&bytes("block_hash")?, "block_hash")?,
        },
        log: LogId {
            tx_hash: B256::try_from(bytes("tx_hash")?.as_slice()).map_err(|_| {
                StoreError::OutOfRange {
                    backend: "postgres",
                    column: "tx_hash",
                    value: "length".into(),
                }
            })?,
            log_index: number(
                r.try_get("log_index").map_err(db("read log index"))?,
                "log_index",
            )?,
        },
        ordinal: u16::try_from(
            r.try_get::<i16, _>("ordinal")
                .map_err(db("read log ordinal"))?,
        )
        .unwrap_or(u16::MAX),
        key: BalanceKey {
            user: address(&bytes("user_address")?, "user_address")?,
            asset: address(&bytes("asset")?, "asset")?,
        },
        effect,
        status,
    })
}

#[async_trait]
impl PriceFeed for PostgresStore {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        Ok(self.price_views(&[asset]).await?.pop().unwrap_or_default())
    }

    /// One round trip for all the assets.
    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        self.price_views(assets).await
    }
}

impl PostgresStore {
    /// Confirmed and pending price of each asset, in the order asked ([`price_views_on`] on
    /// a pooled connection, under the operation deadline).
    async fn price_views(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("read prices of {} assets", assets.len());
        self.bounded(&what, async |conn, _| {
            price_views_on(conn, assets, &what).await
        })
        .await
    }
}

/// The head block and the store's state (head and finalized height) read on `conn` in one
/// statement (a pooled connection or a replica's snapshot transaction); `None` for a store
/// without a block. An error names `what`.
pub(super) async fn head_state_on(
    conn: &mut PgConnection,
    what: &str,
) -> Result<Option<(BlockHeader, StateRef)>, StoreError> {
    let rows = sqlx::query(concat!(
        finalized_cte!(),
        "SELECT w.*, (SELECT number FROM f) AS finalized FROM (
            (SELECT number, hash, parent_hash, timestamp FROM blocks
             WHERE status = 0 AND number > COALESCE((SELECT number FROM f), -1)
             ORDER BY number DESC LIMIT 1)
            UNION ALL
            SELECT number, hash, parent_hash, timestamp FROM f
         ) w ORDER BY number DESC LIMIT 1"
    ))
    .fetch_all(conn)
    .await
    .map_err(db(what))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let head = header(row)?;
    let finalized = row
        .try_get::<Option<i64>, _>("finalized")
        .map_err(db("read the finalized height"))?
        .map(|n| number(n, "finalized"))
        .transpose()?;
    Ok(Some((
        head,
        StateRef {
            head: head.id(),
            finalized,
        },
    )))
}

/// Confirmed and pending price of each asset, in the order asked, read on `conn` in one
/// statement. An error names `what`.
pub(super) async fn price_views_on(
    conn: &mut PgConnection,
    assets: &[AssetId],
    what: &str,
) -> Result<Vec<PriceView>, StoreError> {
    if assets.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Vec<u8>> = assets.iter().map(|a| a.to_vec()).collect();
    let rows = sqlx::query(concat!(
        "SELECT k.i, ",
        price_columns!(),
        ", block_status FROM UNNEST($1::bytea[]) WITH ORDINALITY AS k(a, i)
         JOIN oracle_prices ON asset = k.a
         ORDER BY k.i, block_status DESC, block_number"
    ))
    .bind(&ids)
    .fetch_all(conn)
    .await
    .map_err(db(what))?;
    let mut views = vec![PriceView::default(); assets.len()];
    for r in &rows {
        let i: i64 = r.try_get("i").map_err(db("read price ordinal"))?;
        let slot = usize::try_from(i - 1)
            .ok()
            .filter(|i| *i < assets.len())
            .ok_or_else(|| StoreError::OutOfRange {
                backend: "postgres",
                column: "ordinality",
                value: i.to_string(),
            })?;
        let p = price(r, assets[slot])?;
        let view = &mut views[slot];
        match r
            .try_get::<i16, _>("block_status")
            .map_err(db("read price status"))?
        {
            1 => view.confirmed = Some(p),
            _ => view.pending = Some(p), // ascending block order: the last one wins
        }
    }
    for view in &mut views {
        view.pending = view.pending.or(view.confirmed);
    }
    Ok(views)
}
