//! The history a migration folds: the crate's own `balance_updates`, or a legacy log table
//! described by a column mapping.
//!
//! Every history is read through one normalized relation with the columns
//! `u` (user, BYTEA), `a` (asset, BYTEA), `k` (0 credit, 1 debit, 2 set), `v` (amount,
//! NUMERIC ≥ 0), `n` (block number), `i` (log index) and `o` (ordinal within the log), of
//! confirmed rows only. The backfill, `verify` and the migration-mode reads are SQL over it,
//! so a legacy table is folded by Postgres where it lies, without copying it.

use super::MigrationError;
use crate::store::ident::{derived_name, ident_problem, quote_ident};

/// Where the history lives.
// A configuration value built once per job: the size of the variants does not matter, and
// `History::Legacy(LegacyLog { .. })` reads better than a boxed mapping.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    /// This crate's `balance_updates`, confirmed rows (their block is finalized in `blocks`),
    /// without the rows of a quarantined asset the engine skipped (from its faulting log to
    /// its resume, `asset_state_log`).
    CrateLog,
    /// A legacy log table with its own column names.
    Legacy(LegacyLog),
}

/// How a legacy table stores addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressEncoding {
    /// 20 raw bytes (`BYTEA`).
    Bytea,
    /// Hex text, with or without `0x`, any letter case (`TEXT`, as the original design had).
    HexText,
}

/// How a legacy table stores what an event did to a balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountColumns {
    /// One signed numeric column: positive credits, negative debits. Cannot express an
    /// absolute "new balance" event.
    Signed {
        /// The signed amount column.
        column: String,
    },
    /// A kind code column and a non-negative amount column.
    Kind {
        /// The kind column (an integer type).
        kind: String,
        /// The amount column (numeric, ≥ 0).
        amount: String,
        /// Code of a credit.
        credit: i16,
        /// Code of a debit.
        debit: i16,
        /// Code of an absolute "set balance" event.
        set: i16,
    },
}

/// A status column: only rows whose status is `confirmed` are history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusColumn {
    /// The column (text).
    pub column: String,
    /// The value of a confirmed row, e.g. `confirmed`.
    pub confirmed: String,
    /// The value of a pending row written in dual-write mode, e.g. `pending`.
    pub pending: String,
}

/// A legacy event-log table described by its column names, so the toolkit can read (and,
/// in dual-write mode, write) it without forking the crate.
///
/// Names are plain identifiers (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes, the table
/// optionally `schema.table`) and are quoted as given, so their letter case matters. Status
/// values are bound as query parameters, never pasted into SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLog {
    /// The table, `name` or `schema.name`.
    pub table: String,
    /// Block number column (integer).
    pub block_number: String,
    /// Log index column (integer): orders events within a block. Needed when the table
    /// has absolute events; without it, rows of one block fold in unspecified order.
    pub log_index: Option<String>,
    /// Transaction hash column, written in dual-write mode (same encoding as addresses).
    pub tx_hash: Option<String>,
    /// User address column.
    pub user: String,
    /// Asset (token) address column.
    pub asset: String,
    /// Encoding of the user, asset and tx-hash columns.
    pub encoding: AddressEncoding,
    /// Amount columns.
    pub amount: AmountColumns,
    /// Status column; without one, every row is confirmed history.
    pub status: Option<StatusColumn>,
}

