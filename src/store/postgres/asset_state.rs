//! The assets' quarantines in Postgres (`asset_state`, migration 0009): written, reverted
//! and finalized inside the changeset's transaction like `oracle_prices`, read back for a
//! transition's base state and for readers.

use alloy_primitives::U256;
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::PostgresStore;
use super::codec::{BACKEND, address, b256, bigint, db, number, u256};
use super::deadline::FetchBounded;
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetState, AssetStateView, BlockNumber, BlockRef, Changeset, FaultReason, LogId,
    Quarantine,
};
use crate::traits::AssetStateReader;

/// The columns of a state, as a literal for `concat!`.
macro_rules! state_columns {
    () => {
        "asset, state, since_number, since_hash, tx_hash, log_index, reason, user_address,
         balance::text AS balance, amount::text AS amount, detail"
    };
}

/// Inserts the pending state rows of the changeset's new blocks.
pub(super) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<(), StoreError> {
    for block in &changes.blocks {
        let n = bigint(block.block.header.number, "block_number")?;
        let hash = block.block.header.hash;
        for (asset, state) in &block.asset_states {
            insert(tx, *asset, n, hash.as_slice(), state).await?;
        }
    }
    Ok(())
}

/// Inserts one pending state row, and its row in the state history (`asset_state_log`,
/// migration 0016; a block that comes back keeps its row).
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    asset: AssetId,
    n: i64,
    hash: &[u8],
    state: &AssetState,
) -> Result<(), StoreError> {
    let q = state.quarantine();
    let (user, balance, amount, detail) = match q.map(|q| &q.reason) {
        Some(
            FaultReason::Underflow {
                user,
                balance,
                amount,
            }
            | FaultReason::Overflow {
                user,
                balance,
                amount,
            },
        ) => (
            Some(user.to_vec()),
            Some(balance.to_string()),
            Some(amount.to_string()),
            None,
        ),
        Some(FaultReason::Undecodable { detail }) => (None, None, None, Some(detail.clone())),
        None => (None, None, None, None),
    };
    let log = "INSERT INTO asset_state_log (asset, block_number, state, since_number,
             since_hash, tx_hash, log_index, reason, user_address, balance, amount, detail, block_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11::numeric, $12, $13)
         ON CONFLICT DO NOTHING";
    let current = "INSERT INTO asset_state (asset, block_number, block_status, state, since_number,
             since_hash, tx_hash, log_index, reason, user_address, balance, amount, detail)
         VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11::numeric, $12)";
    for (sql, history) in [(current, false), (log, true)] {
        let q_ = sqlx::query(sql)
            .bind(asset.to_vec())
            .bind(n)
            .bind(i16::from(q.is_some()))
            .bind(
                q.map(|q| bigint(q.block.number, "since_number"))
                    .transpose()?,
            )
            .bind(q.map(|q| q.block.hash.to_vec()))
            .bind(q.map(|q| q.log.tx_hash.to_vec()))
            .bind(
                q.map(|q| bigint(q.log.log_index, "log_index"))
                    .transpose()?,
            )
            .bind(q.map(|q| q.reason.code()))
            .bind(user.clone())
            .bind(balance.clone())
            .bind(amount.clone())
            .bind(detail.clone());
        let q_ = if history { q_.bind(hash) } else { q_ };
        q_.execute(&mut **tx)
            .await
            .map_err(db(format!("insert the state of asset {asset} at #{n}")))?;
    }
    Ok(())
}

/// Drops the pending state rows of the blocks from `from` up.
pub(super) async fn revert(
    tx: &mut Transaction<'_, Postgres>,
    from: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM asset_state WHERE block_status = 0 AND block_number >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert pending asset states from #{from}")))?;
    Ok(())
}

/// Promotes the latest pending state at or below `tip` of each asset to confirmed (an
/// active one deletes the confirmed row: no row means active).
pub(super) async fn finalize(
    tx: &mut Transaction<'_, Postgres>,
    tip: i64,
) -> Result<(), StoreError> {
    let what = || db(format!("finalize asset states up to #{tip}"));
    sqlx::query(
        "DELETE FROM asset_state c WHERE c.block_status = 1 AND EXISTS (
            SELECT 1 FROM asset_state p
            WHERE p.asset = c.asset AND p.block_status = 0 AND p.block_number <= $1)",
    )
    .bind(tip)
    .execute(&mut **tx)
    .await
    .map_err(what())?;
    sqlx::query(
        "WITH promoted AS (
            DELETE FROM asset_state WHERE block_status = 0 AND block_number <= $1
            RETURNING *
         ), latest AS (
            SELECT DISTINCT ON (asset) * FROM promoted ORDER BY asset, block_number DESC
         )
         INSERT INTO asset_state (asset, block_number, block_status, state, since_number,
             since_hash, tx_hash, log_index, reason, user_address, balance, amount, detail)
         SELECT asset, block_number, 1, state, since_number, since_hash, tx_hash, log_index,
             reason, user_address, balance, amount, detail
         FROM latest WHERE state = 1",
    )
    .bind(tip)
    .execute(&mut **tx)
    .await
    .map_err(what())?;
    Ok(())
}

