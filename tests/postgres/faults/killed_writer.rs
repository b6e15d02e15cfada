//! A writer process (the CLI's `simulate`) SIGKILLed at spread-out points of its run resumes
//! to the state of an uninterrupted run, which equals the replay oracle.

use crate::support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{EVENTS, STEPS, USERS, dump};
use reorg_collateral::model::BalanceKey;
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use sqlx::Executor;
use support::pg::{database_url, unique_schema_name};

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");
/// How long a writer may take to commit a few blocks on a busy machine before the test fails.
const PROGRESS: Duration = Duration::from_secs(120);

fn simulate(schema: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--database-url",
        &database_url(),
        "--schema",
        schema,
        "simulate",
    ])
    .args([
        "--seed",
        "7",
        "--steps",
        &STEPS.to_string(),
        "--events",
        &EVENTS.to_string(),
    ])
    .args(["--users", &USERS.to_string(), "--confirmations", "6"])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_resumes_to_the_uninterrupted_state() {
    let url = database_url();
    let (clean, crashed) = (unique_schema_name(), unique_schema_name());
    let out = simulate(&clean).output().expect("run uninterrupted writer");
    assert!(
        out.status.success(),
        "uninterrupted run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kill the writer (SIGKILL: no cleanup, transactions cut off) at spread-out points of
    // its progress: once it has committed `gap` more blocks since it started (so each kill
    // is mid-run however fast or busy the machine is), and at whatever point of a
    // transaction that finds it.
    let b = PostgresStore::connect_in_schema(&url, &crashed)
        .await
        .unwrap();
    let head = || async { b.window().await.unwrap().head().map(|h| h.number) };
    let mut kills = 0;
    for gap in [2u64, 7, 1, 11, 4, 16] {
        let start = head().await;
        let mut child = simulate(&crashed).spawn().expect("spawn writer");
        let deadline = Instant::now() + PROGRESS;
        loop {
            if child.try_wait().expect("poll writer").is_some() {
                break; // finished before this gap: nothing left to cut off
            }
            let now = head().await;
            if now >= start.map(|s| s + gap).or(Some(gap)) {
                child.kill().expect("kill writer");
                kills += 1;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the writer committed no {gap} blocks within {PROGRESS:?} (at {now:?})"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = child.wait();
    }
    let out = simulate(&crashed).output().expect("final run");
    assert!(
        out.status.success(),
        "resumed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kills >= 2,
        "the writer finished too fast to be killed mid-run ({kills} kills)"
    );

    let a = PostgresStore::connect_in_schema(&url, &clean)
        .await
        .unwrap();
    assert_eq!(
        dump(&a).await,
        dump(&b).await,
        "crashed-and-resumed run differs from the uninterrupted one"
    );

    // And both equal the replay oracle of the script's final chain.
    let mut script = ScriptedChain::new(
        7,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        ScriptedChain::demo_assets(),
    );
    for _ in 0..STEPS {
        script.step(EVENTS);
    }
    let canonical = script.chain.canonical();
    let fin = b.window().await.unwrap().finalized_number();
    assert_eq!(fin, Some(script.chain.head_number() - 6));
    let expected = replay(&canonical, fin);
    for i in 0..USERS {
        for asset in ScriptedChain::demo_assets() {
            let key = BalanceKey {
                user: ScriptedChain::demo_user(i),
                asset: asset.id,
            };
            assert_eq!(
                b.balance(key).await.unwrap(),
                expected.balance(&key),
                "balance {key:?}"
            );
        }
    }
    for schema in [clean, crashed] {
        let pool = a.pool();
        let _ = pool
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await;
    }
}
