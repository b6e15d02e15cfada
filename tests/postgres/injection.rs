//! No value is pasted into SQL: a legacy mapping's status values are bound as parameters,
//! so a backslash payload cannot escape its literal even when the session runs with
//! `standard_conforming_strings = off` (a URL option or a role setting away).

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use reorg_collateral::migration::{
    Backfill, History, LegacyLog, ReadPath, StatusColumn, SwitchableReads, VerifyMode, verify,
};
use reorg_collateral::store::migrate;
use sqlx::PgPool;

use crate::support::legacy::{self, address};
use crate::support::pg;

/// A pool in a fresh schema whose sessions treat backslashes in plain literals as escapes.
async fn pool_without_standard_strings() -> PgPool {
    let schema = pg::fresh_schema().await;
    let pool = pg::connect(pg::schema_options(&schema).options([
        ("standard_conforming_strings", "off"),
        ("escape_string_warning", "off"),
    ]))
    .await;
    let setting: String = sqlx::query_scalar("SHOW standard_conforming_strings")
        .fetch_one(&pool)
        .await
        .expect("show");
    assert_eq!(
        setting, "off",
        "the session must run with the unsafe setting"
    );
    migrate(&pool).await.expect("migrate");
    pool
}

/// Confirmed rows carry the hostile status verbatim; pending and reverted rows carry large
/// amounts that must never be folded. Returns the expected confirmed balances.
async fn legacy_log(pool: &PgPool, confirmed: &str) -> BTreeMap<(Address, Address), U256> {
    legacy::create_table(pool, "legacy_log").await;
    sqlx::query(
        "INSERT INTO legacy_log
         SELECT g / 10, g % 10, '0x' || lpad(to_hex(g % 50), 40, '0'), '0x' || lpad(to_hex(160 + g % 2), 40, '0'),
                1 + g % 5,
                CASE WHEN g % 7 = 3 THEN 'pending' WHEN g % 11 = 4 THEN 'reverted' ELSE $1 END
         FROM generate_series(0, 999) AS g",
    )
    .bind(confirmed)
    .execute(pool)
    .await
    .expect("fill");
    let mut expected = BTreeMap::new();
    for g in 0..1000u64 {
        if g % 7 == 3 || g % 11 == 4 {
            continue;
        }
        *expected
            .entry((address(g % 50), address(160 + g % 2)))
            .or_insert(U256::ZERO) += U256::from(1 + g % 5);
    }
    expected
}

#[tokio::test]
async fn backslash_status_payloads_cannot_fold_pending_or_reverted_rows() {
    for payload in [
        "x\\' OR TRUE OR \\'",
        "confirmed\\",
        "\\' OR t.block_status <> \\'",
        "it's",
        "\\\\'; SELECT 1; --",
    ] {
        let pool = pool_without_standard_strings().await;
        let expected = legacy_log(&pool, payload).await;
        let mut mapping = LegacyLog::original_design("legacy_log");
        mapping.status = Some(StatusColumn {
            column: "block_status".into(),
            confirmed: payload.into(),
            pending: "pending".into(),
        });
        let history = History::Legacy(mapping);
        let backfill = Backfill::new(pool.clone(), history.clone());
        let state = backfill.start(None).await.expect("start");
        let expected_rows = 1000 - (0..1000u64).filter(|g| g % 7 == 3 || g % 11 == 4).count();
        assert_eq!(state.rows_total, expected_rows as u64, "{payload:?}");
        backfill.run(|_| {}).await.expect("backfill");
        // The log path folds the same rows the backfill did.
        let reads = SwitchableReads::new(pool.clone(), history.clone())
            .await
            .expect("reads");
        reads.set_path(ReadPath::Log);
        let from_log: BTreeMap<_, _> = reads
            .all_confirmed_balances()
            .await
            .expect("log path")
            .into_iter()
            .map(|(u, a, v)| ((u, a), v))
            .collect();
        assert_eq!(from_log, expected, "{payload:?}: the log path");
        reads.set_path(ReadPath::CurrentState);
        let current: BTreeMap<_, _> = reads
            .all_confirmed_balances()
            .await
            .expect("current path")
            .into_iter()
            .map(|(u, a, v)| ((u, a), v))
            .collect();
        assert_eq!(current, expected, "{payload:?}: the backfilled state");
        for mode in [VerifyMode::Full, VerifyMode::Sample(40)] {
            let report = verify(&pool, &history, mode, 5).await.expect("verify");
            assert!(report.is_clean(), "{payload:?} {mode:?}: {report:?}");
            assert!(report.keys_checked > 0, "{payload:?} {mode:?}");
        }
        // A mapping whose confirmed value matches nothing folds nothing: verify finds the
        // backfilled table disagreeing with an empty history, instead of folding every row.
        let mut wrong = LegacyLog::original_design("legacy_log");
        wrong.status = Some(StatusColumn {
            column: "block_status".into(),
            confirmed: format!("{payload}\\' OR TRUE OR \\'"),
            pending: "pending".into(),
        });
        let report = verify(&pool, &History::Legacy(wrong), VerifyMode::Full, 1)
            .await
            .expect("verify");
        assert_eq!(report.mismatches, expected.len() as u64, "{payload:?}");
        pool.close().await;
    }
}
