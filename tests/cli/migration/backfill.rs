//! Backfill of a 1,000,000-event legacy log: progress, `verify` (full, sampled, a corrupted
//! row), the read-path cutover, and the refusals (another history, cutover before done).

use crate::support;

use super::{all_current, legacy_log};
use alloy_primitives::U256;
use reorg_collateral::migration::{
    Backfill, History, LegacyLog, Phase, ReadPath, SwitchableReads, VerifyMode, verify,
};
use support::legacy::address;
use support::pg::fresh_pool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_million_event_log_verifies_clean_and_cuts_over() {
    let pool = fresh_pool().await;
    let expected = legacy_log(&pool, 1_000_000).await;
    let history = History::Legacy(LegacyLog::original_design("legacy_log"));

    let backfill = Backfill::new(pool.clone(), history.clone());
    let state = backfill.start(None).await.expect("start");
    assert_eq!(state.high_water, 4_999, "newest confirmed block");
    assert_eq!(
        state.rows_total, 1_000_000,
        "pending and reverted rows excluded"
    );
    let mut seen = Vec::new();
    let done = backfill
        .run(|p| seen.push(p.clone()))
        .await
        .expect("backfill");
    assert_eq!(done.phase, Phase::Done);
    assert_eq!(done.rows_folded, 1_000_000);
    assert_eq!(done.keys_merged, 30_000);
    assert!(
        seen.len() > 4,
        "progress reported per chunk: {}",
        seen.len()
    );
    assert!(
        seen.windows(2)
            .all(|w| w[0].rows_folded <= w[1].rows_folded),
        "progress never goes back"
    );

    assert_eq!(
        all_current(&pool).await,
        expected,
        "the oracle computed in Rust"
    );
    let full = verify(&pool, &history, VerifyMode::Full, 10)
        .await
        .expect("verify");
    assert!(full.is_clean(), "{full:?}");
    assert_eq!(full.keys_checked, 30_000);
    let sampled = verify(&pool, &history, VerifyMode::Sample(200), 10)
        .await
        .expect("sample");
    assert!(
        sampled.is_clean() && sampled.keys_checked > 50,
        "{sampled:?}"
    );

    // Running it again is a no-op.
    let again = backfill.run(|_| {}).await.expect("rerun");
    assert_eq!(again.keys_merged, 30_000);
    assert_eq!(all_current(&pool).await, expected);

    // The read-path switch: both paths agree; the log path is the legacy one.
    let reads = SwitchableReads::new(pool.clone(), history.clone())
        .await
        .expect("reads");
    assert_eq!(reads.path(), ReadPath::Log, "before the cutover");
    let user = address(42);
    let via_log = reads.confirmed_balances(user).await.expect("log path");
    reads
        .cutover(ReadPath::CurrentState)
        .await
        .expect("cutover");
    let other = SwitchableReads::new(pool.clone(), history.clone())
        .await
        .expect("reads");
    assert_eq!(other.path(), ReadPath::CurrentState, "the flag is shared");
    let via_table = reads.confirmed_balances(user).await.expect("table path");
    assert_eq!(via_log, via_table);
    assert_eq!(via_table.len(), 3);

    // A corrupted row is reported with its values, by user and asset.
    sqlx::query(
        "UPDATE user_current_balances SET balance = balance + 1 WHERE user_address = $1 AND asset = $2",
    )
    .bind(user.as_slice())
    .bind(address(160).as_slice())
    .execute(&pool)
    .await
    .expect("corrupt");
    let bad = verify(&pool, &history, VerifyMode::Full, 10)
        .await
        .expect("verify");
    assert_eq!(bad.mismatches, 1);
    assert_eq!(bad.samples[0].user, user);
    let want = expected[&(user, address(160))];
    assert_eq!(bad.samples[0].expected, want.to_string());
    assert_eq!(bad.samples[0].actual, (want + U256::from(1)).to_string());
}

#[tokio::test]
async fn cutover_refuses_a_history_other_than_the_backfilled_one() {
    use reorg_collateral::migration::MigrationError;
    let pool = fresh_pool().await;
    legacy_log(&pool, 1_000).await;
    let legacy = History::Legacy(LegacyLog::original_design("legacy_log"));
    let backfill = Backfill::new(pool.clone(), legacy.clone());
    backfill.start(None).await.expect("start");
    assert_eq!(backfill.run(|_| {}).await.expect("run").phase, Phase::Done);
    for other in [
        History::CrateLog,
        History::Legacy(LegacyLog::original_design("another_log")),
    ] {
        let reads = SwitchableReads::new(pool.clone(), other.clone())
            .await
            .expect("reads");
        for path in [ReadPath::CurrentState, ReadPath::Log] {
            let err = reads.cutover(path).await.expect_err("another history");
            match &err {
                MigrationError::CutoverOfOtherHistory { backfilled, asked } => {
                    assert_eq!(backfilled, &legacy.describe(), "{err}");
                    assert_eq!(asked, &other.describe(), "{err}");
                }
                e => panic!("expected CutoverOfOtherHistory, got {e:?}"),
            }
        }
        assert_eq!(
            reads.refresh().await.expect("refresh"),
            ReadPath::Log,
            "the flag is unchanged"
        );
    }
    let reads = SwitchableReads::new(pool.clone(), legacy.clone())
        .await
        .expect("reads");
    reads
        .cutover(ReadPath::CurrentState)
        .await
        .expect("the backfilled history cuts over");
}

#[tokio::test]
async fn a_second_backfill_of_another_history_is_refused_and_cutover_waits_for_done() {
    let pool = fresh_pool().await;
    legacy_log(&pool, 1_000).await;
    let legacy = History::Legacy(LegacyLog::original_design("legacy_log"));
    Backfill::new(pool.clone(), legacy.clone())
        .start(None)
        .await
        .expect("start");
    let other = Backfill::new(pool.clone(), History::CrateLog)
        .start(None)
        .await;
    assert!(
        matches!(
            other,
            Err(reorg_collateral::migration::MigrationError::OtherHistory { .. })
        ),
        "{other:?}"
    );
    let reads = SwitchableReads::new(pool.clone(), legacy.clone())
        .await
        .expect("reads");
    assert!(reads.cutover(ReadPath::CurrentState).await.is_err());
    assert_eq!(reads.path(), ReadPath::Log);
    let bad = LegacyLog {
        user: "user address".into(),
        ..LegacyLog::original_design("legacy_log")
    };
    assert!(
        Backfill::new(pool.clone(), History::Legacy(bad))
            .start(None)
            .await
            .is_err()
    );
}
