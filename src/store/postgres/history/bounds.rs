//! What every history read does first: open one read-only snapshot, and refuse a block
//! that is not finalized or whose prices the log no longer holds.

use sqlx::postgres::PgRow;
use sqlx::{Executor, Postgres, Row, Transaction};

use super::super::PostgresStore;
use super::super::codec::{bigint, db, number};
use crate::error::StoreError;
use crate::model::BlockNumber;
use crate::traits::HistoryError;

impl PostgresStore {
    /// Begins the repeatable-read, read-only transaction a history read runs in, so that
    /// its bounds and its rows are of one state; an error names `what`.
    pub(super) async fn history_snapshot(
        &self,
        what: &str,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db(what))?;
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db(what))?;
        Ok(tx)
    }
}

/// The nullable `BIGINT` column `column` of a row of bounds.
pub(super) fn bound(meta: &PgRow, column: &'static str) -> Result<Option<i64>, StoreError> {
    meta.try_get::<Option<i64>, _>(column)
        .map_err(db(format!("read {column}")))
}

/// Checks `block` against the columns `finalized` (the finalized height) and `prices_from`
/// (the first block whose prices the log holds, `NULL`: all) of `meta`, and returns it as a
/// `BIGINT`.
///
/// # Errors
/// [`HistoryError::NotFinal`] above the finalized block (or with none),
/// [`HistoryError::PricesNotInLog`] below `prices_from`; a height past `i64::MAX`.
pub(super) fn finalized_with_prices(meta: &PgRow, block: BlockNumber) -> Result<i64, HistoryError> {
    let finalized = bound(meta, "finalized")?
        .map(|n| number(n, "number"))
        .transpose()?;
    if finalized.is_none_or(|f| block > f) {
        return Err(HistoryError::NotFinal { block, finalized });
    }
    let at = bigint(block, "block_number")?;
    if let Some(from) = bound(meta, "prices_from")?
        && at < from
    {
        return Err(HistoryError::PricesNotInLog {
            block,
            from: number(from, "prices_from")?,
        });
    }
    Ok(at)
}
