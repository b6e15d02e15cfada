//! Redis cache benchmarks (needs `REDIS_URL`, default the local server).
//!
//! - read latency of one user's entry (p50 / p99 printed) and pipelined reads per second
//!   from one client;
//! - a price update for an asset with 100,000 holders: the watcher recomputes every
//!   holder's collateral and writes the cache; total time and cost per holder, the server's
//!   time in `EXEC` (from `INFO commandstats`) and another client's slowest read meanwhile.
//!
//! `cargo bench --bench redis --features redis`

use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::{Address, I256, U256};
use redis::aio::ConnectionManager;
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry, CachedAsset, CachedCollateral};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::CollateralCache;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;

const TOKEN: Address = Address::repeat_byte(0xA1);

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Times the watcher step that applies a price change to an asset held by 100,000 users.
async fn fan_out(
    cache: Arc<dyn CollateralCache>,
    admin: &mut ConnectionManager,
) -> (f64, u64, ServerTimes) {
    let holders = 100_000u64;
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
        for i in 0..holders {
            b.set_balance(TOKEN, user(i), U256::from(10u64).pow(U256::from(18)));
        }
    });
    let store = Arc::new(MemoryStore::new());
    let mut w = Watcher::new(config, chain.clone(), store.clone())
        .await
        .unwrap()
        .with_cache(cache);
    w.sync().await.unwrap();
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(101_000_000i64).unwrap(), 8);
    });
    let before = ServerTimes::read(admin).await;
    let t = Instant::now();
    w.sync().await.unwrap();
    // The fan-out runs behind the writer: done when the refresh caught up.
    let status = w.flush().await;
    let secs = t.elapsed().as_secs_f64();
    let server = ServerTimes::read(admin).await.since(&before);
    assert_eq!(status.failing, None);
    assert_eq!(status.cache_errors, 0);
    (secs, holders, server)
}

/// The server's cumulative time in `EXEC` (`INFO commandstats`; the time every other client
/// waits) and its main thread's CPU time (`INFO cpu`: parsing and queueing too), in seconds.
struct ServerTimes {
    exec: f64,
    cpu: f64,
}

impl ServerTimes {
    async fn read(conn: &mut ConnectionManager) -> Self {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .arg("cpu")
            .query_async(conn)
            .await
            .unwrap();
        let (mut exec, mut cpu) = (0.0, 0.0);
        for line in info.lines() {
            if let Some(stats) = line.strip_prefix("cmdstat_exec:") {
                let usec = stats.split(',').find_map(|kv| kv.strip_prefix("usec="));
                exec = usec.map_or(0.0, |u| u.parse::<f64>().unwrap() / 1e6);
            }
            for name in ["used_cpu_sys_main_thread:", "used_cpu_user_main_thread:"] {
                if let Some(secs) = line.strip_prefix(name) {
                    cpu += secs.trim().parse::<f64>().unwrap();
                }
            }
        }
        Self { exec, cpu }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            exec: self.exec - before.exec,
            cpu: self.cpu - before.cpu,
        }
    }
}

