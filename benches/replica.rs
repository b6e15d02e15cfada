//! Reads from a streaming read replica while the primary ingests, against reads from the
//! primary, in one run: per-read latency (p50 / p99 / max) of a consistent collateral read
//! of one user, and the primary's ingest rate alone, with primary readers and with replica
//! readers.
//!
//! The primary and the replica are private clusters of the test support
//! (`tests/support/pg_replica.rs`: initdb on a free loopback port, `pg_basebackup -R`,
//! `fsync=off`), both on this machine: replica readers still share its cores with the
//! writer and the primary, so "ingest unchanged" here measures the primary's locks and I/O,
//! not CPU, which a replica on another host would take away too.
//!
//! A primary read is `CollateralReader::collateral_snapshot(&[user])` (head state, balances,
//! prices, head state again: four statements); a replica read is
//! `PostgresReplica::collateral(&valuator, &[user])` (one `REPEATABLE READ READ ONLY`
//! transaction: lag, head state, balances, prices, commit), both labelled with one state.
//!
//! Replica readers run twice: flat out (each task reads again as soon as a read returns:
//! what bounds them is the CPU the primary, the replica and the readers share on one
//! machine) and at a fixed rate (`READ_RATE` reads per second in all, spread over the
//! tasks: a realistic load, whose effect on the primary's ingest is what "unchanged within
//! 10 %" asks about).
//!
//! `cargo bench --bench replica --features postgres`
//! (`USERS` default 10000, `STEPS` default 150 blocks per phase, `EVENTS` default 200 per
//! block, `READERS` default 2 reader tasks, `READ_RATE` default 500 reads/s.)

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reorg_collateral::model::AssetRegistry;
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::{PostgresReplica, PostgresStore, ReplicaOptions};
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::pg_replica::PrivatePostgresReplica;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Replica reads per second of the fixed-rate phase, all tasks together (env `READ_RATE`).
const READ_RATE: u64 = 500;

#[derive(Clone, Copy, PartialEq)]
enum Readers {
    None,
    Primary,
    Replica,
    /// Replica readers at `READ_RATE` reads per second in all.
    ReplicaAtRate(u64),
}

impl Readers {
    fn name(self) -> &'static str {
        match self {
            Readers::None => "no readers",
            Readers::Primary => "readers on the primary",
            Readers::Replica => "readers on the replica",
            Readers::ReplicaAtRate(_) => "replica, fixed rate",
        }
    }
}

/// One phase's figures: the ingest rate and the readers' latencies (sorted).
struct Phase {
    blocks_per_s: f64,
    latencies: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    readers: Readers,
    script: &mut ScriptedChain,
    watcher: &mut Watcher,
    store: &Arc<PostgresStore>,
    replica: &PostgresReplica,
    valuator: &Valuator,
    users: u64,
    steps: u64,
    events: usize,
    reader_tasks: u64,
) -> Phase {
    let done = Arc::new(AtomicBool::new(false));
    let seed = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    if readers != Readers::None {
        for _ in 0..reader_tasks {
            let (done, seed) = (done.clone(), seed.clone());
            let primary = CollateralReader::new(store.clone(), valuator.clone());
            let (replica, valuator) = (replica.clone(), valuator.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut pace = match readers {
                    Readers::ReplicaAtRate(rate) => {
                        let period = Duration::from_secs_f64(reader_tasks as f64 / rate as f64);
                        let mut pace = tokio::time::interval(period);
                        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        Some(pace)
                    }
                    _ => None,
                };
                while !done.load(Ordering::Relaxed) {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    let n = seed.fetch_add(7919, Ordering::Relaxed) % users;
                    let user = ScriptedChain::demo_user(n as usize);
                    let start = Instant::now();
                    match readers {
                        Readers::Primary => {
                            primary
                                .collateral_snapshot(&[user])
                                .await
                                .expect("primary read");
                        }
                        _ => {
                            replica
                                .collateral(&valuator, &[user])
                                .await
                                .expect("replica read");
                        }
                    }
                    latencies.push(start.elapsed());
                }
                latencies
            }));
        }
    }
    let start = Instant::now();
    for _ in 0..steps {
        script.step(events);
        watcher.sync().await.expect("ingest");
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    Phase {
        blocks_per_s: steps as f64 / elapsed.as_secs_f64(),
        latencies,
    }
}

