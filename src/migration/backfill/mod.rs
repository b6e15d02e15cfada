//! The backfill job: folds the history at or below the high-water mark into confirmed
//! current state, resumably, while the live watcher writes.
//!
//! The job, its tuning and its start and reset are here; the fold phase is in `fold`, the
//! merge phase in `merge`.

mod fold;
mod merge;

use sqlx::{AssertSqlSafe, PgPool};

use super::state::{MigrationState, Phase, load_state};
use super::{History, MigrationError, db};

/// Class id (first key) of the advisory lock serializing builds of a history's key index.
const KEY_INDEX_LOCK_CLASS: i32 = 1_919_118_191;

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
        self.build_key_index().await?;
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

    /// Creates the history's key index ([`History::key_index_sql`]) so that a restart right
    /// after a killed build succeeds. Killing the client does not stop its build: the
    /// server goes on until it next talks to the client, and a second `CREATE INDEX IF NOT
    /// EXISTS` meanwhile fails (a lock timeout, or a duplicate name once the first
    /// commits). So the build runs in a transaction holding an advisory lock on the index,
    /// waited for without `lock_timeout`, and the server checks every second that its
    /// client is still there (`client_connection_check_interval`, Postgres 14 and later): a
    /// killed build aborts within about a second and the restart builds the index, or
    /// finds it committed. No `statement_timeout`: a large table may take longer to index.
    async fn build_key_index(&self) -> Result<(), MigrationError> {
        let failed = |what: &'static str| db(format!("create the history's key index: {what}"));
        let sql = self.history.key_index_sql();
        let mut tx = self.pool.begin().await.map_err(failed("begin"))?;
        sqlx::query(
            "SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true),
                    CASE WHEN current_setting('server_version_num')::int >= 140000
                         THEN set_config('client_connection_check_interval', '1s', true) END",
        )
        .execute(&mut *tx)
        .await
        .map_err(failed("settings"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ' ' || $2))")
            .bind(KEY_INDEX_LOCK_CLASS)
            .bind(&sql)
            .execute(&mut *tx)
            .await
            .map_err(failed("wait for another build"))?;
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(failed("build"))?;
        tx.commit().await.map_err(failed("commit"))
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
}
