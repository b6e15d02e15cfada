//! Verify: recompute confirmed balances from the log and diff them against
//! `user_current_balances`.

use alloy_primitives::Address;
use sqlx::{AssertSqlSafe, PgPool, Row};

use super::history::fold_over;
use super::state::load_state;
use super::{History, MigrationError, db};

/// How much to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// Every (user, asset) of the log and of the table: one pass over the whole log.
    Full,
    /// About this many keys: half drawn at random from the table, half from the history
    /// rows of random blocks; each folded through the history's key index. Cheap enough to
    /// run against a live system; finds systematic errors, not every single one.
    Sample(u32),
}

/// One (user, asset) whose confirmed balance differs from the log's fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The user.
    pub user: Address,
    /// The asset.
    pub asset: Address,
    /// The fold of the log (absent: zero).
    pub expected: String,
    /// The confirmed balance in `user_current_balances` (absent: zero).
    pub actual: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The mode run.
    pub mode: VerifyMode,
    /// The height the confirmed state was compared at.
    pub height: Option<u64>,
    /// Keys compared.
    pub keys_checked: u64,
    /// Keys that differ.
    pub mismatches: u64,
    /// Up to the asked number of differing keys, ordered by (user, asset).
    pub samples: Vec<Mismatch>,
}

impl VerifyReport {
    /// Whether nothing differs.
    pub fn is_clean(&self) -> bool {
        self.mismatches == 0
    }
}

/// "The log" at a confirmed height: `history` at or below the high-water mark (SQL `hw`)
/// plus the crate's `balance_updates` above it up to `height` (SQL `height`). The crate's
/// own log needs no union. A legacy status is compared with `$status_param`
/// ([`History::status_value`]).
pub(crate) fn log_relation(
    history: &History,
    hw: &str,
    height: &str,
    status_param: usize,
) -> String {
    match history {
        History::CrateLog => format!(
            "(SELECT * FROM {} o WHERE o.n <= {height})",
            History::CrateLog.relation(status_param)
        ),
        History::Legacy(_) => format!(
            "(SELECT * FROM {} o WHERE o.n <= {hw} UNION ALL SELECT * FROM {} c WHERE c.n > {hw} AND c.n <= {height})",
            history.relation(status_param),
            History::CrateLog.relation(status_param)
        ),
    }
}

