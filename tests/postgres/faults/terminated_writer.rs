//! A writer process (the CLI's `simulate`) sent SIGTERM at 100 random moments stops
//! gracefully each time (its changeset finished, its writer claim released) and, run again,
//! resumes to the state of an uninterrupted run: nothing lost, nothing doubled.

use crate::support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::dump;
use reorg_collateral::store::PostgresStore;
use sqlx::Executor;
use support::pg::{database_url, unique_schema_name};

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");
const CYCLES: usize = 100;
const STEPS: &str = "150";
/// The signal number of SIGTERM (Linux).
const SIGTERM: i32 = 15;
/// What a run stopped by a signal says.
const STOPPED: &str = "stopped by a signal";

fn simulate(schema: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--database-url", &database_url(), "--schema", schema])
        .args(["simulate", "--seed", "11", "--steps", STEPS])
        .args(["--events", "5", "--users", "30", "--confirmations", "6"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child`, killing it (and failing) if it does not exit within a minute.
fn wait(mut child: std::process::Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll the writer").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: the writer did not exit within a minute of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child
        .wait_with_output()
        .expect("collect the writer's output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_at_random_points_stops_gracefully_and_resumes_losing_nothing() {
    let url = database_url();
    let (clean, stopped) = (unique_schema_name(), unique_schema_name());
    let started = Instant::now();
    let out = simulate(&clean)
        .output()
        .expect("run the uninterrupted writer");
    assert!(
        out.status.success(),
        "uninterrupted run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Signals land anywhere from before the first connection to well into a run (at most
    // a second, so the 100 cycles stay cheap).
    let span = (started.elapsed().as_micros() as u64 / 3).clamp(1, 1_000_000);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed}");
    let (mut graceful, mut early) = (0, 0);
    for cycle in 0..CYCLES {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % span);
        let child = simulate(&stopped).spawn().expect("spawn the writer");
        std::thread::sleep(delay);
        let _ = support::process::signal_child(&child, "-TERM");
        let out = wait(child, &format!("cycle {cycle}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            continue; // finished before the signal
        }
        if out.status.signal() == Some(SIGTERM) && stderr.is_empty() {
            // Before the process installed its handler (it does so before it connects):
            // the default action ended it with nothing started.
            early += 1;
            continue;
        }
        // A stop is graceful: no other error (a writer claim left behind would be
        // `WriterTaken` at the next start), exit code 1.
        assert!(
            stderr.contains(STOPPED) && out.status.code() == Some(1),
            "cycle {cycle} (SIGTERM after {delay:?}) did not stop gracefully: {:?} {stderr}",
            out.status
        );
        graceful += 1;
    }
    eprintln!(
        "{graceful} of {CYCLES} runs stopped by SIGTERM, {early} ended before their handler was in place, the others had finished"
    );
    assert!(graceful > 0, "no run was stopped by a signal");
    let out = simulate(&stopped).output().expect("final run");
    assert!(
        out.status.success(),
        "resumed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = PostgresStore::connect_in_schema(&url, &clean)
        .await
        .unwrap();
    let b = PostgresStore::connect_in_schema(&url, &stopped)
        .await
        .unwrap();
    assert_eq!(
        dump(&a).await,
        dump(&b).await,
        "the run stopped {graceful} times differs from the uninterrupted one"
    );
    for schema in [clean, stopped] {
        let _ = a
            .pool()
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await;
    }
}
