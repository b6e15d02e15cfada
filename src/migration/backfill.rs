//! The backfill job: folds the history at or below the high-water mark into confirmed
//! current state, resumably, while the live watcher writes.

use alloy_primitives::Address;
use sqlx::{AssertSqlSafe, PgPool, Row};

use super::history::fold_sql;
use super::state::{MigrationState, Phase, load_state};
use super::{History, MigrationError, U256_MAX_SQL, db};
use crate::store::take_writer_lock;

/// Tuning of a [`Backfill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillConfig {
    /// History rows folded per transaction (the block range of a chunk adapts to hit it).
    pub chunk_rows: u64,
    /// Keys merged into `user_current_balances` per transaction (the watcher waits for at
    /// most one such transaction).
    pub merge_keys: u64,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            chunk_rows: 250_000,
            merge_keys: 20_000,
        }
    }
}

/// Where a backfill is, reported after every chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillProgress {
    /// The phase.
    pub phase: Phase,
    /// The high-water mark.
    pub high_water: u64,
    /// Folded through this block.
    pub folded_through: Option<u64>,
    /// History rows folded.
    pub rows_folded: u64,
    /// History rows at or below the high-water mark (counted at start).
    pub rows_total: u64,
    /// Keys merged into `user_current_balances`.
    pub keys_merged: u64,
}

impl From<&MigrationState> for BackfillProgress {
    fn from(s: &MigrationState) -> Self {
        Self {
            phase: s.phase,
            high_water: s.high_water,
            folded_through: s.folded_through,
            rows_folded: s.rows_folded,
            rows_total: s.rows_total,
            keys_merged: s.keys_merged,
        }
    }
}

/// The backfill of one schema's `user_current_balances` from a [`History`].
///
/// [`start`](Self::start) records the high-water mark (once; a second call resumes the same
/// backfill), [`run`](Self::run) folds and merges until done. Killing the process at any
/// point and calling `run` again continues from the last committed chunk: each chunk's fold
/// and its cursor commit together.
#[derive(Clone, Debug)]
pub struct Backfill {
    pool: PgPool,
    history: History,
    config: BackfillConfig,
}

impl Backfill {
    /// A backfill of `history` into the store whose schema `pool` points at (the pool's
    /// `search_path`, as [`crate::store::PostgresStore::connect_in_schema`] sets it).
    pub fn new(pool: PgPool, history: History) -> Self {
        Self {
            pool,
            history,
            config: BackfillConfig::default(),
        }
    }

    /// Replaces the tuning.
    pub fn with_config(mut self, config: BackfillConfig) -> Self {
        self.config = config;
        self
    }

    /// Starts the backfill with high-water mark `high_water` (default: the newest
    /// confirmed block of the history — for the crate's own log, the store's finalized
    /// height), counts the rows to fold and creates the history's key index
    /// ([`History::key_index_sql`]) used by [`super::MigratingStore`] and sampled
    /// [`super::verify`]. If a backfill of the same history exists, returns its state
    /// unchanged (resume); one of another history is an error.
    pub async fn start(&self, high_water: Option<u64>) -> Result<MigrationState, MigrationError> {
        self.history.validate()?;
        if let Some(state) = load_state(&self.pool).await? {
            if state.source != self.history.describe() {
                return Err(MigrationError::OtherHistory {
                    running: state.source,
                    asked: self.history.describe(),
                });
            }
            return Ok(state);
        }
        let high_water = match high_water {
            Some(h) => Some(i64::try_from(h).map_err(|_| {
                MigrationError::Mapping(format!("high-water mark {h} exceeds BIGINT"))
            })?),
            None => self.default_high_water().await?,
        };
        let relation = self.history.relation(2);
        let rows_total: i64 = match high_water {
            Some(h) => {
                let mut q = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT count(*) FROM {relation} h WHERE n <= $1"
                )))
                .bind(h);
                if let Some(status) = self.history.status_value() {
                    q = q.bind(status);
                }
                q.fetch_one(&self.pool)
                    .await
                    .map_err(db("count history rows"))?
            }
            None => 0,
        };
        sqlx::query(AssertSqlSafe(self.history.key_index_sql()))
            .execute(&self.pool)
            .await
            .map_err(db("create the history's key index"))?;
        // An empty history leaves nothing to do: a high-water mark of -1 and phase done.
        let (h, phase) = match high_water {
            Some(h) => (h, Phase::Folding),
            None => (-1, Phase::Done),
        };
        sqlx::query(
            "INSERT INTO migration_state (source, high_water, cursor_block, rows_total, phase)
             VALUES ($1, $2, -1, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.history.describe())
        .bind(h)
        .bind(rows_total)
        .bind(phase.code())
        .execute(&self.pool)
        .await
        .map_err(db("record the migration state"))?;
        tracing::info!(history = %self.history.describe(), high_water = h, rows_total, "backfill started");
        load_state(&self.pool)
            .await?
            .ok_or(MigrationError::NotStarted)
    }

    /// Forgets the backfill of this schema so that [`start`](Self::start) begins a new one
    /// (after a failed run, or to redo a finished one with another high-water mark): deletes
    /// the `migration_state` row and empties `migration_backfill`, in one transaction.
    /// Rows already merged into `user_current_balances` stay, and a new merge keeps them
    /// (`ON CONFLICT DO NOTHING`). Refused after the cutover to `user_current_balances`:
    /// roll the read path back first. Returns the state forgotten, if there was one.
    pub async fn reset(&self) -> Result<Option<MigrationState>, MigrationError> {
        let forgotten = load_state(&self.pool).await?;
        if let Some(state) = &forgotten
            && state.read_path == super::ReadPath::CurrentState
        {
            return Err(MigrationError::Mapping(
                "refusing to reset the backfill: the read path is cut over to user_current_balances (run cutover --rollback first)"
                    .to_owned(),
            ));
        }
        let mut tx = self.pool.begin().await.map_err(db("begin the reset"))?;
        // Waits for a chunk in flight (each locks the row), then forgets it.
        sqlx::query("DELETE FROM migration_state WHERE read_path = 0")
            .execute(&mut *tx)
            .await
            .map_err(db("delete migration_state"))?;
        sqlx::query("TRUNCATE migration_backfill")
            .execute(&mut *tx)
            .await
            .map_err(db("empty migration_backfill"))?;
        tx.commit().await.map_err(db("commit the reset"))?;
        if let Some(state) = &forgotten {
            tracing::info!(history = %state.source, high_water = state.high_water, "backfill reset");
        }
        Ok(forgotten)
    }

    async fn default_high_water(&self) -> Result<Option<i64>, MigrationError> {
        let sql = match self.history {
            History::CrateLog => {
                "SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash"
                    .to_owned()
            }
            History::Legacy(_) => self.history.max_block_sql(),
        };
        let mut q = sqlx::query_scalar(AssertSqlSafe(sql));
        if let Some(status) = self.history.status_value() {
            q = q.bind(status);
        }
        let h: Option<Option<i64>> = q
            .fetch_optional(&self.pool)
            .await
            .map_err(db("find the history's newest confirmed block"))?;
        Ok(h.flatten())
    }

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

    /// Merges the fold into `user_current_balances` in keyset-ordered chunks, each under
    /// the writer lock.
    async fn merge(
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
