//! The migration toolkit against a real Postgres: backfill of a 1,000,000-event legacy log,
//! a backfill killed half-way (a SIGKILLed CLI process, aborted tasks) resuming to the same
//! result, and a backfill concurrent with a live watcher that sees reorgs, dual-writing a
//! legacy table, ending with `verify` clean and every balance equal to the replay oracle.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use reorg_collateral::migration::{
    AddressEncoding, AmountColumns, Backfill, BackfillConfig, History, LegacyLog, MigratingStore,
    Phase, ReadPath, StatusColumn, SwitchableReads, VerifyMode, load_state, verify,
};
use reorg_collateral::model::{AssetRegistry, BalanceKey, Effect};
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::{AssertSqlSafe, PgPool};
use support::cli;
use support::legacy::{self, address};
use support::pg::{fresh_pool, schema_of};
use support::redis::redis_url;

/// Fills the original design's log shape with `rows` confirmed rows over 10,000 users and
/// 3 assets (a key's events alternate a credit of 1000 + g % 7 and a debit of 500, so no
/// balance goes negative), plus pending and reverted rows the backfill must ignore.
/// Returns the expected balance of each key, computed here in Rust.
async fn legacy_log(pool: &PgPool, rows: u64) -> BTreeMap<(Address, Address), U256> {
    legacy::create_table(pool, "legacy_log").await;
    legacy::fill_confirmed(pool, rows).await;
    // Rows that are not confirmed history: a pending block above and a reverted one.
    sqlx::query(
        "INSERT INTO legacy_log VALUES
         ($1, 0, '0x' || lpad(to_hex(1), 40, '0'), '0x' || lpad(to_hex(160), 40, '0'), 999999, 'pending'),
         (3, 999, '0x' || lpad(to_hex(2), 40, '0'), '0x' || lpad(to_hex(161), 40, '0'), 777777, 'reverted')",
    )
    .bind((rows / 200 + 1) as i64)
    .execute(pool)
    .await
    .expect("add non-confirmed rows");
    sqlx::query("CREATE INDEX legacy_log_block ON legacy_log (block_number)")
        .execute(pool)
        .await
        .expect("index legacy_log");
    let mut expected: BTreeMap<(Address, Address), U256> = BTreeMap::new();
    for g in 0..rows {
        let key = (address(g % 10_000), address(160 + g % 3));
        let b = expected.entry(key).or_default();
        if (g / 30_000) % 2 == 0 {
            *b += U256::from(1000 + g % 7);
        } else {
            *b -= U256::from(500);
        }
    }
    expected.retain(|_, v| !v.is_zero());
    expected
}

async fn all_current(pool: &PgPool) -> BTreeMap<(Address, Address), U256> {
    let reads = SwitchableReads::new(pool.clone(), History::CrateLog)
        .await
        .expect("reads");
    reads.set_path(ReadPath::CurrentState);
    reads
        .all_confirmed_balances()
        .await
        .expect("read current state")
        .into_iter()
        .map(|(u, a, v)| ((u, a), v))
        .collect()
}

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

/// Every balance the oracle knows, read through the migrating store, equals the oracle's.
async fn check(
    label: &str,
    script: &ScriptedChain,
    finalized: Option<u64>,
    migrating: &MigratingStore,
) {
    let oracle = replay(&script.chain.canonical(), finalized);
    let keys: BTreeSet<BalanceKey> = oracle
        .pending
        .keys()
        .chain(oracle.confirmed.keys())
        .copied()
        .collect();
    for key in keys {
        assert_eq!(
            migrating.balance(key).await.expect("balance"),
            oracle.balance(&key),
            "{label}: {key:?}"
        );
    }
}