/// Compares each confirmed balance in `user_current_balances` with the fold of the log at
/// the store's confirmed height, in one `REPEATABLE READ` snapshot (so a live watcher does
/// not make it report torn state).
///
/// A rebasing asset is compared like with like: the table holds its shares, the log the
/// token amounts its events named, so each of its log rows is converted to shares with the
/// index in force at that row (the latest rebase before it, from `rebase_log`, migration
/// 0016) before the fold; rows before its first rebase (the backfilled history included)
/// are taken as they are, as the engine took them.
///
/// "The log" is `history` at or below the migration's high-water mark `H` plus the crate's
/// `balance_updates` above it (what the watcher wrote); without a migration it is
/// `balance_updates`. The comparison height is the store's finalized height, or `H` if
/// that is higher (before the watcher finalizes its first block). Returns at most
/// `max_samples` mismatches in the report.
pub async fn verify(
    pool: &PgPool,
    history: &History,
    mode: VerifyMode,
    max_samples: u32,
) -> Result<VerifyReport, MigrationError> {
    history.validate()?;
    let mut tx = pool.begin().await.map_err(db("begin verify"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db("set the verify snapshot"))?;
    let high_water: i64 = match load_state(pool).await? {
        Some(s) => i64::try_from(s.high_water).unwrap_or(-1),
        None => -1,
    };
    let finalized: Option<i64> = sqlx::query_scalar(
        "SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db("read the finalized height"))?;
    let height = finalized.unwrap_or(-1).max(high_water);
    // $1 high water, $2 height, $3 samples shown, $4 keys sampled (sample mode), then the
    // legacy status.
    let status_param = match mode {
        VerifyMode::Full => 4,
        VerifyMode::Sample(_) => 5,
    };
    let older = history.relation(status_param);
    // A rebasing asset's balances are shares; its log rows name token amounts: they are
    // compared as shares, each row converted with the index in force at it.
    let log = crate::store::in_shares(&log_relation(history, "$1", "$2", status_param));
    let (fold, table_keys) = match mode {
        VerifyMode::Full => (
            fold_over(&log, "TRUE"),
            "SELECT user_address AS u, asset AS a, balance FROM user_current_balances WHERE block_status = 1".to_owned(),
        ),
        VerifyMode::Sample(_) => (
            fold_over(&log, "(u, a) IN (SELECT u, a FROM keys)"),
            "SELECT c.user_address AS u, c.asset AS a, c.balance FROM user_current_balances c
             JOIN keys k ON k.u = c.user_address AND k.a = c.asset WHERE c.block_status = 1"
                .to_owned(),
        ),
    };
    let keys = match mode {
        VerifyMode::Full => String::new(),
        VerifyMode::Sample(_) => format!(
            "keys AS MATERIALIZED (
                (SELECT user_address AS u, asset AS a FROM user_current_balances
                 WHERE block_status = 1 ORDER BY random() LIMIT $4)
                UNION
                (SELECT DISTINCT u, a FROM {older} s
                 WHERE s.n IN (SELECT (random() * $1)::bigint FROM generate_series(1, $4))
                 LIMIT $4)
             ),"
        ),
    };
    let sql = format!(
        "WITH {keys} f AS ({fold}), c AS ({table_keys}),
         d AS MATERIALIZED (
            SELECT COALESCE(f.u, c.u) AS u, COALESCE(f.a, c.a) AS a, f.net, c.balance
            FROM f FULL JOIN c ON f.u = c.u AND f.a = c.a
         ), m AS (SELECT * FROM d WHERE COALESCE(net, 0) <> COALESCE(balance, 0))
         SELECT (SELECT count(*) FROM d) AS keys, (SELECT count(*) FROM m) AS bad,
                s.u, s.a, COALESCE(s.net, 0)::text AS net, COALESCE(s.balance, 0)::text AS balance
         FROM (SELECT 1) one LEFT JOIN (SELECT * FROM m ORDER BY u, a LIMIT $3) s ON TRUE"
    );
    let sample = match mode {
        VerifyMode::Full => 0,
        VerifyMode::Sample(n) => i64::from(n.max(2) / 2),
    };
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(high_water)
        .bind(height)
        .bind(i64::from(max_samples));
    if matches!(mode, VerifyMode::Sample(_)) {
        q = q.bind(sample);
    }
    if let Some(status) = history.status_value() {
        q = q.bind(status);
    }
    let rows = q
        .fetch_all(&mut *tx)
        .await
        .map_err(db(format!("verify ({mode:?}) at #{height}")))?;
    tx.commit().await.map_err(db("end verify"))?;
    let mut report = VerifyReport {
        mode,
        height: u64::try_from(height).ok(),
        keys_checked: 0,
        mismatches: 0,
        samples: Vec::new(),
    };
    for r in &rows {
        report.keys_checked = r.try_get::<i64, _>("keys").map_err(db("read keys"))? as u64;
        report.mismatches = r.try_get::<i64, _>("bad").map_err(db("read mismatches"))? as u64;
        let user: Option<Vec<u8>> = r.try_get("u").map_err(db("read user"))?;
        let asset: Option<Vec<u8>> = r.try_get("a").map_err(db("read asset"))?;
        if let (Some(u), Some(a)) = (user, asset) {
            report.samples.push(Mismatch {
                user: Address::try_from(u.as_slice()).unwrap_or_default(),
                asset: Address::try_from(a.as_slice()).unwrap_or_default(),
                expected: r.try_get("net").map_err(db("read expected"))?,
                actual: r.try_get("balance").map_err(db("read actual"))?,
            });
        }
    }
    Ok(report)
}
