//! The Redis Cluster cache against one Redis, in the same run: both servers private to this
//! benchmark (a 3 + 3 cluster and one `redis-server`, started by the test support).
//!
//! - `cluster_reads`: aggregate `get`s per second of 10,000 cached users (3 assets each)
//!   from 8 client tasks sharing the cache, single Redis vs the cluster;
//! - `cluster_fan_out`: the watcher step applying a price change to an asset held by
//!   100,000 users (recompute and write every holder), single Redis vs the cluster.
//!
//! The ratios are printed at the end. `cargo bench --bench redis_cluster --features
//! redis-cluster`; `FAN_OUT_CHUNK=<users>` sets the watcher's `refresh_chunk` (users per
//! cache write, default the watcher's) for both targets.

// The test support's private servers (only the modules they need; `super::process` in
// them is this crate root's).
#[path = "../tests/support/process.rs"]
mod process;
#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, I256, U256};
use criterion::{Criterion, SamplingMode, Throughput};
use redis_cluster::PrivateRedisCluster;
use redis_server::PrivateRedis;
use reorg_collateral::cache::{RedisClusterCache, RedisCollateralCache};
use reorg_collateral::model::{Asset, AssetRegistry, CachedAsset, CachedCollateral};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::CollateralCache;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;

const TOKEN: Address = Address::repeat_byte(0xA1);
const USERS: u64 = 10_000;
const TASKS: u64 = 8;
const READS_PER_TASK: u64 = 200;
const HOLDERS: u64 = 100_000;

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

fn entry(i: u64) -> CachedCollateral {
    CachedCollateral {
        user: user(i),
        block: 1,
        hash: B256::ZERO,
        finalized: None,
        confirmed: Decimal::from(i * 3),
        pending: Decimal::from(i * 3),
        assets: (1..=3u8)
            .map(|a| {
                (
                    Address::repeat_byte(a),
                    CachedAsset {
                        confirmed: Some(Decimal::from(i)),
                        pending: Some(Decimal::from(i)),
                        unrepresentable: Default::default(),
                        quarantined: Default::default(),
                    },
                )
            })
            .collect(),
        complete: true,
    }
}

/// Seconds per item measured for each target (summed over every iteration criterion ran).
#[derive(Default)]
struct Totals {
    items: u64,
    secs: f64,
}

impl Totals {
    fn per_sec(&self) -> f64 {
        self.items as f64 / self.secs
    }
}

/// `TASKS` tasks each reading `READS_PER_TASK` users, one after another; the time of all.
async fn read_burst(cache: Arc<dyn CollateralCache>, round: u64) -> Duration {
    let t = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for k in 0..READS_PER_TASK {
                    let i = (round * 7919 + task * READS_PER_TASK + k) % USERS;
                    let e = cache.get(user(i)).await.expect("read the cache");
                    assert!(e.is_some(), "user {i} is cached");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a reader task");
    }
    t.elapsed()
}

/// A watcher whose store and cache hold `HOLDERS` holders of one priced asset.
async fn fan_out_watcher(cache: Arc<dyn CollateralCache>) -> (Watcher, Arc<SimulatedChain>) {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    config.start_block = 1;
    if let Some(chunk) = std::env::var("FAN_OUT_CHUNK")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        config.refresh_chunk = chunk;
    }
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
        for i in 0..HOLDERS {
            b.set_balance(TOKEN, user(i), U256::from(10u64).pow(U256::from(18)));
        }
    });
    let store = Arc::new(MemoryStore::new());
    let mut w = Watcher::new(config, chain.clone(), store)
        .await
        .unwrap()
        .with_cache(cache);
    w.sync().await.unwrap();
    let status = w.flush().await;
    assert_eq!(status.failing, None);
    (w, chain)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let single_server = PrivateRedis::start();
    let cluster = PrivateRedisCluster::start();
    let prefix = format!("rc_bench_cluster_{}", std::process::id());
    let (single, clustered) = rt.block_on(async {
        let single: Arc<dyn CollateralCache> = Arc::new(
            RedisCollateralCache::connect(&single_server.url(), &prefix)
                .await
                .expect("the private redis-server"),
        );
        let clustered: Arc<dyn CollateralCache> = Arc::new(
            RedisClusterCache::connect(&cluster.urls(), &prefix)
                .await
                .expect("the private cluster"),
        );
        let entries: Vec<CachedCollateral> = (0..USERS).map(entry).collect();
        for cache in [&single, &clustered] {
            for chunk in entries.chunks(1_000) {
                cache.put(chunk).await.unwrap();
            }
        }
        (single, clustered)
    });
    let targets = [("single", single), ("cluster", clustered)];

    let mut c = Criterion::default().configure_from_args();
    let reads: Vec<Arc<Mutex<Totals>>> = targets.iter().map(|_| Arc::default()).collect();
    {
        let mut group = c.benchmark_group("cluster_reads");
        group.throughput(Throughput::Elements(TASKS * READS_PER_TASK));
        group.measurement_time(Duration::from_secs(10));
        for ((name, cache), totals) in targets.iter().zip(&reads) {
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for round in 0..iters {
                        spent += rt.block_on(read_burst(cache.clone(), round));
                    }
                    let mut t = totals.lock().unwrap();
                    t.items += iters * TASKS * READS_PER_TASK;
                    t.secs += spent.as_secs_f64();
                    spent
                })
            });
        }
        group.finish();
    }

    let fan_outs: Vec<Arc<Mutex<Totals>>> = targets.iter().map(|_| Arc::default()).collect();
    {
        let mut group = c.benchmark_group("cluster_fan_out");
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(20));
        group.warm_up_time(Duration::from_millis(1));
        group.throughput(Throughput::Elements(HOLDERS));
        for ((name, cache), totals) in targets.iter().zip(&fan_outs) {
            let (mut w, chain) = rt.block_on(fan_out_watcher(cache.clone()));
            let mut price = 100_000_000i64;
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        price += 1_000_000;
                        chain.mine(|b| {
                            b.price(TOKEN, I256::try_from(price).unwrap(), 8);
                        });
                        let t = Instant::now();
                        let status = rt.block_on(async {
                            w.sync().await.unwrap();
                            w.flush().await
                        });
                        spent += t.elapsed();
                        assert_eq!(status.failing, None, "{name}: the fan-out's writes");
                    }
                    let mut t = totals.lock().unwrap();
                    t.items += iters * HOLDERS;
                    t.secs += spent.as_secs_f64();
                    spent
                })
            });
        }
        group.finish();
    }

    let (r_single, r_cluster) = (reads[0].lock().unwrap(), reads[1].lock().unwrap());
    let (f_single, f_cluster) = (fan_outs[0].lock().unwrap(), fan_outs[1].lock().unwrap());
    println!(
        "reads/s from {TASKS} tasks: single {:.0}, cluster {:.0} (cluster/single {:.2})",
        r_single.per_sec(),
        r_cluster.per_sec(),
        r_cluster.per_sec() / r_single.per_sec()
    );
    let per_fan_out = |t: &Totals| t.secs / (t.items / HOLDERS) as f64;
    println!(
        "100,000-holder fan-out: single {:.2} s, cluster {:.2} s (cluster/single {:.2})",
        per_fan_out(&f_single),
        per_fan_out(&f_cluster),
        per_fan_out(&f_cluster) / per_fan_out(&f_single)
    );
    c.final_summary();
}