fn main() {
    let users = env("USERS", 10_000);
    let steps = env("STEPS", 150);
    let events = env("EVENTS", 200) as usize;
    let reader_tasks = env("READERS", 2);
    let read_rate = env("READ_RATE", READ_RATE).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = PrivatePostgresReplica::start();
    rt.block_on(async {
        let schema = format!("bench_replica_{}", std::process::id());
        let store = Arc::new(
            PostgresStore::connect_in_schema(&cluster.primary_url(), &schema)
                .await
                .expect("connect to the private primary"),
        );
        let assets = ScriptedChain::demo_assets();
        let mut script = ScriptedChain::new(
            42,
            1,
            (0..users as usize).map(ScriptedChain::demo_user).collect(),
            assets.clone(),
        );
        let mut config =
            WatcherConfig::new(EngineConfig::new(AssetRegistry::new(assets).unwrap(), 6));
        config.start_block = 1;
        // Every user holds something before the measured phases.
        script.step(users as usize);
        let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
            .await
            .unwrap();
        watcher.sync().await.unwrap();
        for _ in 0..20 {
            script.step(events);
            watcher.sync().await.unwrap();
        }
        cluster.wait_caught_up().await;
        let replica = PostgresReplica::open(
            &cluster.replica_url(),
            &ReplicaOptions {
                schema: Some(schema),
                ..Default::default()
            },
        )
        .await
        .expect("open the replica");
        let valuator = watcher.valuator().clone();
        println!(
            "replica bench: {users} users, {steps} blocks of {events} events per phase, {reader_tasks} reader tasks, fixed rate {read_rate} reads/s"
        );
        let mut results = Vec::new();
        // Ingest slows as the store grows: each reader phase is compared with the mean of
        // the reader-less phases on either side of it.
        for readers in [
            Readers::None,
            Readers::Primary,
            Readers::None,
            Readers::Replica,
            Readers::None,
            Readers::ReplicaAtRate(read_rate),
            Readers::None,
        ] {
            let p = phase(
                readers,
                &mut script,
                &mut watcher,
                &store,
                &replica,
                &valuator,
                users,
                steps,
                events,
                reader_tasks,
            )
            .await;
            println!(
                "{:<24} ingest {:>7.1} blocks/s   reads {:>6}  p50 {:>9}  p99 {:>9}  max {:>9}",
                readers.name(),
                p.blocks_per_s,
                p.latencies.len(),
                ms(pct(&p.latencies, 0.5)),
                ms(pct(&p.latencies, 0.99)),
                ms(p.latencies.last().copied().unwrap_or_default()),
            );
            results.push((readers, p));
        }
        let rate = |i: usize| results[i].1.blocks_per_s;
        let (primary, replica, paced) = (&results[1].1, &results[3].1, &results[5].1);
        println!(
            "p99 replica / primary: {:.2}x   p50: {:.2}x",
            pct(&replica.latencies, 0.99).as_secs_f64() / pct(&primary.latencies, 0.99).as_secs_f64(),
            pct(&replica.latencies, 0.5).as_secs_f64() / pct(&primary.latencies, 0.5).as_secs_f64(),
        );
        println!(
            "p99 fixed-rate replica / primary: {:.2}x   p50: {:.2}x   ({:.0} reads/s achieved)",
            pct(&paced.latencies, 0.99).as_secs_f64() / pct(&primary.latencies, 0.99).as_secs_f64(),
            pct(&paced.latencies, 0.5).as_secs_f64() / pct(&primary.latencies, 0.5).as_secs_f64(),
            paced.latencies.len() as f64 * paced.blocks_per_s / steps as f64,
        );
        println!(
            "ingest with replica readers / alone: {:.2}x   with primary readers / alone: {:.2}x   with replica readers at {read_rate}/s / alone: {:.2}x",
            rate(3) / ((rate(2) + rate(4)) / 2.0),
            rate(1) / ((rate(0) + rate(2)) / 2.0),
            rate(5) / ((rate(4) + rate(6)) / 2.0),
        );
    });
}
