//! Several chains in one Postgres, one schema each (the chains catalog): one, two and three
//! chains writing at once (total events/s; each chain's head latency, block available →
//! committed, p50 / p99 printed per run), and the collateral read of a user holding assets
//! on three chains against a one-chain user: the direct read from Postgres
//! ([`MultiChainReader`], separate reads and one statement) and the production read path,
//! the user's cached collateral of every chain from Redis ([`MultiChainCache::redis`], the
//! entries the watchers' caches wrote, under a key prefix of the run).
//!
//! Each write iteration mines one block of `EVENTS` deposits on every chain and syncs every
//! chain's watcher at once (their statements interleave on the server); throughput is the
//! events of all chains per second. The targets: two and three chains ≥ 1.7× the
//! events/s of one chain alone, each chain's head latency within 1.3× of alone; the
//! three-chain read within 1.5× of the one-chain read.
//!
//! The write measurements run twice in the same run: Postgres alone (the store's part) and
//! the production configuration end to end, each chain's watcher with its chain's cache in
//! the multi-chain Redis layout ([`RedisCollateralCache::for_chain`], one key prefix per run)
//! and a subscriber; its head latency is "block available → committed → cached → subscriber
//! notified". After the head blocks, each configuration catches up `CATCH_UP_BLOCKS` blocks
//! per chain `CATCH_UP_ROUNDS` times (every chain at once; events/s of all chains until every
//! chain is committed, and for the production configuration until every subscriber has the
//! update completing its head). Each configuration also prints the CPU time per block of
//! this process (watchers, engine, encoding, refresher) and of the Postgres backends serving
//! it (read from `/proc` when the server is local), against the wall-clock time.
//!
//! Each chain's sync runs on a task of its own (`tokio::spawn`), as a service runs one
//! watcher per chain; `ONE_TASK=1` joins them in one task instead (how this bench ran before
//! the watcher's future was `Send` for any lifetime), for comparison.
//!
//! `cargo bench --bench multichain --features postgres,redis` (`DATABASE_URL`, default the
//! local test server; `REDIS_URL`, default `redis://127.0.0.1:6379`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, I256, U256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::chains::{ChainHeads, ChainId, MultiChainCache, MultiChainReader};
use reorg_collateral::model::{Asset, AssetRegistry, Block, BlockNumber};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{ComposedStore, PostgresConfig, PostgresStore};
use reorg_collateral::traits::CollateralCache;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::watcher::{Notification, Subscription};
use reorg_collateral::{
    BalanceStore, BlockSource, CollateralReader, EngineConfig, SourceError, StoreWriter, Watcher,
    WatcherConfig,
};
use sqlx::{AssertSqlSafe, Executor};

const TOKEN: Address = Address::repeat_byte(0xA1);
/// Deposits per block and chain.
const EVENTS: usize = 200;
/// Users the deposits go to.
const USERS: u64 = 1_000;
const CONFIRMATIONS: u64 = 12;
/// Chain ids of the chains, in order.
const CHAINS: [u64; 3] = [1, 10, 8453];
/// Blocks per chain of one catch-up round.
const CATCH_UP_BLOCKS: u64 = 100;
/// Catch-up rounds per configuration.
const CATCH_UP_ROUNDS: usize = 3;
static SCHEMA: AtomicUsize = AtomicUsize::new(0);

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

/// A simulated chain reporting a chain id.
#[derive(Debug)]
struct OnChain {
    chain: Arc<SimulatedChain>,
    id: u64,
}

#[async_trait::async_trait]
impl BlockSource for OnChain {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.chain.head().await
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_number(n).await
    }
    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(h).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(Some(self.id))
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }
}

fn registry() -> AssetRegistry {
    AssetRegistry::new([Asset::new(TOKEN, "USDC", 6, 9_000)]).expect("asset")
}

/// `n` chains in one database: a base schema and its chains, each with a watcher.
struct Chains {
    base: PostgresStore,
    schemas: Vec<String>,
    stores: Vec<Arc<PostgresStore>>,
    chains: Vec<Arc<SimulatedChain>>,
    watchers: Vec<Watcher>,
    /// Each watcher's subscription (production configuration), else empty.
    updates: Vec<Subscription>,
    /// Each chain's cache (production configuration), else empty.
    caches: Vec<Arc<dyn CollateralCache>>,
    next: u64,
}

