//! Finality: promoting the pending rows of finalized blocks to confirmed, one statement per
//! table.

use sqlx::{Postgres, Transaction};

use super::append::Direct;
use super::codec::{bigint, db};
use crate::error::StoreError;
use crate::model::BlockHeader;

/// Promotes the latest pending row at or below the tip to confirmed (replacing the older
/// confirmed row) and drops the pending rows at or below it: only rows of the finalized
/// blocks are read, through `ucb_pending_by_block`. `direct` balances (this changeset's own
/// finalized blocks, newer than any stored row) take part as candidates of the same
/// statement. The confirmed partition indexes neither the balance nor the block
/// (migrations 0005, 0006), so replacing them is a HOT update when the page has room.
pub(super) async fn finalize(
    tx: &mut Transaction<'_, Postgres>,
    tip: &BlockHeader,
    direct: &Direct,
) -> Result<(), StoreError> {
    let h = bigint(tip.number, "block_number")?;
    sqlx::query(
        "WITH promoted AS (
            DELETE FROM user_pending_balances WHERE block_number <= $1
            RETURNING user_address, asset, balance, block_number
         ), latest AS (
            SELECT DISTINCT ON (user_address, asset) user_address, asset, balance, block_number
            FROM (SELECT * FROM promoted
                  UNION ALL
                  SELECT * FROM UNNEST($2::bytea[], $3::bytea[], $4::numeric[], $5::bigint[])) x
            ORDER BY user_address, asset, block_number DESC
         )
         INSERT INTO user_confirmed_balances (user_address, asset, balance, block_number, block_status)
         SELECT user_address, asset, balance, block_number, 1 FROM latest
         ON CONFLICT (user_address, asset)
         DO UPDATE SET balance = EXCLUDED.balance, block_number = EXCLUDED.block_number",
    )
    .bind(h)
    .bind(&direct.user)
    .bind(&direct.asset)
    .bind(&direct.value)
    .bind(&direct.block)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("finalize balances up to {}", tip.id())))?;
    sqlx::query(
        "WITH promoted AS (
            DELETE FROM oracle_prices WHERE block_status = 0 AND block_number <= $1
            RETURNING asset, answer, decimals, round_id, updated_at, block_number
         ), latest AS (
            SELECT DISTINCT ON (asset) * FROM promoted ORDER BY asset, block_number DESC
         )
         INSERT INTO oracle_prices (asset, answer, decimals, round_id, updated_at, block_number, block_status)
         SELECT asset, answer, decimals, round_id, updated_at, block_number, 1 FROM latest
         ON CONFLICT (asset) WHERE block_status = 1
         DO UPDATE SET answer = EXCLUDED.answer, decimals = EXCLUDED.decimals, round_id = EXCLUDED.round_id,
                       updated_at = EXCLUDED.updated_at, block_number = EXCLUDED.block_number",
    )
    .bind(h)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("finalize prices up to {}", tip.id())))?;
    sqlx::query("UPDATE blocks SET status = 1 WHERE status = 0 AND number <= $1")
        .bind(h)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("finalize blocks up to {}", tip.id())))?;
    Ok(())
}