pub(super) fn state(row: &PgRow) -> Result<(AssetId, AssetState), StoreError> {
    let get = |c: &'static str| db(format!("read asset state {c}"));
    let asset = address(
        &row.try_get::<Vec<u8>, _>("asset").map_err(get("asset"))?,
        "asset",
    )?;
    if row.try_get::<i16, _>("state").map_err(get("state"))? == 0 {
        return Ok((asset, AssetState::Active));
    }
    let text = |c: &'static str| -> Result<U256, StoreError> {
        let v: Option<String> = row.try_get(c).map_err(get(c))?;
        u256(v.as_deref().unwrap_or("0"), c)
    };
    let bytes = |c: &'static str| -> Result<Vec<u8>, StoreError> {
        let v: Option<Vec<u8>> = row.try_get(c).map_err(get(c))?;
        Ok(v.unwrap_or_default())
    };
    let reason_code: Option<i16> = row.try_get("reason").map_err(get("reason"))?;
    let reason = match reason_code {
        Some(1) | Some(2) => {
            let (user, balance, amount) = (
                address(&bytes("user_address")?, "user_address")?,
                text("balance")?,
                text("amount")?,
            );
            if reason_code == Some(1) {
                FaultReason::Underflow {
                    user,
                    balance,
                    amount,
                }
            } else {
                FaultReason::Overflow {
                    user,
                    balance,
                    amount,
                }
            }
        }
        Some(3) => FaultReason::Undecodable {
            detail: row
                .try_get::<Option<String>, _>("detail")
                .map_err(get("detail"))?
                .unwrap_or_default(),
        },
        other => {
            return Err(StoreError::OutOfRange {
                backend: BACKEND,
                column: "reason",
                value: format!("{other:?}"),
            });
        }
    };
    let since: Option<i64> = row.try_get("since_number").map_err(get("since_number"))?;
    let index: Option<i64> = row.try_get("log_index").map_err(get("log_index"))?;
    Ok((
        asset,
        AssetState::Quarantined(Quarantine {
            asset,
            block: BlockRef {
                number: number(since.unwrap_or_default(), "since_number")?,
                hash: b256(&bytes("since_hash")?, "since_hash")?,
            },
            log: LogId {
                tx_hash: b256(&bytes("tx_hash")?, "tx_hash")?,
                log_index: number(index.unwrap_or_default(), "log_index")?,
            },
            reason,
        }),
    ))
}

impl PostgresStore {
    /// See [`StoreWriter::asset_states_at`](crate::StoreWriter::asset_states_at): the
    /// latest row at or below `at` of each asset (a pending one before the confirmed one).
    pub(super) async fn read_asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<AssetState>, StoreError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u8>> = assets.iter().map(|a| a.to_vec()).collect();
        let rows = sqlx::query(concat!(
            "SELECT DISTINCT ON (asset) ",
            state_columns!(),
            " FROM asset_state
             WHERE asset = ANY($1) AND (block_status = 1 OR block_number <= $2)
             ORDER BY asset, block_status ASC, block_number DESC"
        ))
        .bind(&ids)
        .bind(bigint(at, "block_number")?)
        .fetch_bounded(self, format!("read {} asset states at #{at}", assets.len()))
        .await?;
        let mut found = std::collections::HashMap::new();
        for row in &rows {
            let (asset, s) = state(row)?;
            found.insert(asset, s);
        }
        Ok(assets
            .iter()
            .map(|a| found.remove(a).unwrap_or_default())
            .collect())
    }
}

#[async_trait]
impl AssetStateReader for PostgresStore {
    /// One statement: every confirmed row and the latest pending row of each asset.
    async fn asset_states(&self) -> Result<Vec<AssetStateView>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT * FROM (SELECT DISTINCT ON (asset, block_status) block_status, ",
            state_columns!(),
            " FROM asset_state ORDER BY asset, block_status, block_number DESC) s
             ORDER BY asset, block_status DESC"
        ))
        .fetch_bounded(self, "read the asset states")
        .await?;
        let mut views: Vec<AssetStateView> = Vec::new();
        for row in &rows {
            let confirmed = row
                .try_get::<i16, _>("block_status")
                .map_err(db("read asset state status"))?
                == 1;
            let (asset, s) = state(row)?;
            if views.last().is_none_or(|v| v.asset != asset) {
                views.push(AssetStateView {
                    asset,
                    ..AssetStateView::default()
                });
            }
            let view = views.last_mut().expect("pushed above");
            if confirmed {
                view.confirmed = s.clone();
                view.pending = s;
            } else {
                view.pending = s;
            }
        }
        views.retain(|v| v.confirmed.is_quarantined() || v.pending.is_quarantined());
        Ok(views)
    }
}