/// A legacy table shaped differently from the original design: raw-byte addresses, kind
/// codes with absolute "set" events, its own column names.
fn kind_mapped(table: &str) -> LegacyLog {
    LegacyLog {
        table: table.to_owned(),
        block_number: "blk".into(),
        log_index: Some("logi".into()),
        tx_hash: Some("tx".into()),
        user: "holder".into(),
        asset: "token".into(),
        encoding: AddressEncoding::Bytea,
        amount: AmountColumns::Kind {
            kind: "op".into(),
            amount: "qty".into(),
            credit: 10,
            debit: 20,
            set: 30,
        },
        status: Some(StatusColumn {
            column: "state".into(),
            confirmed: "final".into(),
            pending: "unconfirmed".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_concurrent_with_a_live_watcher_through_reorgs_verifies_clean() {
    let pool = fresh_pool().await;
    let legacy = kind_mapped("ledger");
    sqlx::query(
        "CREATE TABLE ledger (blk BIGINT NOT NULL, logi BIGINT NOT NULL, tx BYTEA, holder BYTEA NOT NULL,
         token BYTEA NOT NULL, op SMALLINT NOT NULL, qty NUMERIC NOT NULL, state TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create ledger");
    sqlx::query("CREATE INDEX ledger_blk ON ledger (blk)")
        .execute(&pool)
        .await
        .expect("index ledger");

    // The legacy era: blocks up to H, written to the ledger by "the old system".
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("assets");
    let users = (0..25).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(11, 1, users, assets);
    for _ in 0..40 {
        script.step(12);
    }
    // Reorgs are at most 2 deep: blocks 5 below the head never change again.
    let high_water = script.chain.head_number() - 5;
    let mut legacy_rows = 0;
    for block in script.chain.canonical() {
        if block.header.number > high_water {
            break;
        }
        for event in &block.events {
            for (key, effect) in event.effects() {
                let (op, qty) = match effect {
                    Effect::Credit(a) => (10i16, a),
                    Effect::Debit(a) => (20, a),
                    Effect::Set(a) => (30, a),
                };
                sqlx::query(
                    "INSERT INTO ledger VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, 'final')",
                )
                .bind(block.header.number as i64)
                .bind(event.log.log_index as i64)
                .bind(event.log.tx_hash.as_slice())
                .bind(key.user.as_slice())
                .bind(key.asset.as_slice())
                .bind(op)
                .bind(qty.to_string())
                .execute(&pool)
                .await
                .expect("legacy row");
                legacy_rows += 1;
            }
        }
    }
    assert!(legacy_rows > 300);

    // The new system: dual-write into the ledger, watcher from H + 1 on a MigratingStore.
    let history = History::Legacy(legacy.clone());
    let backfill = Backfill::new(pool.clone(), history.clone()).with_config(BackfillConfig {
        chunk_rows: 25,
        merge_keys: 4,
    });
    let state = backfill.start(Some(high_water)).await.expect("start");
    assert_eq!(state.rows_total, legacy_rows);
    let store = PostgresStore::new(pool.clone())
        .with_legacy_log(legacy.clone())
        .expect("mapping");
    store.register_assets(&registry).await.expect("register");
    let migrating = Arc::new(
        MigratingStore::new(store.clone(), history.clone())
            .await
            .expect("migrating store"),
    );
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 3));
    config.start_block = high_water + 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), migrating.clone())
        .await
        .expect("watcher");

    // Phase 1: the watcher alone; every balance comes out right through the fallback.
    for _ in 0..15 {
        script.step(12);
        watcher.sync().await.expect("sync");
    }
    check(
        "before the backfill",
        &script,
        watcher.window().finalized_number(),
        &migrating,
    )
    .await;

    // Phase 2: backfill and watcher at once; the watcher sees reorgs meanwhile.
    let runner = backfill.clone();
    let backfilling = tokio::spawn(async move { runner.run(|_| {}).await });
    let mut reorgs = 0;
    for _ in 0..40 {
        script.step(12);
        reorgs += watcher.sync().await.expect("sync").reverted;
        tokio::task::yield_now().await;
    }
    let done = backfilling.await.expect("join").expect("backfill");
    assert_eq!(done.phase, Phase::Done);
    assert!(reorgs > 0, "the watcher saw reorgs");
    for _ in 0..5 {
        script.step(12);
        watcher.sync().await.expect("sync");
    }
    check(
        "after the backfill",
        &script,
        watcher.window().finalized_number(),
        &migrating,
    )
    .await;

    // The inner store alone (no fallback) holds every balance now.
    let finalized = watcher.window().finalized_number();
    let oracle = replay(&script.chain.canonical(), finalized);
    for key in oracle.pending.keys().chain(oracle.confirmed.keys()) {
        assert_eq!(
            store.balance(*key).await.expect("balance"),
            oracle.balance(key),
            "{key:?}"
        );
    }
    let report = verify(&pool, &history, VerifyMode::Full, 5)
        .await
        .expect("verify");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.height, finalized);

    // Dual-write: the ledger holds exactly the canonical chain's effects, reverted forks
    // deleted, finalized ones marked final.
    let mut effects_final = 0i64;
    let mut effects_pending = 0i64;
    for block in script.chain.canonical() {
        let n = block
            .events
            .iter()
            .map(|e| e.effects().count() as i64)
            .sum::<i64>();
        if finalized.is_some_and(|f| block.header.number <= f) {
            effects_final += n;
        } else {
            effects_pending += n;
        }
    }
    let count = |state: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
                "SELECT count(*) FROM ledger WHERE state = '{state}'"
            )))
            .fetch_one(&pool)
            .await
            .expect("count ledger")
        }
    };
    assert_eq!(count("final").await, effects_final);
    assert_eq!(count("unconfirmed").await, effects_pending);
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

#[tokio::test]
async fn the_cli_documents_its_subcommands_and_rebuilds_the_cache() {
    let help = Command::new(cli::BIN).arg("--help").output().expect("help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for sub in [
        "migrate",
        "simulate",
        "backfill",
        "verify",
        "cutover",
        "rebuild-cache",
    ] {
        assert!(text.contains(sub), "--help lists {sub}: {text}");
    }
    let bad = Command::new(cli::BIN)
        .arg("frobnicate")
        .output()
        .expect("usage");
    assert_eq!(bad.status.code(), Some(2), "bad usage exits 2");

    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let run = |args: &[&str]| cli::run(&schema, args);
    let sim = run(&["simulate", "--steps", "30", "--users", "12"]);
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let redis_url = redis_url();
    let prefix = format!("test_cli_{schema}");
    let out = run(&[
        "rebuild-cache",
        "--redis-url",
        &redis_url,
        "--prefix",
        &prefix,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rebuilt the cache of 12 users"), "{text}");
    let cache = reorg_collateral::cache::RedisCollateralCache::connect(&redis_url, &prefix)
        .await
        .expect("Redis reachable");
    use reorg_collateral::CollateralCache;
    let entry = cache
        .get(ScriptedChain::demo_user(0))
        .await
        .expect("get")
        .expect("the user is cached");
    assert!(!entry.assets.is_empty());
    cache.clear().await.expect("clear");
    // A crate-native store verifies clean without any migration.
    let verified = run(&["verify"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
