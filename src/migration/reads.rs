//! Cutover: the read-path switch between the legacy log query and `user_current_balances`.

use std::sync::atomic::{AtomicU8, Ordering};

use alloy_primitives::{Address, U256};
use sqlx::{AssertSqlSafe, PgPool, Row};

use super::history::fold_over;
use super::state::load_state;
use super::verify::log_relation;
use super::{History, MigrationError, db};
use crate::model::{AssetId, UserId};

/// Where confirmed balances are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// The legacy path: fold the event log (the original design's query). Cost grows with
    /// the log.
    Log,
    /// The denormalized path: `user_current_balances`. Cost O(assets of the user).
    CurrentState,
}

impl ReadPath {
    pub(crate) fn code(self) -> i16 {
        match self {
            ReadPath::Log => 0,
            ReadPath::CurrentState => 1,
        }
    }

    pub(crate) fn from_code(code: i16) -> Self {
        if code == 1 {
            ReadPath::CurrentState
        } else {
            ReadPath::Log
        }
    }
}

/// Confirmed-balance reads behind a feature flag: the legacy log query until the cutover,
/// `user_current_balances` after it.
///
/// The flag lives in `migration_state.read_path`, so [`cutover`](Self::cutover) in one
/// process switches every process at its next [`refresh`](Self::refresh); without a
/// migration row the path is [`ReadPath::CurrentState`]. [`set_path`](Self::set_path)
/// overrides it locally (to compare the two, or to roll back one process).
#[derive(Debug)]
pub struct SwitchableReads {
    pool: PgPool,
    history: History,
    path: AtomicU8,
}

impl SwitchableReads {
    /// Reads of the store in `pool`'s schema, migrating from `history`.
    pub async fn new(pool: PgPool, history: History) -> Result<Self, MigrationError> {
        history.validate()?;
        let reads = Self {
            pool,
            history,
            path: AtomicU8::new(ReadPath::CurrentState.code() as u8),
        };
        reads.refresh().await?;
        Ok(reads)
    }

    /// The path in use.
    pub fn path(&self) -> ReadPath {
        ReadPath::from_code(i16::from(self.path.load(Ordering::Acquire)))
    }

    /// Switches this instance only.
    pub fn set_path(&self, path: ReadPath) {
        self.path.store(path.code() as u8, Ordering::Release);
    }

    /// Re-reads the shared flag and returns it.
    pub async fn refresh(&self) -> Result<ReadPath, MigrationError> {
        let path = load_state(&self.pool)
            .await?
            .map_or(ReadPath::CurrentState, |s| s.read_path);
        self.set_path(path);
        Ok(path)
    }

    /// Persists `path` as the shared flag (and uses it here). Switching to
    /// [`ReadPath::CurrentState`] before the backfill is done is refused: the table would
    /// miss balances. Either switch is refused with
    /// [`MigrationError::CutoverOfOtherHistory`] when this instance's history is not the
    /// one the backfill folded.
    pub async fn cutover(&self, path: ReadPath) -> Result<(), MigrationError> {
        let state = load_state(&self.pool)
            .await?
            .ok_or(MigrationError::NotStarted)?;
        let asked = self.history.describe();
        if state.source != asked {
            return Err(MigrationError::CutoverOfOtherHistory {
                backfilled: state.source,
                asked,
            });
        }
        if path == ReadPath::CurrentState && state.phase != super::Phase::Done {
            return Err(MigrationError::Mapping(format!(
                "cannot cut over to user_current_balances: the backfill is in phase {:?}",
                state.phase
            )));
        }
        sqlx::query("UPDATE migration_state SET read_path = $1")
            .bind(path.code())
            .execute(&self.pool)
            .await
            .map_err(db("switch the read path"))?;
        self.set_path(path);
        Ok(())
    }

    /// A user's confirmed balances by asset (non-zero only), from the current path.
    pub async fn confirmed_balances(
        &self,
        user: UserId,
    ) -> Result<Vec<(AssetId, U256)>, MigrationError> {
        let rows = match self.path() {
            ReadPath::CurrentState => sqlx::query(
                "SELECT asset AS a, balance::text AS v FROM user_current_balances
                 WHERE user_address = $1 AND block_status = 1 AND balance > 0 ORDER BY asset",
            )
            .bind(user.as_slice())
            .fetch_all(&self.pool)
            .await
            .map_err(db(format!("read {user}'s current balances")))?,
            ReadPath::Log => {
                let (hw, height) = self.heights().await?;
                let log = log_relation(&self.history, "$2", "$3", 4);
                let mut q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT a, net::text AS v FROM ({}) f WHERE net > 0 ORDER BY a",
                    fold_over(&log, "u = $1")
                )))
                .bind(user.as_slice())
                .bind(hw)
                .bind(height);
                if let Some(status) = self.history.status_value() {
                    q = q.bind(status);
                }
                q.fetch_all(&self.pool)
                    .await
                    .map_err(db(format!("fold {user}'s log")))?
            }
        };
        rows.iter().map(|r| pair(r, "a")).collect()
    }

    /// Every user's confirmed balances from the current path: on [`ReadPath::Log`] this is
    /// the original design's "killer query" (every user joined with the whole log), kept
    /// so you can compare; on [`ReadPath::CurrentState`] it is a scan of the table.
    pub async fn all_confirmed_balances(
        &self,
    ) -> Result<Vec<(UserId, AssetId, U256)>, MigrationError> {
        let rows = match self.path() {
            ReadPath::CurrentState => sqlx::query(
                "SELECT user_address AS u, asset AS a, balance::text AS v FROM user_current_balances
                 WHERE block_status = 1 AND balance > 0 ORDER BY user_address, asset",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db("read all current balances"))?,
            ReadPath::Log => {
                let (hw, height) = self.heights().await?;
                let log = log_relation(&self.history, "$1", "$2", 3);
                let mut q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT u, a, net::text AS v FROM ({}) f WHERE net > 0 ORDER BY u, a",
                    fold_over(&log, "TRUE")
                )))
                .bind(hw)
                .bind(height);
                if let Some(status) = self.history.status_value() {
                    q = q.bind(status);
                }
                q.fetch_all(&self.pool)
                .await
                .map_err(db("fold the whole log"))?
            }
        };
        rows.iter()
            .map(|r| {
                let u: Vec<u8> = r.try_get("u").map_err(db("read user"))?;
                let (a, v) = pair(r, "a")?;
                Ok((Address::try_from(u.as_slice()).unwrap_or_default(), a, v))
            })
            .collect()
    }

    /// The high-water mark and the confirmed height the log path folds to.
    async fn heights(&self) -> Result<(i64, i64), MigrationError> {
        let hw = load_state(&self.pool)
            .await?
            .map_or(-1, |s| i64::try_from(s.high_water).unwrap_or(-1));
        let finalized: Option<i64> = sqlx::query_scalar(
            "SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read the finalized height"))?;
        Ok((hw, finalized.unwrap_or(-1).max(hw)))
    }
}

fn pair(r: &sqlx::postgres::PgRow, asset: &str) -> Result<(AssetId, U256), MigrationError> {
    let a: Vec<u8> = r.try_get(asset).map_err(db("read asset"))?;
    let v: String = r.try_get("v").map_err(db("read balance"))?;
    let value = v
        .parse::<U256>()
        .map_err(|_| MigrationError::Mapping(format!("balance {v} is outside 0..2^256")))?;
    Ok((Address::try_from(a.as_slice()).unwrap_or_default(), value))
}
