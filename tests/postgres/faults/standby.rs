//! A standby writer: two `simulate --standby` processes contend for one store while the
//! active one is killed (SIGKILL) or hung (SIGSTOP) at random moments, over and over; the
//! other takes over within a bound each time, a hung writer that comes back is fenced, and
//! the final state equals an uninterrupted run and the replay oracle.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::dump;
use reorg_collateral::model::BalanceKey;
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use sqlx::Executor;
use support::pg::{database_url, unique_schema_name};
use support::process::signal_child;

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");
const STEPS: usize = 600;
const EVENTS: usize = 6;
const USERS: usize = 30;
const KILLS: usize = 100;
/// The writer lease: a hung writer loses its claim after about this long.
const LEASE_MS: u64 = 1_000;
/// The bound on a take-over (the lease, the claim's lock wait and a process start, with a
/// wide margin for a busy machine).
const TAKE_OVER_BOUND: Duration = Duration::from_secs(20);
/// What a fenced writer says (`StoreError::WriterFenced`).
const FENCED: &str = "was taken over by another writer";
/// What a thawed writer says when the server had already ended its hung transaction
/// (`idle_in_transaction_session_timeout`, see [`writer_url`]): nothing of it committed
/// either, and the final state check below proves it.
const SESSION_ENDED: &str = "idle-in-transaction timeout";

/// The database URL with idle transactions of a hung writer ended after the lease.
fn writer_url() -> String {
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20idle_in_transaction_session_timeout%3D{LEASE_MS}")
}

