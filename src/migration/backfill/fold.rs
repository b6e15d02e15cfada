//! The fold phase of a [`Backfill`]: the history at or below the high-water mark folded
//! into `migration_backfill` chunk by chunk, each chunk committed with its cursor.

use alloy_primitives::Address;
use sqlx::{AssertSqlSafe, Row};

use super::{Backfill, BackfillProgress};
use crate::migration::history::fold_sql;
use crate::migration::state::{Phase, load_state};
use crate::migration::{MigrationError, U256_MAX_SQL, db};

impl Backfill {
    /// Folds and merges until done, calling `progress` after every committed chunk.
    /// Returns the final progress. Requires [`start`](Self::start).
    pub async fn run(
        &self,
        mut progress: impl FnMut(&BackfillProgress),
    ) -> Result<BackfillProgress, MigrationError> {
        let mut state = load_state(&self.pool)
            .await?
            .ok_or(MigrationError::NotStarted)?;
        if state.source != self.history.describe() {
            return Err(MigrationError::OtherHistory {
                running: state.source,
                asked: self.history.describe(),
            });
        }
        progress(&BackfillProgress::from(&state));
        let h = i64::try_from(state.high_water).unwrap_or(i64::MAX);
        let fold = fold_sql(&self.history, "n > $1 AND n <= $2", 3);
        let status = self.history.status_value();
        let chunk_sql = format!(
            "WITH f AS ({fold}),
             ins AS (INSERT INTO migration_backfill (user_address, asset, balance, reset)
                     SELECT u, a, net, reset FROM f
                     ON CONFLICT (user_address, asset) DO UPDATE SET
                       balance = CASE WHEN EXCLUDED.reset THEN EXCLUDED.balance
                                      ELSE migration_backfill.balance + EXCLUDED.balance END)
             SELECT COALESCE(sum(rows), 0)::bigint AS rows,
                    COALESCE(sum(bad), 0)::bigint AS bad FROM f"
        );
        let next_sql = format!(
            "SELECT min(n) FROM {} h WHERE n > $1 AND n <= $2",
            self.history.relation(3)
        );
        // Blocks per chunk, adapted to the rows they hold.
        let mut span: i64 = match (state.rows_total, state.high_water) {
            (0, _) => i64::MAX / 4,
            (rows, hw) => {
                let per_block = rows as f64 / (hw as f64 + 1.0);
                ((self.config.chunk_rows as f64 / per_block.max(1e-9)) as i64).max(1)
            }
        };
        let mut cursor = state.folded_through.map_or(-1, |c| c as i64);
        while state.phase == Phase::Folding && cursor < h {
            let mut tx = self.pool.begin().await.map_err(db("begin a chunk"))?;
            // The state row is locked first: another runner, or the transaction of a killed
            // one whose COMMIT is still in flight, finishes before this chunk reads the
            // cursor, so no chunk is folded twice.
            let row = sqlx::query(
                "SELECT cursor_block, rows_folded, phase FROM migration_state FOR UPDATE",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(db("lock the migration state"))?;
            let stored: i64 = row.try_get("cursor_block").map_err(db("read cursor"))?;
            let phase: i16 = row.try_get("phase").map_err(db("read phase"))?;
            if phase != Phase::Folding.code() {
                tx.commit().await.map_err(db("end a chunk"))?;
                state = load_state(&self.pool)
                    .await?
                    .ok_or(MigrationError::NotStarted)?;
                break;
            }
            cursor = cursor.max(stored);
            let hi = cursor.saturating_add(span).min(h);
            let mut q = sqlx::query(AssertSqlSafe(chunk_sql.clone()))
                .bind(cursor)
                .bind(hi);
            if let Some(status) = &status {
                q = q.bind(status.clone());
            }
            let row = q
                .fetch_one(&mut *tx)
                .await
                .map_err(db(format!("fold blocks {}..={hi}", cursor + 1)))?;
            let rows: i64 = row.try_get("rows").map_err(db("read chunk rows"))?;
            let bad: i64 = row.try_get("bad").map_err(db("read chunk check"))?;
            if bad > 0 {
                return Err(MigrationError::MalformedHistory {
                    from: (cursor + 1) as u64,
                    to: hi as u64,
                    count: bad,
                });
            }
            let folded: i64 = sqlx::query_scalar(
                "UPDATE migration_state SET cursor_block = $1, rows_folded = rows_folded + $2,
                 phase = CASE WHEN $1 >= high_water THEN 1 ELSE 0 END
                 RETURNING rows_folded",
            )
            .bind(hi)
            .bind(rows)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("advance the backfill cursor"))?;
            tx.commit().await.map_err(db("commit a chunk"))?;
            cursor = hi;
            state.folded_through = Some(hi as u64);
            state.rows_folded = folded as u64;
            if hi >= h {
                state.phase = Phase::Merging;
            }
            progress(&BackfillProgress::from(&state));
            if rows == 0 {
                // Jump over an empty stretch of history with one probe of the block index.
                let mut q = sqlx::query_scalar(AssertSqlSafe(next_sql.clone()))
                    .bind(cursor)
                    .bind(h);
                if let Some(status) = &status {
                    q = q.bind(status.clone());
                }
                let next: Option<i64> = q
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("find the next block with history"))?;
                match next {
                    Some(n) => cursor = cursor.max(n - 1),
                    None => cursor = h,
                }
                span = span.saturating_mul(2);
                if cursor >= h && state.phase == Phase::Folding {
                    self.finish_folding(h).await?;
                    state.folded_through = Some(h as u64);
                    state.phase = Phase::Merging;
                }
            } else {
                let target = self.config.chunk_rows as f64;
                let scaled = (span as f64 * target / rows as f64).clamp(1.0, span as f64 * 4.0);
                span = scaled as i64;
            }
        }
        if state.phase == Phase::Merging {
            self.check_fold().await?;
            self.merge(h, &mut state, &mut progress).await?;
        }
        Ok(BackfillProgress::from(&state))
    }

    /// Records that everything up to `h` is folded (after skipping an empty tail).
    async fn finish_folding(&self, h: i64) -> Result<(), MigrationError> {
        sqlx::query("UPDATE migration_state SET cursor_block = $1, phase = 1")
            .bind(h)
            .execute(&self.pool)
            .await
            .map_err(db("finish folding"))?;
        Ok(())
    }

    /// Refuses to merge a fold holding a balance outside `0..2^256`.
    async fn check_fold(&self) -> Result<(), MigrationError> {
        let bad = sqlx::query(AssertSqlSafe(format!(
            "SELECT user_address, asset, balance::text AS balance FROM migration_backfill
             WHERE balance < 0 OR balance > {U256_MAX_SQL} LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("check the folded balances"))?;
        if let Some(r) = bad {
            let addr = |c: &str| -> Result<Address, MigrationError> {
                let b: Vec<u8> = r.try_get(c).map_err(db("read a folded key"))?;
                Ok(Address::try_from(b.as_slice()).unwrap_or_default())
            };
            return Err(MigrationError::InvalidBalance {
                user: addr("user_address")?,
                asset: addr("asset")?,
                balance: r.try_get("balance").map_err(db("read a folded balance"))?,
            });
        }
        Ok(())
    }
}