impl LegacyLog {
    /// The original design's log: `balance_updates_legacy (block_number, log_index,
    /// user_address TEXT, asset_id TEXT, amount NUMERIC signed, block_status TEXT)` with
    /// statuses `confirmed` / `pending`. Change `table` to point it at yours.
    pub fn original_design(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            block_number: "block_number".into(),
            log_index: Some("log_index".into()),
            tx_hash: None,
            user: "user_address".into(),
            asset: "asset_id".into(),
            encoding: AddressEncoding::HexText,
            amount: AmountColumns::Signed {
                column: "amount".into(),
            },
            status: Some(StatusColumn {
                column: "block_status".into(),
                confirmed: "confirmed".into(),
                pending: "pending".into(),
            }),
        }
    }

    /// Checks every name; called before any SQL is built from the mapping.
    pub fn validate(&self) -> Result<(), MigrationError> {
        let mut names = vec![&self.block_number, &self.user, &self.asset];
        names.extend(self.log_index.iter());
        names.extend(self.tx_hash.iter());
        match &self.amount {
            AmountColumns::Signed { column } => names.push(column),
            AmountColumns::Kind { kind, amount, .. } => names.extend([kind, amount]),
        }
        if let Some(s) = &self.status {
            names.push(&s.column);
        }
        for name in names {
            ident(name)?;
        }
        let parts: Vec<&str> = self.table.split('.').collect();
        if parts.len() > 2 {
            return Err(MigrationError::Mapping(format!(
                "table {:?} has more than one `.`",
                self.table
            )));
        }
        for part in parts {
            ident(part)?;
        }
        Ok(())
    }

    /// The table name, quoted.
    pub(crate) fn quoted_table(&self) -> String {
        self.table
            .split('.')
            .map(quote)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// SQL turning an address-like column into BYTEA.
    fn decode(&self, column: &str) -> String {
        self.decode_in("t.", column)
    }

    /// [`Self::decode`] with the column qualified by `prefix` (`""` in an index definition).
    fn decode_in(&self, prefix: &str, column: &str) -> String {
        let c = format!("{prefix}{}", quote(column));
        match self.encoding {
            AddressEncoding::Bytea => c,
            AddressEncoding::HexText => format!(
                "decode(CASE WHEN left({c}, 2) IN ('0x', '0X') THEN substr({c}, 3) ELSE {c} END, 'hex')"
            ),
        }
    }

    /// The confirmed-rows filter, comparing the status with the parameter `$status_param`
    /// (bound to [`History::status_value`]).
    fn status_filter(&self, status_param: usize) -> String {
        match &self.status {
            Some(s) => format!("t.{}::text = ${status_param}::text", quote(&s.column)),
            None => "TRUE".to_owned(),
        }
    }
}

impl History {
    /// A one-line description, stored in `migration_state.source` so a resumed backfill
    /// can tell it is folding the same history.
    pub fn describe(&self) -> String {
        match self {
            History::CrateLog => "balance_updates".to_owned(),
            History::Legacy(l) => format!("legacy {}", l.table),
        }
    }

    /// Checks a legacy mapping's names.
    pub fn validate(&self) -> Result<(), MigrationError> {
        match self {
            History::CrateLog => Ok(()),
            History::Legacy(l) => l.validate(),
        }
    }

    /// The value a query over [`relation`](Self::relation) binds at its `status_param`
    /// (the confirmed status of a legacy table), or `None` when the relation has no
    /// parameter. Callers bind it last, so `status_param` is one past their own parameters.
    pub(crate) fn status_value(&self) -> Option<String> {
        match self {
            History::Legacy(LegacyLog {
                status: Some(s), ..
            }) => Some(s.confirmed.clone()),
            _ => None,
        }
    }

