//! Head latency of the configurations users run, in one run: Postgres store, Redis cache and
//! a subscriber (production); the same on a 3 + 3 Redis Cluster (private servers, with
//! feature `redis-cluster`); Postgres alone; memory store and memory cache.
//!
//! For every 200-transfer block arriving at the head: "block available → store committed →
//! cache refreshed → notification received" (p50 / p99 / max). For a price update of an
//! asset with `PRICE_HOLDERS` holders: the time until every holder's entry is refreshed,
//! and the commit latency of the next block while that fan-out runs.
//!
//! `cargo bench --bench head_latency --features postgres,redis` (add `redis-cluster` for the
//! cluster configuration)
//! (`USERS`: comma-separated user counts, default `10000,1000000`; `PRICE_HOLDERS` and
//! `BLOCKS` override the other sizes.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::{MemoryCache, RedisCollateralCache};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{MemoryStore, PostgresStore};
use reorg_collateral::traits::{BalanceStore, CollateralCache};
use reorg_collateral::watcher::{Notification, Subscription};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::PgPool;

// The test support's private Redis Cluster (only the modules it needs; `super::process` in
// it is this crate root's).
#[cfg(feature = "redis-cluster")]
#[path = "../tests/support/process.rs"]
mod process;
#[cfg(feature = "redis-cluster")]
#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;

const TOKEN: Address = Address::repeat_byte(0xA1);
const PRICED: Address = Address::repeat_byte(0xA2);
static SCHEMA: AtomicUsize = AtomicUsize::new(0);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

#[derive(Clone, Copy, Debug)]
enum Setup {
    PostgresRedis,
    /// Postgres + a Redis Cluster cache (the cluster's node URLs) + a subscriber.
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    PostgresCluster(&'static [String]),
    Postgres,
    Memory,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::PostgresRedis => "Postgres + Redis + subscriber",
            Setup::PostgresCluster(_) => "Postgres + Redis Cluster (3 + 3) + subscriber",
            Setup::Postgres => "Postgres alone",
            Setup::Memory => "memory + memory cache",
        }
    }

    async fn backends(
        self,
    ) -> (
        Arc<dyn BalanceStore>,
        Option<Arc<dyn CollateralCache>>,
        Option<PgPool>,
    ) {
        let url = || {
            std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
        };
        let pg = || async {
            let schema = format!(
                "bench_head_{}_{}",
                std::process::id(),
                SCHEMA.fetch_add(1, Ordering::Relaxed)
            );
            let store = PostgresStore::connect_in_schema(&url(), &schema)
                .await
                .expect("Postgres reachable");
            let pool = store.pool().clone();
            (Arc::new(store) as Arc<dyn BalanceStore>, pool)
        };
        match self {
            Setup::PostgresRedis => {
                let redis =
                    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let prefix = format!("bench_head_{}", std::process::id());
                let cache = RedisCollateralCache::connect(&redis, &prefix)
                    .await
                    .expect("Redis reachable");
                cache.clear().await.expect("clear");
                let (store, pool) = pg().await;
                (store, Some(Arc::new(cache)), Some(pool))
            }
            Setup::PostgresCluster(nodes) => {
                let cache = cluster_cache(nodes).await;
                let (store, pool) = pg().await;
                (store, Some(cache), Some(pool))
            }
            Setup::Postgres => {
                let (store, pool) = pg().await;
                (store, None, Some(pool))
            }
            Setup::Memory => (
                Arc::new(MemoryStore::new()),
                Some(Arc::new(MemoryCache::new())),
                None,
            ),
        }
    }
}

#[cfg(feature = "redis-cluster")]
async fn cluster_cache(nodes: &[String]) -> Arc<dyn CollateralCache> {
    let prefix = format!("bench_head_cluster_{}", std::process::id());
    let cache = reorg_collateral::cache::RedisClusterCache::connect(nodes, &prefix)
        .await
        .expect("the private cluster is reachable");
    cache.clear().await.expect("clear");
    Arc::new(cache)
}

#[cfg(not(feature = "redis-cluster"))]
async fn cluster_cache(_: &[String]) -> Arc<dyn CollateralCache> {
    unreachable!("the cluster configuration is only built with feature `redis-cluster`")
}

struct Run {
    chain: Arc<SimulatedChain>,
    watcher: Watcher,
    updates: Option<Subscription>,
    /// The Postgres schema's pool, dropped with its schema at the end.
    pool: Option<PgPool>,
}

