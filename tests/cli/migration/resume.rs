//! A backfill cut off half-way resumes to the same result: a SIGKILLed CLI process on a
//! legacy log, and aborted tasks (connections dropped mid-transaction) on the crate's log.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use super::{all_current, legacy_log};
use reorg_collateral::migration::{
    Backfill, BackfillConfig, History, Phase, VerifyMode, load_state, verify,
};
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::cli;
use support::pg::{fresh_pool, schema_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backfill_process_resumes_to_the_same_result() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let expected = legacy_log(&pool, 300_000).await;
    let cli = |args: &[&str]| {
        let mut c = cli::command(&schema);
        c.args(args).args(["--legacy-table", "legacy_log"]);
        c
    };
    let mut child = cli(&["backfill", "--chunk-rows", "4000", "--merge-keys", "500"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn backfill");
    // Kill it once it has folded part of the log, mid-run.
    let mut killed_at = None;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(s) = load_state(&pool).await.expect("state")
            && s.rows_folded >= 60_000
        {
            killed_at = Some(s);
            break;
        }
    }
    child.kill().expect("SIGKILL the backfill");
    let _ = child.wait();
    let killed_at = killed_at.expect("the backfill made progress");
    assert!(
        killed_at.phase == Phase::Folding && killed_at.rows_folded < 300_000,
        "killed half-way: {killed_at:?}"
    );
    let resumed = load_state(&pool).await.expect("state").expect("started");
    assert!(resumed.rows_folded >= killed_at.rows_folded);

    let status = cli(&["backfill"]).output().expect("resume");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let state = load_state(&pool).await.expect("state").expect("started");
    assert_eq!(state.phase, Phase::Done);
    assert_eq!(
        state.rows_folded, 300_000,
        "no chunk folded twice or skipped"
    );
    assert_eq!(all_current(&pool).await, expected);

    let verified = cli(&["verify"]).output().expect("verify");
    assert_eq!(verified.status.code(), Some(0), "verify clean exits 0");
    sqlx::query("DELETE FROM user_confirmed_balances WHERE ctid IN (SELECT ctid FROM user_confirmed_balances LIMIT 2)")
        .execute(&pool)
        .await
        .expect("lose two rows");
    let verified = cli(&["verify", "--show", "5"]).output().expect("verify");
    assert_eq!(verified.status.code(), Some(3), "mismatches exit 3");
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(out.contains("2 mismatches"), "{out}");
}

/// A backfill SIGKILLed while it builds the history's key index: the server may go on
/// building for the dead client, and the immediate restart must still succeed (it used to
/// fail on the orphaned build: a lock timeout or a duplicate index name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_during_its_index_build_restarts_at_once() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let expected = legacy_log(&pool, 1_000_000).await;
    let cli = |args: &[&str]| {
        let mut c = cli::command(&schema);
        c.args(args).args(["--legacy-table", "legacy_log"]);
        c
    };
    let mut child = cli(&["backfill"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn backfill");
    let application_name = format!("reorg-collateral/{}", child.id());
    let mut building = false;
    for _ in 0..3_000 {
        building = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               JOIN pg_stat_activity a ON a.pid = p.pid WHERE a.application_name = $1)",
        )
        .bind(&application_name)
        .fetch_one(&pool)
        .await
        .expect("look for the index build");
        if building || child.try_wait().expect("child status").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL the backfill");
    let _ = child.wait();
    assert!(building, "the backfill was killed during its index build");

    let restarted = cli(&["backfill"]).output().expect("restart");
    assert!(
        restarted.status.success(),
        "the immediate restart: {}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    let state = load_state(&pool).await.expect("state").expect("started");
    assert_eq!((state.phase, state.rows_folded), (Phase::Done, 1_000_000));
    assert_eq!(all_current(&pool).await, expected);
    let valid: bool = sqlx::query_scalar(
        "SELECT bool_and(i.indisvalid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relname = 'legacy_log_migration_key' AND c.relnamespace = current_schema()::regnamespace",
    )
    .fetch_one(&pool)
    .await
    .expect("the key index");
    assert!(valid, "the key index exists and is valid");
    let verified = cli(&["verify"]).output().expect("verify");
    assert_eq!(verified.status.code(), Some(0), "verify clean");
}

/// The crate's own log as the history: confirmed rows lost, rebuilt by a backfill whose
/// task is aborted (its connection dropped mid-transaction) at random points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_backfill_of_the_crate_log_resumes_to_the_oracle_state() {
    let pool = fresh_pool().await;
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("assets");
    store.register_assets(&registry).await.expect("register");
    let users = (0..40).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(7, 1, users, assets);
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 4));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await
        .expect("watcher");
    for _ in 0..80 {
        script.step(15);
        watcher.sync().await.expect("sync");
    }
    let finalized = watcher.window().finalized_number();
    let oracle = replay(&script.chain.canonical(), finalized);
    // Lose the confirmed state; the pending rows of the window stay.
    sqlx::query("DELETE FROM user_current_balances WHERE block_status = 1")
        .execute(&pool)
        .await
        .expect("lose confirmed rows");
    let backfill = Backfill::new(pool.clone(), History::CrateLog).with_config(BackfillConfig {
        chunk_rows: 40,
        merge_keys: 7,
    });
    let state = backfill.start(None).await.expect("start");
    assert_eq!(Some(state.high_water), finalized);
    let mut aborted = 0;
    for delay_ms in [3u64, 11, 5, 17, 2, 23, 8] {
        let b = backfill.clone();
        let task = tokio::spawn(async move { b.run(|_| {}).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if !task.is_finished() {
            task.abort();
            aborted += 1;
        }
        let _ = task.await;
    }
    let done = backfill.run(|_| {}).await.expect("finish");
    assert_eq!(done.phase, Phase::Done);
    assert!(aborted > 0, "at least one run was cut off");
    for key in oracle.pending.keys().chain(oracle.confirmed.keys()) {
        assert_eq!(
            store.balance(*key).await.expect("balance"),
            oracle.balance(key),
            "{key:?}"
        );
    }
    assert_eq!(done.rows_folded, state.rows_total);
    let report = verify(&pool, &History::CrateLog, VerifyMode::Full, 5)
        .await
        .expect("verify");
    assert!(report.is_clean(), "{report:?}");
}
