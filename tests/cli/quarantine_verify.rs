//! `verify` and a backfill of the crate's own log fold what the engine folded: the rows of
//! a quarantined asset from its faulting log to its resume were skipped by the engine, so
//! they are skipped by the log's fold too, and a store with a quarantine behind it verifies
//! clean (the CLI exits 0) and backfills to the same balances.

use alloy_primitives::U256;
use reorg_collateral::migration::{Backfill, History, Phase, VerifyMode, verify};
use reorg_collateral::model::BalanceKey;
use reorg_collateral::traits::BalanceReader;

use crate::quarantine_setup::{A, B, Running, USER, quarantined_at_head, running_watcher};
use crate::support::cli;

#[tokio::test]
async fn a_quarantine_behind_the_finalized_height_verifies_clean_and_backfills_the_same() {
    let Running {
        schema,
        store,
        chain,
        mut watcher,
    } = running_watcher().await;
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
        blk.deposit(B, USER, U256::from(7));
    });
    watcher.sync().await.expect("sync");
    // A debit larger than the balance quarantines A; the deposit after it in the same block
    // and the next block's are skipped, B goes on.
    chain.mine(|blk| {
        blk.withdraw(A, USER, U256::from(6));
        blk.deposit(A, USER, U256::from(1));
        blk.deposit(B, USER, U256::from(1));
    });
    watcher.sync().await.expect("a quarantine is not a stall");
    assert_eq!(quarantined_at_head(&store).await, vec![A]);
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(1));
    });
    watcher.sync().await.expect("sync");
    let out = cli::run(&schema, &["quarantine", "resume", &A.to_string()]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(3));
    });
    let report = watcher.sync().await.expect("sync");
    assert_eq!(report.resumed.len(), 1, "{report:?}");
    // Folds again from the block after the resume.
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(2));
    });
    for _ in 0..4 {
        chain.mine(|_| {});
    }
    watcher.sync().await.expect("sync");
    let a = BalanceKey {
        user: USER,
        asset: A,
    };
    let b = BalanceKey {
        user: USER,
        asset: B,
    };
    // 5 before the fault, the resume block's deposit skipped too (the resume sorts after
    // every log of its block), 2 after it.
    assert_eq!(store.balance(a).await.unwrap().confirmed, U256::from(7));
    assert_eq!(store.balance(b).await.unwrap().confirmed, U256::from(8));

    let pool = store.pool().clone();
    for mode in [VerifyMode::Full, VerifyMode::Sample(10)] {
        let report = verify(&pool, &History::CrateLog, mode, 5)
            .await
            .expect("verify");
        assert!(report.is_clean(), "{mode:?}: {report:?}");
        assert!(report.keys_checked >= 1, "{mode:?}: {report:?}");
    }
    let verified = cli::run(&schema, &["verify"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "verify clean exits 0: {}",
        cli::stderr(&verified)
    );

    // Lose the confirmed rows and rebuild them from the log: the same balances.
    sqlx::query("DELETE FROM user_current_balances WHERE block_status = 1")
        .execute(&pool)
        .await
        .expect("lose confirmed rows");
    let backfill = Backfill::new(pool.clone(), History::CrateLog);
    backfill.start(None).await.expect("start");
    let done = backfill.run(|_| {}).await.expect("backfill");
    assert_eq!(done.phase, Phase::Done);
    assert_eq!(store.balance(a).await.unwrap().confirmed, U256::from(7));
    assert_eq!(store.balance(b).await.unwrap().confirmed, U256::from(8));
}
