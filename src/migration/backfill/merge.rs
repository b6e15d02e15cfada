//! The merge phase of a [`Backfill`]: the fold merged into `user_current_balances` in
//! keyset-ordered chunks, each under the store's writer lock.

use sqlx::Row;

use super::{Backfill, BackfillProgress};
use crate::migration::state::{MigrationState, Phase};
use crate::migration::{MigrationError, db};
use crate::store::take_writer_lock;

impl Backfill {
    /// Merges the fold into `user_current_balances` in keyset-ordered chunks, each under
    /// the writer lock.
    pub(super) async fn merge(
        &self,
        h: i64,
        state: &mut MigrationState,
        progress: &mut impl FnMut(&BackfillProgress),
    ) -> Result<(), MigrationError> {
        let limit = i64::try_from(self.config.merge_keys.max(1)).unwrap_or(i64::MAX);
        loop {
            let mut tx = self.pool.begin().await.map_err(db("begin a merge chunk"))?;
            take_writer_lock(&mut tx, &self.pool, "a merge chunk").await?;
            // Locked, like the folding cursor: concurrent or zombie merges serialize here.
            let cursor = sqlx::query(
                "SELECT merge_user, merge_asset, phase FROM migration_state FOR UPDATE",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(db("read the merge cursor"))?;
            let (cu, ca): (Option<Vec<u8>>, Option<Vec<u8>>) = (
                cursor.try_get(0).map_err(db("read merge_user"))?,
                cursor.try_get(1).map_err(db("read merge_asset"))?,
            );
            if cursor.try_get::<i16, _>(2).map_err(db("read phase"))? == Phase::Done.code() {
                tx.commit().await.map_err(db("end a merge chunk"))?;
                state.phase = Phase::Done;
                return Ok(());
            }
            let row = sqlx::query(
                "WITH chunk AS (
                    SELECT user_address, asset, balance FROM migration_backfill
                    WHERE $1::bytea IS NULL OR (user_address, asset) > ($1::bytea, $2::bytea)
                    ORDER BY user_address, asset LIMIT $3
                 ), ins AS (
                    INSERT INTO user_confirmed_balances (user_address, asset, balance, block_number, block_status)
                    SELECT user_address, asset, balance::numeric(78,0), $4, 1 FROM chunk
                    WHERE balance > 0 ORDER BY user_address, asset
                    ON CONFLICT (user_address, asset) DO NOTHING
                    RETURNING 1
                 ), last AS (
                    SELECT user_address, asset FROM chunk ORDER BY user_address DESC, asset DESC LIMIT 1
                 )
                 SELECT (SELECT count(*) FROM chunk) AS keys, (SELECT count(*) FROM ins) AS inserted,
                        (SELECT user_address FROM last) AS lu, (SELECT asset FROM last) AS la",
            )
            .bind(cu)
            .bind(ca)
            .bind(limit)
            .bind(h)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("merge a chunk into user_current_balances"))?;
            let keys: i64 = row.try_get("keys").map_err(db("read merged keys"))?;
            let (lu, la): (Option<Vec<u8>>, Option<Vec<u8>>) = (
                row.try_get("lu").map_err(db("read merge cursor"))?,
                row.try_get("la").map_err(db("read merge cursor"))?,
            );
            let done = keys < limit;
            let merged: i64 = sqlx::query_scalar(
                "UPDATE migration_state SET merge_user = COALESCE($1, merge_user),
                 merge_asset = COALESCE($2, merge_asset), keys_merged = keys_merged + $3,
                 phase = CASE WHEN $4 THEN 2 ELSE 1 END,
                 finished_at = CASE WHEN $4 THEN now() END
                 RETURNING keys_merged",
            )
            .bind(lu)
            .bind(la)
            .bind(keys)
            .bind(done)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("advance the merge cursor"))?;
            if done {
                // The base of past blocks above the high-water (migration 0012).
                sqlx::query(
                    "INSERT INTO history_base (user_address, asset, balance)
                     SELECT user_address, asset, balance::numeric(78,0) FROM migration_backfill WHERE balance >= 0
                     ON CONFLICT (user_address, asset) DO UPDATE SET balance = EXCLUDED.balance",
                )
                .execute(&mut *tx)
                .await
                .map_err(db("keep the backfilled balances as the history's base"))?;
                sqlx::query("TRUNCATE migration_backfill")
                    .execute(&mut *tx)
                    .await
                    .map_err(db("clear migration_backfill"))?;
            }
            tx.commit().await.map_err(db("commit a merge chunk"))?;
            state.keys_merged = merged as u64;
            if done {
                state.phase = Phase::Done;
            }
            progress(&BackfillProgress::from(&*state));
            if done {
                tracing::info!(keys = state.keys_merged, "backfill merged");
                return Ok(());
            }
        }
    }
}