impl Chains {
    /// `n` chains; with `cache`, each watcher keeps its chain's cache
    /// ([`RedisCollateralCache::for_chain`]) and has a subscriber.
    async fn build(n: usize, cache: Option<&RedisCollateralCache>) -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!(
            "bench_multichain_{}_{}",
            std::process::id(),
            SCHEMA.fetch_add(1, Ordering::Relaxed)
        );
        // Named, so that the CPU time of the backends serving this run can be found.
        let config = PostgresConfig {
            application_name: Some(schema.clone()),
            ..PostgresConfig::default()
        };
        let base = PostgresStore::connect_with(&url, Some(&schema), &config)
            .await
            .expect("Postgres reachable");
        let mut out = Self {
            base: base.clone(),
            schemas: vec![schema],
            stores: Vec::new(),
            chains: Vec::new(),
            watchers: Vec::new(),
            updates: Vec::new(),
            caches: Vec::new(),
            next: 0,
        };
        for (i, id) in CHAINS.iter().take(n).enumerate() {
            let store = if i == 0 {
                base.clone()
            } else {
                base.chain(ChainId(*id)).await.expect("chain store")
            };
            if i > 0 {
                out.schemas
                    .push(base.chain_schema(ChainId(*id)).await.unwrap().unwrap());
            }
            let store = Arc::new(store);
            let chain = Arc::new(SimulatedChain::new(1));
            chain.mine(|b| {
                b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
            });
            let mut config = WatcherConfig::new(EngineConfig::new(registry(), CONFIRMATIONS));
            config.start_block = 1;
            let source = Arc::new(OnChain {
                chain: chain.clone(),
                id: *id,
            });
            let mut watcher = Watcher::new(config, source, store.clone())
                .await
                .expect("claim");
            if let Some(cache) = cache {
                let cache: Arc<dyn CollateralCache> = Arc::new(cache.for_chain(ChainId(*id)));
                cache.clear().await.expect("clear the chain's cache");
                watcher = watcher.with_cache(cache.clone());
                out.updates.push(watcher.subscribe());
                out.caches.push(cache);
            }
            watcher.sync().await.expect("first block");
            out.stores.push(store);
            out.chains.push(chain);
            out.watchers.push(watcher);
        }
        out
    }

    /// One block of deposits on every chain, every watcher synced at once; each chain's
    /// head latency (mined → committed) appended to `latencies`.
    async fn step(&mut self, latencies: &mut [Vec<Duration>]) {
        self.step_notified(latencies, None).await;
    }

    /// [`step`](Self::step), and with subscribers, each chain's "mined → subscriber
    /// notified of the update completing its head" appended to `notified`.
    async fn step_notified(
        &mut self,
        committed: &mut [Vec<Duration>],
        notified: Option<&mut [Vec<Duration>]>,
    ) {
        self.mine(1);
        let mined = Instant::now();
        let times = self.sync_all(mined).await;
        if let Some(notified) = notified {
            for (i, (_, n)) in times.iter().enumerate() {
                notified[i].push(n.expect("a subscriber"));
            }
        }
        for (i, (c, _)) in times.into_iter().enumerate() {
            committed[i].push(c);
        }
    }

    /// Mines `blocks` blocks of `EVENTS` deposits on every chain.
    fn mine(&mut self, blocks: u64) {
        for _ in 0..blocks {
            let start = self.next;
            self.next += EVENTS as u64;
            for chain in &self.chains {
                chain.mine(|b| {
                    for k in start..start + EVENTS as u64 {
                        b.deposit(TOKEN, user(k % USERS), U256::from(k + 1));
                    }
                });
            }
        }
    }

    /// Syncs every watcher at once; per chain, the time from `mined` to its commit and
    /// (with a subscriber) to the update completing its head.
    async fn sync_all(&mut self, mined: Instant) -> Vec<(Duration, Option<Duration>)> {
        let mut updates: Vec<Option<Subscription>> = std::mem::take(&mut self.updates)
            .into_iter()
            .map(Some)
            .collect();
        updates.resize_with(self.watchers.len(), || None);
        let one_task = std::env::var("ONE_TASK").is_ok();
        let syncs = std::mem::take(&mut self.watchers)
            .into_iter()
            .zip(updates)
            .map(|(w, updates)| sync_one(w, updates, mined));
        let done: Vec<_> = if one_task {
            futures::future::join_all(syncs).await
        } else {
            let tasks: Vec<_> = syncs.map(tokio::spawn).collect();
            futures::future::try_join_all(tasks)
                .await
                .expect("a watcher task")
        };
        let mut times = Vec::with_capacity(done.len());
        for (w, updates, t) in done {
            self.watchers.push(w);
            self.updates.extend(updates);
            times.push(t);
        }
        times
    }

    /// Mines `blocks` blocks on every chain and syncs every watcher at once: the time until
    /// every chain is committed (and, with subscribers, every subscriber notified).
    async fn catch_up(&mut self, blocks: u64) -> Duration {
        self.mine(blocks);
        let mined = Instant::now();
        self.sync_all(mined)
            .await
            .into_iter()
            .map(|(c, n)| n.unwrap_or(c))
            .max()
            .unwrap_or_default()
    }

    /// The CPU time so far of this process and of the Postgres backends serving this run
    /// (`None` when they cannot be read: a remote server).
    async fn cpu(&self) -> (Duration, Option<Duration>) {
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(&self.schemas[0])
                .fetch_all(self.base.pool())
                .await
                .expect("list the run's backends");
        let server = pids
            .iter()
            .map(|pid| cpu_of(&format!("/proc/{pid}/stat")))
            .sum::<Option<Duration>>();
        (cpu_of("/proc/self/stat").unwrap_or_default(), server)
    }

    async fn drop_schemas(self) {
        for cache in &self.caches {
            let _ = cache.clear().await;
        }
        drop(self.watchers);
        for schema in self.schemas.iter().rev() {
            let _ = self
                .base
                .pool()
                .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .await;
        }
    }
}