impl std::fmt::Display for ServerTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server: {:.0} ms in EXEC, {:.0} ms CPU",
            self.exec * 1e3,
            self.cpu * 1e3
        )
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("rc_bench_{}", std::process::id());
    let cache = Arc::new(
        RedisCollateralCache::connect(&url, &prefix)
            .await
            .expect("Redis reachable"),
    );

    // Read latency and throughput over 10,000 cached users with 3 assets each.
    let entries: Vec<CachedCollateral> = (0..10_000u64)
        .map(|i| CachedCollateral {
            user: user(i),
            block: 1,
            hash: alloy_primitives::B256::ZERO,
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
        })
        .collect();
    for chunk in entries.chunks(1_000) {
        cache.put(chunk).await.unwrap();
    }
    let mut lat = Vec::with_capacity(20_000);
    for i in 0..20_000u64 {
        let t = Instant::now();
        let e = cache.get(user(i % 10_000)).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(e.is_some());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "redis get (one HGETALL, decoded): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // Reads of 1,000 users at a time: as 1,000 concurrent `get`s (the multiplexed
    // connection pipelines them) and as one `get_many` (one MULTI/EXEC of HGETALLs). Every
    // read must hit a cached entry with its 3 assets, not a missing key.
    let batch = 1_000u64;
    let rounds = 100u64;
    let batch_users = |r: u64| (0..batch).map(move |i| user((r * batch + i) % 10_000));
    let t = Instant::now();
    for r in 0..rounds {
        let read = futures::future::join_all(batch_users(r).map(|u| cache.get(u))).await;
        assert!(
            read.into_iter()
                .all(|e| e.unwrap().unwrap().assets.len() == 3)
        );
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pipelined gets (1,000 concurrent, decoded) from one client: {:.0} reads/s",
        (batch * rounds) as f64 / secs
    );
    let t = Instant::now();
    for r in 0..rounds {
        let users: Vec<Address> = batch_users(r).collect();
        let read = cache.get_many(&users).await.unwrap();
        assert!(read.into_iter().all(|e| e.unwrap().assets.len() == 3));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "get_many (one MULTI/EXEC of 1,000 HGETALLs, decoded): {:.0} reads/s",
        (batch * rounds) as f64 / secs
    );

    // The cache write of a 100,000-holder fan-out alone: one asset per user, values with
    // 17 decimals as the valuation produces them.
    let value =
        |i: u64| Decimal::from_i128_with_scale(80_800_000_000_000_000_000 + i128::from(i), 17);
    let entries: Vec<CachedCollateral> = (0..100_000u64)
        .map(|i| CachedCollateral {
            user: user(i),
            block: 2,
            hash: alloy_primitives::B256::ZERO,
            finalized: None,
            confirmed: value(i),
            pending: value(i),
            assets: [(
                TOKEN,
                CachedAsset {
                    confirmed: Some(value(i)),
                    pending: Some(value(i)),
                    unrepresentable: Default::default(),
                    quarantined: Default::default(),
                },
            )]
            .into(),
            complete: true,
        })
        .collect();
    let mut admin = cache.connection();
    let before = ServerTimes::read(&mut admin).await;
    let t = Instant::now();
    cache.put(&entries).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    let server = ServerTimes::read(&mut admin).await.since(&before);
    println!(
        "put of 100000 one-asset entries alone: {:.0} ms, {:.2} µs per user ({server})",
        secs * 1e3,
        secs * 1e6 / 1e5
    );
    drop(entries);

    // Price update fan-out to 100,000 holders, with the in-memory cache (valuation alone)
    // and with Redis (valuation + one MULTI/EXEC: UNLINK, one HSET per holder), while another
    // client reads every millisecond.
    let memory: Arc<dyn CollateralCache> = Arc::new(reorg_collateral::cache::MemoryCache::new());
    let redis_cache: Arc<dyn CollateralCache> = cache.clone();
    for (name, target) in [("memory cache", memory), ("redis cache", redis_cache)] {
        let reader = Reader::spawn(&url, &prefix);
        let (secs, holders, server) = fan_out(target, &mut admin).await;
        let max = reader.stop();
        println!(
            "price update → {holders} holders refreshed, {name}: {:.0} ms, {:.2} µs per holder \
             (another client's slowest read meanwhile: {:.1} ms; {server})",
            secs * 1e3,
            secs * 1e6 / holders as f64,
            max * 1e3
        );
    }
    cache.clear().await.unwrap();
}

/// Another Redis client on its own thread that reads one entry every millisecond and
/// records its slowest read: how long a fan-out blocks the server for everyone else.
struct Reader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl Reader {
    fn spawn(url: &str, prefix: &str) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (url, prefix, flag) = (url.to_owned(), prefix.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cache = RedisCollateralCache::connect(&url, &prefix).await.unwrap();
                let mut max = 0f64;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    cache.get(user(0)).await.unwrap();
                    max = max.max(t.elapsed().as_secs_f64());
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                max
            })
        });
        Self { stop, thread }
    }

    fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}