    /// The normalized relation (see the module docs), as a parenthesized subquery. A legacy
    /// status filter compares with the query parameter `$status_param`, bound to
    /// [`status_value`](Self::status_value).
    pub(crate) fn relation(&self, status_param: usize) -> String {
        match self {
            History::CrateLog => {
                // A correction row (kind 3) is absolute like kind 2, and applies before its
                // block's events: its synthetic log index (2^62 up to the resume logs at
                // 2^62 + 2^61) is shifted below zero. A fault correction (from
                // 2^62 + 2^61 + 2^60) applies at the end of its block: kept as it is. The
                // rows the engine skipped (a quarantined asset's, up to its resume) are
                // left out, so the relation folds to what the engine folded.
                without_quarantined("(SELECT bu.user_address AS u, bu.asset AS a, LEAST(bu.kind, 2)::smallint AS k, bu.amount AS v,
                     bu.block_number AS n,
                     CASE WHEN bu.log_index >= 4611686018427387904 AND bu.log_index < 6917529027641081856
                          THEN bu.log_index - 9223372036854775807 ELSE bu.log_index END AS i,
                     bu.ordinal::int AS o
              FROM balance_updates bu JOIN blocks b ON b.hash = bu.block_hash AND b.status = 1)")
            }
            History::Legacy(l) => {
                let (k, v) = match &l.amount {
                    AmountColumns::Signed { column } => {
                        let c = format!("t.{}", quote(column));
                        (
                            format!("(CASE WHEN {c} < 0 THEN 1 ELSE 0 END)::smallint"),
                            format!("abs({c})::numeric"),
                        )
                    }
                    AmountColumns::Kind {
                        kind,
                        amount,
                        credit,
                        debit,
                        set,
                    } => {
                        let c = format!("t.{}", quote(kind));
                        (
                            format!(
                                "(CASE {c} WHEN {credit} THEN 0 WHEN {debit} THEN 1 WHEN {set} THEN 2 END)::smallint"
                            ),
                            format!("t.{}::numeric", quote(amount)),
                        )
                    }
                };
                let i = l.log_index.as_deref().map_or("0::bigint".to_owned(), |c| {
                    format!("t.{}::bigint", quote(c))
                });
                format!(
                    "(SELECT {u} AS u, {a} AS a, {k} AS k, {v} AS v, t.{n}::bigint AS n, {i} AS i, 0 AS o
                      FROM {table} t WHERE {status})",
                    u = l.decode(&l.user),
                    a = l.decode(&l.asset),
                    n = quote(&l.block_number),
                    table = l.quoted_table(),
                    status = l.status_filter(status_param),
                )
            }
        }
    }

    /// The highest block with confirmed history (`None` for an empty history); binds
    /// [`status_value`](Self::status_value) as `$1`.
    pub(crate) fn max_block_sql(&self) -> String {
        format!("SELECT max(n) FROM {} h", self.relation(1))
    }

    /// `CREATE INDEX` for the per-key lookups of migration-mode reads and sampled verify
    /// (`(user, asset)` as the normalized relation computes them). Idempotent. The index of a
    /// legacy table `t` is `t_migration_key`, or, when that would exceed 63 bytes (and be
    /// truncated by Postgres), a shortened name carrying a 16-hex-digit hash of `t`, which
    /// cannot collide with the table's own name.
    pub fn key_index_sql(&self) -> String {
        match self {
            History::CrateLog => "CREATE INDEX IF NOT EXISTS balance_updates_key
                 ON balance_updates (user_address, asset, block_number)"
                .to_owned(),
            History::Legacy(l) => {
                let index = derived_name(
                    l.table.rsplit('.').next().unwrap_or(&l.table),
                    "migration_key",
                );
                let expr = |c: &str| l.decode_in("", c);
                format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {} (({}), ({}), {})",
                    quote(&index),
                    l.quoted_table(),
                    expr(&l.user),
                    expr(&l.asset),
                    quote(&l.block_number)
                )
            }
        }
    }
}

/// The fold of the rows of the normalized relation that pass `filter` (SQL over `h`),
/// per (user, asset): `reset` when the rows hold an absolute event, and `net`: the value
/// after the last absolute event, or the signed sum of all the rows when there is none.
/// Columns: `u`, `a`, `reset`, `net`, `rows` and `bad` (rows with an unknown kind or a
/// NULL or negative amount). The history's status parameter is `$status_param`.
pub(crate) fn fold_sql(history: &History, filter: &str, status_param: usize) -> String {
    fold_over(&history.relation(status_param), filter)
}

/// [`fold_sql`] over any relation with the normalized columns.
pub(crate) fn fold_over(relation: &str, filter: &str) -> String {
    format!(
        "SELECT u, a, bool_or(k = 2) AS reset,
                COALESCE(sum(CASE k WHEN 1 THEN -v ELSE v END) FILTER (WHERE s = 0 OR (s = 1 AND k = 2)), 0) AS net,
                count(*) AS rows,
                count(*) FILTER (WHERE k IS NULL OR v IS NULL OR v < 0) AS bad
         FROM (SELECT u, a, k, v,
                      count(*) FILTER (WHERE k = 2) OVER (PARTITION BY u, a ORDER BY n DESC, i DESC, o DESC
                                                          ROWS UNBOUNDED PRECEDING) AS s
               FROM {relation} h WHERE {filter}) r
         GROUP BY u, a"
    )
}

