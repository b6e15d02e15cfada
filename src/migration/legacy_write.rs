//! Dual-write: a changeset written to a legacy log table inside the store's transaction.

use std::sync::Arc;

use alloy_primitives::hex;
use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgConnection};

use super::history::quote;
use super::{AddressEncoding, AmountColumns, LegacyLog};
use crate::error::StoreError;
use crate::model::Changeset;
use crate::model::Effect;
use crate::store::{ChangesetHook, PostgresStore};

impl PostgresStore {
    /// Dual-write mode: every changeset also writes `legacy` (your own log table, described
    /// by its columns) in the same transaction — rows of new blocks inserted (pending, or
    /// confirmed when finalized in the same changeset), rows of reverted blocks deleted,
    /// pending rows marked confirmed on finalization — so readers of the legacy table keep
    /// working until the cutover. See [`crate::migration`]. A [`ChangesetHook`].
    pub fn with_legacy_log(self, legacy: LegacyLog) -> Result<Self, StoreError> {
        legacy.validate().map_err(|e| StoreError::Inconsistent {
            backend: "postgres",
            detail: e.to_string(),
        })?;
        Ok(self.with_changeset_hook(Arc::new(legacy)))
    }
}

#[async_trait]
impl ChangesetHook for LegacyLog {
    async fn write(&self, conn: &mut PgConnection, changes: &Changeset) -> Result<(), StoreError> {
        write_legacy(conn, self, changes).await
    }
}

/// Column values of the rows to insert, one vector per column.
#[derive(Default)]
struct Rows {
    block: Vec<i64>,
    log_index: Vec<i64>,
    tx_hash: Vec<String>,
    user: Vec<String>,
    asset: Vec<String>,
    amount: Vec<String>,
    kind: Vec<i16>,
}

fn failed(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Backend {
        backend: "postgres",
        operation: what,
        source: Box::new(source),
    }
}

/// Applies `changes` to the legacy table: deletes the rows of reverted blocks, inserts the
/// rows of new blocks as pending, marks rows at or below a new finalized tip confirmed.
/// Without a status column every row is written as is and only reverts delete.
async fn write_legacy(
    tx: &mut PgConnection,
    legacy: &LegacyLog,
    changes: &Changeset,
) -> Result<(), StoreError> {
    let table = legacy.quoted_table();
    let block_col = quote(&legacy.block_number);
    if let Some(first) = changes.revert.first() {
        let from = i64::try_from(first.number).unwrap_or(i64::MAX);
        let status = legacy.status.as_ref().map_or(String::new(), |s| {
            format!(" AND {}::text = $2::text", quote(&s.column))
        });
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE {block_col} >= $1{status}"
        )))
        .bind(from);
        if let Some(s) = &legacy.status {
            q = q.bind(s.pending.as_str());
        }
        q.execute(&mut *tx)
            .await
            .map_err(failed(format!("delete legacy rows from #{from}")))?;
    }
    let mut rows = Rows::default();
    for b in &changes.blocks {
        let h = b.block.header;
        for event in &b.block.events {
            for (key, effect) in event.effects() {
                let (kind, amount) = match (&legacy.amount, effect) {
                    (AmountColumns::Signed { .. }, Effect::Credit(a)) => (0, a.to_string()),
                    (AmountColumns::Signed { .. }, Effect::Debit(a)) => (0, format!("-{a}")),
                    (AmountColumns::Signed { .. }, Effect::Set(_) | Effect::Reconcile(_)) => {
                        return Err(StoreError::Inconsistent {
                            backend: "postgres",
                            detail: format!(
                                "legacy table {} has a signed amount column and cannot record the absolute balance event {} in block {}",
                                legacy.table,
                                event.log,
                                h.id()
                            ),
                        });
                    }
                    (AmountColumns::Kind { credit, .. }, Effect::Credit(a)) => {
                        (*credit, a.to_string())
                    }
                    (AmountColumns::Kind { debit, .. }, Effect::Debit(a)) => {
                        (*debit, a.to_string())
                    }
                    (AmountColumns::Kind { set, .. }, Effect::Set(a) | Effect::Reconcile(a)) => {
                        (*set, a.to_string())
                    }
                };
                rows.block.push(i64::try_from(h.number).unwrap_or(i64::MAX));
                rows.log_index
                    .push(i64::try_from(event.log.log_index).unwrap_or(i64::MAX));
                rows.tx_hash.push(hex::encode_prefixed(event.log.tx_hash));
                rows.user.push(hex::encode_prefixed(key.user));
                rows.asset.push(hex::encode_prefixed(key.asset));
                rows.amount.push(amount);
                rows.kind.push(kind);
            }
        }
    }
    if !rows.block.is_empty() {
        insert(tx, legacy, &rows).await?;
    }
    if let (Some(tip), Some(status)) = (changes.finalize, &legacy.status) {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET {col} = $2 WHERE {col}::text = $3::text AND {block_col} <= $1",
            col = quote(&status.column),
        )))
        .bind(i64::try_from(tip.number).unwrap_or(i64::MAX))
        .bind(status.confirmed.as_str())
        .bind(status.pending.as_str())
        .execute(&mut *tx)
        .await
        .map_err(failed(format!("confirm legacy rows up to {}", tip.id())))?;
    }
    Ok(())
}

/// One `INSERT … SELECT FROM UNNEST` of all the rows.
async fn insert(tx: &mut PgConnection, legacy: &LegacyLog, rows: &Rows) -> Result<(), StoreError> {
    // Addresses travel as `0x…` text and are converted in SQL to the table's encoding.
    let address = |p: &str| match legacy.encoding {
        AddressEncoding::Bytea => format!("decode(substr({p}, 3), 'hex')"),
        AddressEncoding::HexText => p.to_owned(),
    };
    let mut columns = vec![quote(&legacy.block_number)];
    let mut values = vec!["r.n".to_owned()];
    if let Some(c) = &legacy.log_index {
        columns.push(quote(c));
        values.push("r.i".into());
    }
    if let Some(c) = &legacy.tx_hash {
        columns.push(quote(c));
        values.push(address("r.t"));
    }
    columns.push(quote(&legacy.user));
    values.push(address("r.u"));
    columns.push(quote(&legacy.asset));
    values.push(address("r.a"));
    match &legacy.amount {
        AmountColumns::Signed { column } => {
            columns.push(quote(column));
            values.push("r.v::numeric".into());
        }
        AmountColumns::Kind { kind, amount, .. } => {
            columns.push(quote(kind));
            values.push("r.k".into());
            columns.push(quote(amount));
            values.push("r.v::numeric".into());
        }
    }
    if let Some(s) = &legacy.status {
        columns.push(quote(&s.column));
        values.push("$8::text".into());
    }
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[]) AS r(n, i, t, u, a, v, k)",
        legacy.quoted_table(),
        columns.join(", "),
        values.join(", ")
    );
    let (first, last) = (rows.block[0], rows.block[rows.block.len() - 1]);
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(&rows.block)
        .bind(&rows.log_index)
        .bind(&rows.tx_hash)
        .bind(&rows.user)
        .bind(&rows.asset)
        .bind(&rows.amount)
        .bind(&rows.kind);
    if let Some(s) = &legacy.status {
        q = q.bind(s.pending.as_str());
    }
    q.execute(&mut *tx).await.map_err(failed(format!(
        "insert legacy rows of blocks #{first}..=#{last}"
    )))?;
    Ok(())
}