fn simulate(schema: &str, standby: bool) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--database-url",
        &writer_url(),
        "--schema",
        schema,
        "simulate",
    ])
    .args(["--seed", "11", "--steps", &STEPS.to_string()])
    .args([
        "--events",
        &EVENTS.to_string(),
        "--users",
        &USERS.to_string(),
    ])
    .args(["--confirmations", "6"]);
    if standby {
        cmd.args(["--standby", "--writer-lease-ms", &LEASE_MS.to_string()]);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A contending process and the instant it said it claimed the writer.
struct Contender {
    child: Child,
    claimed: mpsc::Receiver<Instant>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Contender {
    fn spawn(schema: &str) -> Self {
        let mut child = simulate(schema, true).spawn().expect("spawn a standby");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, claimed) = mpsc::channel();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (errors, log) = (child.stderr.take().expect("piped stderr"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "claimed the writer" {
                    let _ = tx.send(Instant::now());
                }
            }
        });
        Self {
            child,
            claimed,
            stderr,
        }
    }

    fn kill(&mut self) {
        signal_child(&self.child, "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Next {
    /// Contender `i` claimed the writer at that instant.
    Claimed(usize, Instant),
    /// A contender played the whole script.
    Done,
}

/// Waits for one of `all` to claim the writer (or to finish the script).
fn next_claim(all: &mut [Contender]) -> Next {
    let deadline = Instant::now() + TAKE_OVER_BOUND * 2;
    loop {
        for (i, c) in all.iter_mut().enumerate() {
            if let Ok(at) = c.claimed.try_recv() {
                return Next::Claimed(i, at);
            }
            if matches!(c.child.try_wait(), Ok(Some(status)) if status.success()) {
                return Next::Done;
            }
        }
        assert!(Instant::now() < deadline, "nobody claimed the writer");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_from_killed_and_hung_writers() {
    let url = database_url();
    let (clean, contended) = (unique_schema_name(), unique_schema_name());
    let out = simulate(&clean, false).output().expect("uninterrupted run");
    assert!(out.status.success(), "uninterrupted run failed");

    let mut all = [Contender::spawn(&contended), Contender::spawn(&contended)];
    let (mut kills, mut hangs) = (0, 0);
    let mut take_overs = Vec::new();
    let mut seed = 0x2545_f491_u64;
    let mut lost_at: Option<Instant> = None;
    // The writer that took over from a hung one (its claim already seen).
    let mut known: Option<usize> = None;
    while kills + hangs < KILLS {
        let (active, at) = match known.take() {
            Some(active) => (active, Instant::now()),
            None => match next_claim(&mut all) {
                Next::Claimed(active, at) => (active, at),
                Next::Done => {
                    panic!("the script ended after {kills} kills and {hangs} hangs: too few steps")
                }
            },
        };
        if let Some(lost) = lost_at.take() {
            let took = at.saturating_duration_since(lost);
            assert!(took < TAKE_OVER_BOUND, "a take-over took {took:?}");
            take_overs.push(took);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 40));
        let pid = all[active].child.id();
        if (kills + hangs) % 10 == 9 {
            // Hung: the other must take over past the lease; the hung one, thawed, is fenced.
            assert!(
                signal_child(&all[active].child, "-STOP"),
                "SIGSTOP the writer {pid}"
            );
            lost_at = Some(Instant::now());
            let other = 1 - active;
            let deadline = Instant::now() + TAKE_OVER_BOUND;
            let at = loop {
                if let Ok(at) = all[other].claimed.try_recv() {
                    break at;
                }
                assert!(
                    Instant::now() < deadline,
                    "no take-over from a hung writer; the standby ({:?}) said: {}",
                    all[other].child.try_wait(),
                    all[other].stderr.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(2));
            };
            take_overs.push(at.saturating_duration_since(lost_at.take().unwrap()));
            signal_child(&all[active].child, "-CONT");
            let deadline = Instant::now() + TAKE_OVER_BOUND;
            let status = loop {
                if let Some(status) = all[active].child.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "the thawed writer went on writing"
                );
                std::thread::sleep(Duration::from_millis(5));
            };
            assert!(!status.success(), "a fenced writer must stop with an error");
            // It stopped because it was fenced, or because the server had already ended the
            // transaction it hung in (its stderr is read by a thread: wait for it).
            let deadline = Instant::now() + TAKE_OVER_BOUND;
            let stopped_safely = |e: &str| e.contains(FENCED) || e.contains(SESSION_ENDED);
            while !stopped_safely(&all[active].stderr.lock().unwrap()) {
                assert!(
                    Instant::now() < deadline,
                    "the thawed writer stopped, but not fenced: {}",
                    all[active].stderr.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            hangs += 1;
            all[active] = Contender::spawn(&contended);
            known = Some(other);
        } else {
            all[active].kill();
            lost_at = Some(Instant::now());
            kills += 1;
            all[active] = Contender::spawn(&contended);
        }
    }
    for c in &mut all {
        c.kill();
    }
    take_overs.sort();
    eprintln!(
        "{kills} kills, {hangs} hangs; take-over p50 {:?}, max {:?}",
        take_overs[take_overs.len() / 2],
        take_overs.last()
    );
    let out = simulate(&contended, false).output().expect("final run");
    assert!(out.status.success(), "final run failed");

    let a = PostgresStore::connect_in_schema(&url, &clean)
        .await
        .unwrap();
    let b = PostgresStore::connect_in_schema(&url, &contended)
        .await
        .unwrap();
    assert_eq!(dump(&a).await, dump(&b).await, "contended run differs");
    let mut script = ScriptedChain::new(
        11,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        ScriptedChain::demo_assets(),
    );
    for _ in 0..STEPS {
        script.step(EVENTS);
    }
    let fin = b.window().await.unwrap().finalized_number();
    let expected = replay(&script.chain.canonical(), fin);
    for i in 0..USERS {
        for asset in ScriptedChain::demo_assets() {
            let key = BalanceKey {
                user: ScriptedChain::demo_user(i),
                asset: asset.id,
            };
            assert_eq!(
                b.balance(key).await.unwrap(),
                expected.balance(&key),
                "{key:?}"
            );
        }
    }
    for schema in [clean, contended] {
        let _ = a
            .pool()
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await;
    }
}
