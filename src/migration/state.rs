//! The migration's persistent state: one row in `migration_state`.

use sqlx::{PgPool, Row};

use super::{MigrationError, ReadPath, db};

/// Where a backfill is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Folding the history into `migration_backfill`, chunk by chunk.
    Folding,
    /// Merging the fold into `user_current_balances`.
    Merging,
    /// Finished: every key of the history ≤ the high-water mark has its confirmed row.
    Done,
}

impl Phase {
    pub(crate) fn code(self) -> i16 {
        match self {
            Phase::Folding => 0,
            Phase::Merging => 1,
            Phase::Done => 2,
        }
    }

    fn from_code(code: i16) -> Self {
        match code {
            0 => Phase::Folding,
            1 => Phase::Merging,
            _ => Phase::Done,
        }
    }
}

/// The row of `migration_state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// The history being folded ([`super::History::describe`]).
    pub source: String,
    /// The high-water mark: the backfill owns history rows at or below it.
    pub high_water: u64,
    /// The history is folded through this block (`None`: nothing yet).
    pub folded_through: Option<u64>,
    /// History rows at or below the high-water mark, counted when the backfill started.
    pub rows_total: u64,
    /// History rows folded so far.
    pub rows_folded: u64,
    /// Keys merged into `user_current_balances` so far.
    pub keys_merged: u64,
    /// The phase.
    pub phase: Phase,
    /// The read path [`super::SwitchableReads`] uses.
    pub read_path: ReadPath,
}

/// The migration state of the pool's schema, if a backfill was ever started there.
pub async fn load_state(pool: &PgPool) -> Result<Option<MigrationState>, MigrationError> {
    let row = sqlx::query(
        "SELECT source, high_water, cursor_block, rows_total, rows_folded, keys_merged, phase, read_path
         FROM migration_state",
    )
    .fetch_optional(pool)
    .await
    .map_err(db("read migration_state"))?;
    let Some(r) = row else { return Ok(None) };
    let get_i64 = |c: &str| -> Result<i64, MigrationError> {
        r.try_get::<i64, _>(c)
            .map_err(db(format!("read migration_state.{c}")))
    };
    let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
    let cursor = get_i64("cursor_block")?;
    Ok(Some(MigrationState {
        source: r
            .try_get("source")
            .map_err(db("read migration_state.source"))?,
        high_water: unsigned(get_i64("high_water")?),
        folded_through: u64::try_from(cursor).ok(),
        rows_total: unsigned(get_i64("rows_total")?),
        rows_folded: unsigned(get_i64("rows_folded")?),
        keys_merged: unsigned(get_i64("keys_merged")?),
        phase: Phase::from_code(
            r.try_get("phase")
                .map_err(db("read migration_state.phase"))?,
        ),
        read_path: ReadPath::from_code(
            r.try_get("read_path")
                .map_err(db("read migration_state.read_path"))?,
        ),
    }))
}
