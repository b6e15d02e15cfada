//! Rebasing assets' indexes (table `indexes`, migration 0013): written with their blocks
//! in the changeset's transaction, reverted and finalized like prices, read for a
//! transition's base state.

use sqlx::{Postgres, Row, Transaction};

use super::PostgresStore;
use super::codec::{Numeric, bigint, db};
use super::deadline::FetchBounded;
use super::read::numeric;
use crate::error::StoreError;
use crate::model::{AssetId, AssetIndex, BalanceChange, BlockHeader, BlockNumber, Changeset};

/// Inserts the pending index rows of the changeset's blocks.
pub(super) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<(), StoreError> {
    let (mut asset, mut num, mut den, mut rebased, mut block) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for b in &changes.blocks {
        let n = bigint(b.block.header.number, "block_number")?;
        for u in &b.indexes {
            asset.push(u.asset.to_vec());
            num.push(Numeric(u.index.num));
            den.push(Numeric(u.index.den));
            rebased.push(u.rebased);
            block.push(n);
        }
    }
    if asset.is_empty() {
        return Ok(());
    }
    rebases(tx, changes).await?;
    sqlx::query(
        "INSERT INTO indexes (asset, num, den, rebased, block_number, block_status)
         SELECT a, x, y, r, n, 0
         FROM UNNEST($1::bytea[], $2::numeric[], $3::numeric[], $4::bool[], $5::bigint[]) AS t(a, x, y, r, n)",
    )
    .bind(&asset)
    .bind(&num)
    .bind(&den)
    .bind(&rebased)
    .bind(&block)
    .execute(&mut **tx)
    .await
    .map_err(db("insert pending indexes"))?;
    Ok(())
}

/// Inserts the rebases the engine applied (those of assets a block rebased) into
/// `rebase_log` (migration 0016), at their logs: what a past block's fold of a rebasing
/// asset converts its rows with. A block that comes back keeps its rows.
async fn rebases(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<(), StoreError> {
    let (mut hash, mut block, mut log, mut part, mut asset, mut num, mut den) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for b in &changes.blocks {
        let n = bigint(b.block.header.number, "block_number")?;
        for e in &b.block.events {
            let BalanceChange::Rebase { index } = e.change else {
                continue;
            };
            if !b.indexes.iter().any(|u| u.asset == e.asset && u.rebased) {
                continue;
            }
            hash.push(b.block.header.hash.to_vec());
            block.push(n);
            log.push(bigint(e.log.log_index, "log_index")?);
            part.push(i16::try_from(e.part).map_err(|_| StoreError::OutOfRange {
                backend: super::codec::BACKEND,
                column: "part",
                value: e.part.to_string(),
            })?);
            asset.push(e.asset.to_vec());
            num.push(Numeric(index.num));
            den.push(Numeric(index.den));
        }
    }
    if hash.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rebase_log (block_hash, block_number, log_index, part, asset, num, den)
         SELECT * FROM UNNEST($1::bytea[], $2::bigint[], $3::bigint[], $4::smallint[], $5::bytea[],
                              $6::numeric[], $7::numeric[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&hash)
    .bind(&block)
    .bind(&log)
    .bind(&part)
    .bind(&asset)
    .bind(&num)
    .bind(&den)
    .execute(&mut **tx)
    .await
    .map_err(db("insert the rebase history"))?;
    Ok(())
}

/// Drops the pending index rows at or above `from`.
pub(super) async fn revert(
    tx: &mut Transaction<'_, Postgres>,
    from: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM indexes WHERE block_status = 0 AND block_number >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert pending indexes from #{from}")))?;
    Ok(())
}

/// Promotes each asset's latest pending row at or below `tip` to confirmed.
pub(super) async fn finalize(
    tx: &mut Transaction<'_, Postgres>,
    tip: &BlockHeader,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH promoted AS (
            DELETE FROM indexes WHERE block_status = 0 AND block_number <= $1
            RETURNING chain, asset, num, den, rebased, block_number
         ), latest AS (
            SELECT DISTINCT ON (chain, asset) * FROM promoted ORDER BY chain, asset, block_number DESC
         )
         INSERT INTO indexes (chain, asset, num, den, rebased, block_number, block_status)
         SELECT chain, asset, num, den, rebased, block_number, 1 FROM latest
         ON CONFLICT (chain, asset) WHERE block_status = 1
         DO UPDATE SET num = EXCLUDED.num, den = EXCLUDED.den, rebased = EXCLUDED.rebased,
                       block_number = EXCLUDED.block_number",
    )
    .bind(bigint(tip.number, "block_number")?)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("finalize indexes up to {}", tip.id())))?;
    Ok(())
}

impl PostgresStore {
    /// See [`StoreWriter::indexes_at`](crate::traits::StoreWriter::indexes_at): per asset,
    /// the latest pending row at or below `at`, else the confirmed row; one round trip.
    pub(super) async fn read_indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u8>> = assets.iter().map(|a| a.to_vec()).collect();
        let rows = sqlx::query(
            "SELECT i.num, i.den FROM UNNEST($1::bytea[]) WITH ORDINALITY AS k(a, o)
             LEFT JOIN LATERAL (SELECT num, den FROM indexes
                 WHERE chain = 1 AND asset = k.a
                   AND (block_status = 1 OR (block_status = 0 AND block_number <= $2))
                 ORDER BY block_status ASC, block_number DESC LIMIT 1) i ON TRUE
             ORDER BY k.o",
        )
        .bind(&ids)
        .bind(bigint(at, "block_number")?)
        .fetch_bounded(self, format!("read {} indexes at #{at}", assets.len()))
        .await?;
        rows.iter()
            .map(|r| {
                let raw = r.try_get_raw(0).map_err(db("read index"))?;
                if sqlx::ValueRef::is_null(&raw) {
                    return Ok(None);
                }
                Ok(Some(AssetIndex {
                    num: numeric(r, 0, "num")?,
                    den: numeric(r, 1, "den")?,
                }))
            })
            .collect()
    }
}