/// The rows of `relation` (normalized columns `u, a, k, v, n, i, o`) the engine folded:
/// without the rows of an asset inside one of its quarantines, from the faulting log
/// (included) to the resume, which sorts after every real log of its block (excluded), the
/// spans `collateral_at_block` skips, of finalized blocks. A fault correction sorts after its
/// block's resume, so the correction that ends a quarantine is folded. An asset never
/// quarantined costs one probe of `asset_state_log`.
fn without_quarantined(relation: &str) -> String {
    let resume = crate::model::RESUME_LOG_INDEX;
    format!(
        "(SELECT h.u, h.a, h.k, h.v, h.n, h.i, h.o FROM {relation} h
          WHERE NOT EXISTS (
              SELECT 1 FROM asset_state_log q JOIN blocks qb ON qb.hash = q.block_hash AND qb.status = 1
              WHERE q.asset = h.a AND q.state = 1
                AND (q.block_number, COALESCE(q.log_index, 0)) <= (h.n, h.i)
                AND NOT EXISTS (
                    SELECT 1 FROM asset_state_log r JOIN blocks rb ON rb.hash = r.block_hash AND rb.status = 1
                    WHERE r.asset = h.a AND r.state = 0 AND r.block_number >= q.block_number
                      AND (r.block_number, {resume}::bigint) <= (h.n, h.i))))"
    )
}

/// A checked identifier ([`ident_problem`]).
fn ident(name: &str) -> Result<(), MigrationError> {
    match ident_problem(name) {
        None => Ok(()),
        Some(reason) => Err(MigrationError::Mapping(format!("{name:?} is {reason}"))),
    }
}

/// An identifier, double-quoted by the crate's one quoting helper ([`quote_ident`]).
pub(crate) fn quote(name: &str) -> String {
    quote_ident(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_are_not_identifiers() {
        let mut l = LegacyLog::original_design("ok_table");
        assert!(l.validate().is_ok());
        l.user = "user; DROP TABLE x".into();
        assert!(matches!(l.validate(), Err(MigrationError::Mapping(_))));
        let l = LegacyLog::original_design("a.b.c");
        assert!(matches!(l.validate(), Err(MigrationError::Mapping(_))));
    }

    #[test]
    fn status_values_are_bound_not_pasted() {
        let mut l = LegacyLog::original_design("t");
        l.status = Some(StatusColumn {
            column: "s".into(),
            confirmed: "it's\\' OR TRUE --".into(),
            pending: "p".into(),
        });
        let h = History::Legacy(l);
        let sql = h.relation(7);
        assert!(!sql.contains("it's") && !sql.contains("OR TRUE"), "{sql}");
        assert!(sql.contains("t.\"s\"::text = $7::text"), "{sql}");
        assert_eq!(h.status_value().as_deref(), Some("it's\\' OR TRUE --"));
        assert_eq!(History::CrateLog.status_value(), None);
    }

    #[test]
    fn long_names_are_refused_and_index_names_cannot_truncate() {
        let l = LegacyLog::original_design(&"x".repeat(64));
        assert!(matches!(l.validate(), Err(MigrationError::Mapping(m)) if m.contains("64 bytes")));
        let table = "y".repeat(63);
        let l = LegacyLog::original_design(&format!("s.{table}"));
        assert!(l.validate().is_ok());
        let sql = History::Legacy(l).key_index_sql();
        let index = sql
            .strip_prefix("CREATE INDEX IF NOT EXISTS \"")
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert!(index.len() <= 63 && index != table, "{index}");
        assert!(index.ends_with("_migration_key"));
    }
}