/// Syncs `w`: the time from `mined` to its commit and (with `updates`) to the update
/// completing its head; the watcher and its subscription are handed back.
async fn sync_one(
    mut w: Watcher,
    mut updates: Option<Subscription>,
    mined: Instant,
) -> (Watcher, Option<Subscription>, (Duration, Option<Duration>)) {
    w.sync().await.expect("sync");
    let committed = mined.elapsed();
    let notified = match updates.as_mut() {
        Some(updates) => {
            until_notified(&w, updates).await;
            Some(mined.elapsed())
        }
        None => None,
    };
    (w, updates, (committed, notified))
}

/// Waits until `updates` delivers the update completing `w`'s head (or a lag notice that
/// says the cache is complete through it).
async fn until_notified(w: &Watcher, updates: &mut Subscription) {
    let head = w.window().head().map(|h| h.id());
    loop {
        match updates.recv().await {
            Some(Notification::Update(u)) if u.complete_through == head => return,
            Some(Notification::Lagged { resync_from, .. }) if resync_from == head => return,
            Some(_) => {}
            None => panic!("the watcher's notifications ended"),
        }
    }
}

/// The user + system CPU time of the process whose `/proc/<pid>/stat` is `stat`.
fn cpu_of(stat: &str) -> Option<Duration> {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let tick = *TICK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let text = std::fs::read_to_string(stat).ok()?;
    // The fields after the command (which may contain spaces) in parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Duration::from_secs_f64(ticks / tick))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A write configuration of the bench.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// The Postgres stores alone.
    Postgres,
    /// Postgres + each chain's Redis cache + a subscriber per watcher.
    Production,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Postgres => "postgres",
            Setup::Production => "postgres_redis_subscriber",
        }
    }
}

/// What one configuration measured, for the summary printed at the end.
struct Measured {
    setup: Setup,
    chains: usize,
    /// Per chain: head latency (committed, notified) p50, in ms.
    head_p50: Vec<(f64, Option<f64>)>,
    /// Per chain: head latency (committed, notified) p99, in ms.
    head_p99: Vec<(f64, Option<f64>)>,
    /// Catch-up events/s of every round.
    catch_up: Vec<f64>,
    /// Per head block (all chains): wall-clock, this process's CPU and the server's CPU, ms.
    cpu: (f64, f64, Option<f64>),
}

