//! Vault rates in Postgres: the `rates` table (migration 0011), written, reverted and
//! finalized inside the changeset's transaction like `oracle_prices`, and read back for
//! [`RateFeed`].

use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};

use super::PostgresStore;
use super::codec::{Numeric, address, bigint, db, number, u256};
use super::deadline::FetchBounded;
use crate::error::StoreError;
use crate::model::{AssetId, BlockHeader, Changeset, RateUpdate, RateView};
use crate::traits::RateFeed;

/// The store's chain slot (one chain per store until chains are keyed, design §2).
const CHAIN: i16 = 1;

/// Inserts the new blocks' accepted rates as pending rows (`finalize` promotes those of
/// blocks the same changeset finalizes).
pub(super) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<(), StoreError> {
    let (mut asset, mut rate, mut block, mut hash) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for b in &changes.blocks {
        for r in &b.rates {
            asset.push(r.asset.to_vec());
            rate.push(Numeric(r.rate));
            block.push(bigint(r.block, "block_number")?);
            hash.push(b.block.header.hash.to_vec());
        }
    }
    if asset.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rates (chain, asset, rate, block_number, block_status)
         SELECT $1, a, r, n, 0 FROM UNNEST($2::bytea[], $3::numeric[], $4::bigint[]) AS x(a, r, n)",
    )
    .bind(CHAIN)
    .bind(&asset)
    .bind(&rate)
    .bind(&block)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("insert {} pending rates", asset.len())))?;
    // The rate history (migration 0016): a block that comes back keeps its rows.
    sqlx::query(
        "INSERT INTO rate_log (block_hash, block_number, asset, rate)
         SELECT h, n, a, r FROM UNNEST($1::bytea[], $2::bytea[], $3::numeric[], $4::bigint[]) AS x(h, a, r, n)
         ON CONFLICT DO NOTHING",
    )
    .bind(&hash)
    .bind(&asset)
    .bind(&rate)
    .bind(&block)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("insert the history of {} rates", asset.len())))?;
    Ok(())
}

/// Drops the pending rates of the blocks from `from` up (the reverted blocks).
pub(super) async fn revert(
    tx: &mut Transaction<'_, Postgres>,
    from: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rates WHERE chain = $1 AND block_status = 0 AND block_number >= $2")
        .bind(CHAIN)
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert pending rates from #{from}")))?;
    Ok(())
}

/// Promotes each asset's latest pending rate at or below the tip to confirmed and drops
/// the pending rows at or below it.
pub(super) async fn finalize(
    tx: &mut Transaction<'_, Postgres>,
    tip: &BlockHeader,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH promoted AS (
            DELETE FROM rates WHERE chain = $1 AND block_status = 0 AND block_number <= $2
            RETURNING asset, rate, block_number
         ), latest AS (
            SELECT DISTINCT ON (asset) * FROM promoted ORDER BY asset, block_number DESC
         )
         INSERT INTO rates (chain, asset, rate, block_number, block_status)
         SELECT $1, asset, rate, block_number, 1 FROM latest
         ON CONFLICT (chain, asset) WHERE block_status = 1
         DO UPDATE SET rate = EXCLUDED.rate, block_number = EXCLUDED.block_number",
    )
    .bind(CHAIN)
    .bind(bigint(tip.number, "block_number")?)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("finalize rates up to {}", tip.id())))?;
    Ok(())
}

/// Assets with a pending rate in `from..=to` (for [`Touched::price_assets`](crate::traits::Touched)).
pub(super) async fn touched(
    store: &PostgresStore,
    from: i64,
    to: i64,
) -> Result<Vec<AssetId>, StoreError> {
    let assets: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT DISTINCT asset FROM rates WHERE chain = $1 AND block_status = 0 AND block_number BETWEEN $2 AND $3",
    )
    .bind(CHAIN)
    .bind(from)
    .bind(to)
    .fetch_bounded(store, format!("read rates touched in #{from}..=#{to}"))
    .await?;
    assets.iter().map(|a| address(a, "asset")).collect()
}

#[async_trait]
impl RateFeed for PostgresStore {
    /// One round trip for all the assets.
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u8>> = assets.iter().map(|a| a.to_vec()).collect();
        let rows = sqlx::query(
            "SELECT k.i, r.rate::text AS rate, r.block_number, r.block_status
             FROM UNNEST($2::bytea[]) WITH ORDINALITY AS k(a, i)
             JOIN rates r ON r.chain = $1 AND r.asset = k.a
             ORDER BY k.i, r.block_status DESC, r.block_number",
        )
        .bind(CHAIN)
        .bind(&ids)
        .fetch_bounded(self, format!("read rates of {} assets", assets.len()))
        .await?;
        let mut views = vec![RateView::default(); assets.len()];
        for row in &rows {
            let i: i64 = row.try_get("i").map_err(db("read rate ordinal"))?;
            let slot = usize::try_from(i - 1)
                .ok()
                .filter(|i| *i < assets.len())
                .ok_or_else(|| StoreError::OutOfRange {
                    backend: "postgres",
                    column: "ordinality",
                    value: i.to_string(),
                })?;
            let text: String = row.try_get("rate").map_err(db("read rate"))?;
            let rate = RateUpdate {
                asset: assets[slot],
                rate: u256(&text, "rate")?,
                block: number(
                    row.try_get("block_number").map_err(db("read rate block"))?,
                    "block_number",
                )?,
            };
            let status: i16 = row
                .try_get("block_status")
                .map_err(db("read rate status"))?;
            let view = &mut views[slot];
            match status {
                1 => view.confirmed = Some(rate),
                _ => view.pending = Some(rate), // ascending block order: the last one wins
            }
        }
        for view in &mut views {
            view.pending = view.pending.or(view.confirmed);
        }
        Ok(views)
    }
}
