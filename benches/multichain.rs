//! Several chains in one Postgres, one schema each (the chains catalog): one, two and three
//! chains writing at once (total events/s; each chain's head latency, block available →
//! committed, p50 / p99 printed per run), and the collateral read of a user holding assets
//! on three chains against a one-chain user.
//!
//! Each write iteration mines one block of `EVENTS` deposits on every chain and syncs every
//! chain's watcher at once (their statements interleave on the server); throughput is the
//! events of all chains per second. The targets: two and three chains ≥ 1.7× the
//! events/s of one chain alone, each chain's head latency within 1.3× of alone; the
//! three-chain read within 1.5× of the one-chain read.
//!
//! `cargo bench --bench multichain --features postgres` (`DATABASE_URL`, default the local
//! test server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, I256, U256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reorg_collateral::chains::{ChainId, MultiChainReader};
use reorg_collateral::model::{Asset, AssetRegistry, Block, BlockNumber};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{ComposedStore, PostgresStore};
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{
    BalanceStore, BlockSource, CollateralReader, EngineConfig, SourceError, Watcher, WatcherConfig,
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
    next: u64,
}

impl Chains {
    async fn new(n: usize) -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!(
            "bench_multichain_{}_{}",
            std::process::id(),
            SCHEMA.fetch_add(1, Ordering::Relaxed)
        );
        let base = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .expect("Postgres reachable");
        let mut out = Self {
            base: base.clone(),
            schemas: vec![schema],
            stores: Vec::new(),
            chains: Vec::new(),
            watchers: Vec::new(),
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
        let start = self.next;
        self.next += EVENTS as u64;
        for chain in &self.chains {
            chain.mine(|b| {
                for k in start..start + EVENTS as u64 {
                    b.deposit(TOKEN, user(k % USERS), U256::from(k + 1));
                }
            });
        }
        let mined = Instant::now();
        let syncs = self.watchers.iter_mut().map(|w| async move {
            w.sync().await.expect("sync");
            mined.elapsed()
        });
        for (i, took) in futures::future::join_all(syncs)
            .await
            .into_iter()
            .enumerate()
        {
            latencies[i].push(took);
        }
    }

    async fn drop_schemas(self) {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("multichain_write");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for n in 1..=CHAINS.len() {
        let mut chains = rt.block_on(Chains::new(n));
        let mut latencies = vec![Vec::new(); n];
        group.throughput(Throughput::Elements((EVENTS * n) as u64));
        group.bench_function(BenchmarkId::new("chains", n), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        chains.step(&mut latencies).await;
                    }
                    start.elapsed()
                })
            });
        });
        for (i, l) in latencies.iter_mut().enumerate() {
            l.sort();
            eprintln!(
                "{n} chain(s) writing: chain {} head latency p50 {:?} p99 {:?} over {} blocks",
                CHAINS[i],
                percentile(l, 0.5),
                percentile(l, 0.99),
                l.len()
            );
        }
        rt.block_on(chains.drop_schemas());
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut chains = rt.block_on(Chains::new(CHAINS.len()));
    let mut latencies = vec![Vec::new(); CHAINS.len()];
    rt.block_on(async {
        for _ in 0..20 {
            chains.step(&mut latencies).await;
        }
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