fn writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let redis = rt.block_on(async {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        RedisCollateralCache::connect(&url, &format!("bench_multichain_{}", std::process::id()))
            .await
            .expect("Redis reachable")
    });
    let mut measured = Vec::new();
    for setup in [Setup::Postgres, Setup::Production] {
        let mut group = c.benchmark_group(format!("multichain_write_{}", setup.name()));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for n in 1..=CHAINS.len() {
            let cache = (setup == Setup::Production).then_some(&redis);
            let mut chains = rt.block_on(Chains::build(n, cache));
            let mut committed = vec![Vec::new(); n];
            let mut notified = vec![Vec::new(); n];
            // Wall-clock, this process's and the server's CPU time of the timed steps.
            let mut spent = (Duration::ZERO, Duration::ZERO, Some(Duration::ZERO));
            group.throughput(Throughput::Elements((EVENTS * n) as u64));
            group.bench_function(BenchmarkId::new("chains", n), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let cpu = chains.cpu().await;
                        let start = Instant::now();
                        for _ in 0..iters {
                            let notified =
                                (setup == Setup::Production).then_some(&mut notified[..]);
                            chains.step_notified(&mut committed, notified).await;
                        }
                        let took = start.elapsed();
                        let after = chains.cpu().await;
                        spent.0 += took;
                        spent.1 += after.0.saturating_sub(cpu.0);
                        spent.2 = spent
                            .2
                            .zip(after.1.zip(cpu.1))
                            .map(|(s, (a, b))| s + a.saturating_sub(b));
                        took
                    })
                });
            });
            let blocks = committed[0].len().max(1) as f64;
            let cpu = (
                ms(spent.0) / blocks,
                ms(spent.1) / blocks,
                spent.2.map(|s| ms(s) / blocks),
            );
            let mut catch_up = Vec::new();
            for _ in 0..CATCH_UP_ROUNDS {
                let took = rt.block_on(chains.catch_up(CATCH_UP_BLOCKS));
                catch_up
                    .push((n as u64 * CATCH_UP_BLOCKS * EVENTS as u64) as f64 / took.as_secs_f64());
            }
            let (mut head_p50, mut head_p99) = (Vec::new(), Vec::new());
            for i in 0..n {
                committed[i].sort();
                notified[i].sort();
                let at = |l: &[Duration], p| (!l.is_empty()).then(|| ms(percentile(l, p)));
                head_p50.push((ms(percentile(&committed[i], 0.5)), at(&notified[i], 0.5)));
                head_p99.push((ms(percentile(&committed[i], 0.99)), at(&notified[i], 0.99)));
            }
            measured.push(Measured {
                setup,
                chains: n,
                head_p50,
                head_p99,
                catch_up,
                cpu,
            });
            rt.block_on(chains.drop_schemas());
        }
        group.finish();
    }
    report(&measured);
}

/// Prints every configuration's head latencies, catch-up rates and CPU per block, with the
/// ratios to the same configuration's one chain.
fn report(measured: &[Measured]) {
    let one = |setup: Setup| measured.iter().find(|m| m.setup == setup && m.chains == 1);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let worst = |v: &[(f64, Option<f64>)], notified: bool| {
        v.iter()
            .map(|(c, n)| if notified { n.unwrap_or(*c) } else { *c })
            .fold(0.0, f64::max)
    };
    eprintln!("\nmultichain writes, same run (head: p50 / p99 of the slowest chain, ms):");
    for m in measured {
        let base = one(m.setup).expect("the one-chain configuration");
        let rate = median(&m.catch_up);
        let rounds: Vec<String> = m.catch_up.iter().map(|r| format!("{:.0}", r)).collect();
        eprintln!(
            "{} x{}: committed p50 {:.1} ({:.2}x) p99 {:.1}; catch-up {:.0} events/s ({:.2}x; rounds {})",
            m.setup.name(),
            m.chains,
            worst(&m.head_p50, false),
            worst(&m.head_p50, false) / worst(&base.head_p50, false),
            worst(&m.head_p99, false),
            rate,
            rate / median(&base.catch_up),
            rounds.join(", "),
        );
        if m.setup == Setup::Production {
            eprintln!(
                "    notified p50 {:.1} ({:.2}x) p99 {:.1}",
                worst(&m.head_p50, true),
                worst(&m.head_p50, true) / worst(&base.head_p50, true),
                worst(&m.head_p99, true),
            );
        }
        let (wall, client, server) = m.cpu;
        let server = server.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"));
        eprintln!(
            "    per head block of all chains: {wall:.2} ms wall, CPU {client:.2} ms this process, {server} ms Postgres backends"
        );
    }
}

