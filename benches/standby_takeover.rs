//! Standby take-over: two `reorg-collateral simulate --standby` processes contend for one
//! Postgres store; the active writer is killed (SIGKILL) 100 times, and hung (SIGSTOP)
//! 10 times, at pseudo-random moments. For each, the time from the writer's death (or
//! stop) to
//! - the standby's claim (its `claimed the writer` line), and
//! - the standby's first committed block: the store's checkpoint carries the new claim's
//!   fencing epoch and a head above the one the dead writer left (polled every
//!   millisecond on a connection of its own).
//!
//! Each take-over includes the standby's retry interval (50 ms), its claim, and
//! `simulate`'s replay of the scripted chain up to the stored head (what an RPC standby
//! spends re-reading the head instead). A hang is bounded by the writer lease (1 s here).
//!
//! `cargo bench --bench standby_takeover --features cli` (needs `DATABASE_URL`, default the
//! local test database); prints p50, p90 and max. Figures go to BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// Signalling a child of this process (the tests' helper, checked by
/// `tests/shared_servers.rs`).
#[path = "../tests/support/process.rs"]
mod process;

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");
const KILLS: usize = 100;
const HANGS: usize = 10;
const LEASE_MS: u64 = 1_000;
/// Longer than any run here: the script never ends under the bench.
const STEPS: &str = "100000";

fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The writer's URL: idle transactions of a hung writer end after the lease.
fn writer_url() -> String {
    let url = url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20idle_in_transaction_session_timeout%3D{LEASE_MS}")
}

/// One contending `simulate --standby` process.
struct Contender {
    child: Child,
    /// Its sessions' `application_name` (the CLI's `reorg-collateral/<pid>`).
    name: String,
    claimed: mpsc::Receiver<Instant>,
}

impl Contender {
    fn spawn(schema: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["--database-url", &writer_url(), "--schema", schema])
            .args(["simulate", "--seed", "11", "--steps", STEPS])
            .args(["--events", "6", "--users", "30", "--confirmations", "6"])
            .args(["--standby", "--writer-lease-ms", &LEASE_MS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn simulate --standby (build with --features cli)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, claimed) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "claimed the writer" {
                    let _ = tx.send(Instant::now());
                }
            }
        });
        Self {
            name: format!("reorg-collateral/{}", child.id()),
            child,
            claimed,
        }
    }

    fn signal(&self, signal: &str) {
        let ok = process::signal_child(&self.child, signal);
        assert!(ok, "kill {signal} {}", self.child.id());
    }

    /// SIGKILL (which ends a stopped process too) and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A panic of the bench leaves no contender running.
impl Drop for Contender {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The checkpoint's (head, writer epoch).
async fn checkpoint(conn: &mut PgConnection, schema: &str) -> (i64, i64) {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT COALESCE(head_number, -1), writer_epoch FROM {schema}.checkpoint"
    )))
    .fetch_one(conn)
    .await
    .expect("read the checkpoint")
}

/// Waits until a session named `name` is connected (the standby is contending).
async fn wait_connected(conn: &mut PgConnection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if n > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn summary(what: &str, v: &[Duration]) {
    let mut v = v.to_vec();
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "{what:<44} n {:>3}  p50 {:>8.1} ms  p90 {:>8.1} ms  max {:>8.1} ms",
        v.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("standby_takeover: bench");
        return;
    }
    let schema = format!("bench_standby_{}", std::process::id());
    let mut conn = PgConnection::connect(&url())
        .await
        .expect("Postgres reachable");
    let mut all = [Contender::spawn(&schema), Contender::spawn(&schema)];
    let mut active = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = (0..2).find(|&i| all[i].claimed.try_recv().is_ok()) {
                break i;
            }
            assert!(Instant::now() < deadline, "nobody claimed the writer");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (mut to_claim, mut to_commit) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut seed = 0x2545_f491_u64;
    let mut unmeasured = 0;
    for round in 0..KILLS + HANGS {
        let hang = round >= KILLS;
        let standby = 1 - active;
        wait_connected(&mut conn, &all[standby].name).await;
        // The writer has committed since it claimed, then runs a little longer.
        let start = checkpoint(&mut conn, &schema).await;
        while checkpoint(&mut conn, &schema).await.0 <= start.0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(seed % 50)).await;
        let before = checkpoint(&mut conn, &schema).await.1;
        let died = Instant::now();
        if hang {
            all[active].signal("-STOP");
        } else {
            all[active].kill();
        }
        // The dead writer's last head: read before the standby claims, else (this process
        // was descheduled that long) the round cannot tell the standby's first block.
        let (head, epoch) = checkpoint(&mut conn, &schema).await;
        if epoch > before {
            unmeasured += 1;
            all[standby]
                .claimed
                .recv_timeout(Duration::from_secs(60))
                .expect("the standby said it claimed");
            all[active].kill();
            all[active] = Contender::spawn(&schema);
            active = standby;
            continue;
        }
        let deadline = died + Duration::from_secs(60);
        let committed = loop {
            let (h, e) = checkpoint(&mut conn, &schema).await;
            if e > epoch && h > head {
                break Instant::now();
            }
            if Instant::now() > deadline {
                let sessions: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT application_name, COALESCE(state, ''),
                            COALESCE(wait_event_type || '/' || wait_event, ''), left(query, 80)
                     FROM pg_stat_activity WHERE application_name LIKE 'reorg-collateral/%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                panic!(
                    "no take-over in round {round} (stopped: {}, standby: {}): {sessions:#?}",
                    all[active].name, all[standby].name
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let claimed = all[standby]
            .claimed
            .recv_timeout(Duration::from_secs(10))
            .expect("the standby said it claimed");
        let kind = usize::from(hang);
        to_claim[kind].push(claimed.saturating_duration_since(died));
        to_commit[kind].push(committed.saturating_duration_since(died));
        all[active].kill();
        all[active] = Contender::spawn(&schema);
        active = standby;
    }
    for c in &mut all {
        c.kill();
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "standby take-over, {KILLS} kills and {HANGS} hangs (lease {LEASE_MS} ms), \
         {unmeasured} not measured (the standby claimed before the bench read the dead \
         writer's head); load {load}"
    );
    let [claim_kill, claim_hang] = to_claim;
    let [commit_kill, commit_hang] = to_commit;
    summary("SIGKILL -> standby's claim", &claim_kill);
    summary("SIGKILL -> standby's first committed block", &commit_kill);
    summary("SIGSTOP -> standby's claim", &claim_hang);
    summary("SIGSTOP -> standby's first committed block", &commit_hang);
    // The claim-to-commit part by round: `simulate` replays its script to the stored head
    // after the claim, which grows with the head.
    let gap = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        r.map(|i| commit_kill[i].saturating_sub(claim_kill[i]).as_secs_f64())
            .sum::<f64>()
            / n
            * 1e3
    };
    println!(
        "claim -> first commit, mean of kills 1-10: {:.1} ms, of kills 91-100: {:.1} ms",
        gap(0..10),
        gap(commit_kill.len() - 10..commit_kill.len())
    );
    conn.execute(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .await
    .expect("drop the bench schema");
}