impl Run {
    /// Removes what the run left: the cache's keys and the Postgres schema.
    async fn clean_up(self) {
        if let Some(cache) = self.watcher.reader().cache() {
            cache.clear().await.expect("clear the cache");
        }
        if let Some(pool) = &self.pool {
            let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(pool)
                .await
                .unwrap();
            drop(self.watcher);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn start(setup: Setup, users: u64, price_holders: u64) -> Run {
    let assets = AssetRegistry::new([
        Asset::new(TOKEN, "TKN", 18, 8_000),
        Asset::new(PRICED, "PRC", 18, 8_000),
    ])
    .unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    config.start_block = 1;
    config.max_price_age = u64::MAX;
    let chain = Arc::new(SimulatedChain::new(1));
    let (store, cache, pool) = setup.backends().await;
    let mut watcher = Watcher::new(config, chain.clone(), store).await.unwrap();
    if let Some(cache) = cache {
        watcher = watcher.with_cache(cache);
    }
    let updates = matches!(
        setup,
        Setup::PostgresRedis | Setup::PostgresCluster(_) | Setup::Memory
    )
    .then(|| watcher.subscribe());
    let one = U256::from(10u64).pow(U256::from(18));
    // Funded in blocks of at most 100,000 users (one changeset each).
    chain.mine(|b| {
        b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
        b.price(PRICED, I256::try_from(100_000_000i64).unwrap(), 8);
    });
    for from in (0..users.max(price_holders)).step_by(100_000) {
        chain.mine(|b| {
            for i in from..(from + 100_000).min(users.max(price_holders)) {
                if i < users {
                    b.set_balance(TOKEN, user(i), one * U256::from(1_000));
                }
                if i < price_holders {
                    b.set_balance(PRICED, user(i), one);
                }
            }
        });
    }
    // Funding and finalizing it happen before the timed part.
    for _ in 0..13 {
        watcher.sync().await.unwrap();
        chain.mine(|_| {});
    }
    watcher.sync().await.unwrap();
    watcher.flush().await;
    if let Some(pool) = &pool {
        // A store in steady state: autovacuum has removed the dead rows of the funding
        // blocks' pending state and gathered statistics.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        for t in tables {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE \"{t}\"")))
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let mut run = Run {
        chain,
        watcher,
        updates,
        pool,
    };
    drain(&mut run);
    run
}

fn drain(run: &mut Run) {
    if let Some(u) = run.updates.as_mut() {
        while u.try_recv().is_some() {}
    }
}

/// Waits for the update that completes the head (or the refresh status, without a
/// subscriber).
async fn until_refreshed(run: &mut Run) {
    let head = run.watcher.window().head().map(|h| h.id());
    match run.updates.as_mut() {
        Some(updates) => loop {
            match updates.recv().await {
                Some(Notification::Update(u)) if u.complete_through == head => return,
                Some(_) => {}
                None => return,
            }
        },
        None => {
            run.watcher.flush().await;
        }
    }
}

fn transfers(run: &Run, users: u64, seed: u64) {
    run.chain.mine(|b| {
        for t in 0..200u64 {
            let from = (seed * 7_919 + t * 104_729) % users;
            let to = (from + 1 + t) % users;
            b.transfer(TOKEN, user(from), user(to), U256::from(1_000 + t));
        }
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), *v.last().unwrap())
}

/// p50 / p99 / max of 200-transfer blocks at the head, in ms.
async fn blocks(run: &mut Run, users: u64, count: u64) -> (f64, f64, f64) {
    let mut lat = Vec::new();
    for i in 0..count {
        transfers(run, users, i);
        let t = Instant::now();
        run.watcher.sync().await.unwrap();
        until_refreshed(run).await;
        lat.push(ms(t.elapsed()));
    }
    stats(lat)
}

/// (fan-out to every holder refreshed, the next block's commit latency during it), in ms.
async fn price_update(run: &mut Run, users: u64) -> (f64, f64) {
    drain(run);
    run.chain.mine(|b| {
        b.price(PRICED, I256::try_from(101_000_000i64).unwrap(), 8);
    });
    let t = Instant::now();
    run.watcher.sync().await.unwrap();
    transfers(run, users, 999_999);
    let n = Instant::now();
    run.watcher.sync().await.unwrap();
    let next = ms(n.elapsed());
    run.watcher.flush().await;
    (ms(t.elapsed()), next)
}

fn main() {
    let sizes: Vec<u64> = std::env::var("USERS")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("USERS: comma-separated user counts")
        })
        .collect();
    let holders = env("PRICE_HOLDERS", 100_000);
    let count = env("BLOCKS", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("head latency: 200-transfer blocks x {count}, price fan-out to {holders} holders");
    println!(
        "| users | configuration | block p50 ms | block p99 ms | block max ms | fan-out to {holders} ms | next block during fan-out ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The cluster lives as long as the run (stopped when dropped at the end of `main`).
    #[cfg(feature = "redis-cluster")]
    let cluster = redis_cluster::PrivateRedisCluster::start();
    #[cfg(feature = "redis-cluster")]
    let nodes: &'static [String] = Box::leak(cluster.urls().into_boxed_slice());
    let mut setups = vec![Setup::PostgresRedis];
    #[cfg(feature = "redis-cluster")]
    setups.push(Setup::PostgresCluster(nodes));
    setups.extend([Setup::Postgres, Setup::Memory]);
    rt.block_on(async {
        for users in sizes {
            for &setup in &setups {
                let mut run = start(setup, users, holders).await;
                let (p50, p99, max) = blocks(&mut run, users, count).await;
                let (fan_out, next) = price_update(&mut run, users).await;
                println!(
                    "| {users} | {} | {p50:.1} | {p99:.1} | {max:.1} | {fan_out:.0} | {next:.1} |",
                    setup.name()
                );
                run.clean_up().await;
            }
        }
    });
}