fn reads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Each chain's watcher keeps its chain's cache in the multi-chain Redis layout (a key
    // prefix of this run on the shared Redis), as in production.
    let redis = rt.block_on(async {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("bench_multichain_read_{}", std::process::id());
        RedisCollateralCache::connect(&url, &prefix)
            .await
            .expect("Redis reachable")
    });
    let mut chains = rt.block_on(Chains::build(CHAINS.len(), Some(&redis)));
    let mut latencies = vec![Vec::new(); CHAINS.len()];
    rt.block_on(async {
        for _ in 0..20 {
            chains.step(&mut latencies).await;
        }
    });
    // The state of each chain's store, read once: what a risk engine knows from the
    // watchers' notifications when it reads the cache.
    let heads: ChainHeads = rt.block_on(async {
        let mut heads = ChainHeads::new();
        for (i, store) in chains.stores.iter().enumerate() {
            let window = store.window().await.expect("window");
            heads.insert(ChainId(CHAINS[i]), window.state().expect("a block applied"));
        }
        heads
    });
    let registry = Arc::new(registry());
    // The stores as they are (one statement), and through a decorator that forwards every
    // call (the separate reads, each chain's state checked before and after: the read
    // path before the one-statement read).
    let reader_of = |i: usize, separate: bool| {
        let pg = &chains.stores[i];
        let store: Arc<dyn BalanceStore> = if separate {
            Arc::new(ComposedStore::new((**pg).clone(), pg.clone()))
        } else {
            pg.clone()
        };
        (
            ChainId(CHAINS[i]),
            CollateralReader::new(store, Valuator::new(registry.clone(), u64::MAX)),
        )
    };
    let who = user(7);
    let mut group = c.benchmark_group("multichain_read");
    for (separate, path) in [(true, "separate reads"), (false, "one statement")] {
        let single = reader_of(0, separate).1;
        let one = MultiChainReader::new([reader_of(0, separate)]).expect("reader");
        let three = MultiChainReader::new((0..CHAINS.len()).map(|i| reader_of(i, separate)))
            .expect("reader");
        assert_eq!(three.reads_in_one_statement(), !separate, "{path}");
        group.bench_function(format!("CollateralReader, 1 chain, {path}"), |b| {
            b.to_async_tokio(&rt, || async {
                single.collateral(who).await.expect("read");
            })
        });
        group.bench_function(format!("MultiChainReader, 1 chain, {path}"), |b| {
            b.to_async_tokio(&rt, || async {
                one.collateral(who).await.expect("read");
            })
        });
        group.bench_function(format!("MultiChainReader, 3 chains, {path}"), |b| {
            b.to_async_tokio(&rt, || async {
                three.collateral(who).await.expect("read");
            })
        });
    }
    // The production read path: the user's cached collateral of every chain, one round
    // trip to Redis (`MultiChainCache::redis`), each chain's entry checked current.
    let cache_one = MultiChainCache::redis(redis.clone(), [ChainId(CHAINS[0])]);
    let cache_three = MultiChainCache::redis(redis.clone(), CHAINS.map(ChainId));
    for (label, cache, n) in [("1 chain", &cache_one, 1), ("3 chains", &cache_three, 3)] {
        let entry = rt.block_on(cache.get(who, &heads)).expect("cache read");
        assert!(entry.is_current(), "{label}: every chain's entry current");
        let held = entry.chains.values().filter(|c| c.entry.is_some()).count();
        assert_eq!(held, n, "{label}: an entry on every chain");
        group.bench_function(format!("MultiChainCache (Redis), {label}"), |b| {
            b.to_async_tokio(&rt, || async {
                cache.get(who, &heads).await.expect("cache read");
            })
        });
    }
    group.finish();
    rt.block_on(chains.drop_schemas());
}

/// `b.to_async(rt).iter(f)` without criterion's async feature: each sample runs `iters`
/// reads on `rt`.
trait AsyncIter {
    fn to_async_tokio<F, Fut>(&mut self, rt: &tokio::runtime::Runtime, f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>;
}

impl AsyncIter for criterion::Bencher<'_> {
    fn to_async_tokio<F, Fut>(&mut self, rt: &tokio::runtime::Runtime, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        self.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    f().await;
                }
                start.elapsed()
            })
        });
    }
}

criterion_group!(benches, writes, reads);
criterion_main!(benches);
