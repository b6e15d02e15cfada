//! The figures of `docs/SCALING.md`, measured on a private schema and key prefix:
//!
//! - Postgres bytes per row after a scripted catch-up through the watcher (20,000 users, user
//!   `i` holding `i % 4 + 1` of 4 assets, then 200 blocks of 400 transfers, finalized):
//!   `pg_total_relation_size` (heap + indexes + TOAST) of the confirmed balances, the log
//!   and the blocks, divided by their rows, and the index share of each; as the catch-up
//!   left them, then after `VACUUM FULL` (the live rows alone).
//! - Reads a Postgres serves: `collateral_at` of random users from 1, 4 and 16 concurrent
//!   tasks for 3 s each (the read a replica serves is the same query).
//! - Redis bytes per user: `CollateralReader::rebuild_cache` into a `RedisCollateralCache`,
//!   then `MEMORY USAGE <key> SAMPLES 0` of every entry, by the number of assets the user
//!   holds (read-only on the shared server; the entries are deleted after).
//!
//! `cargo bench --bench scaling --features postgres,redis` (needs `DATABASE_URL`,
//! `REDIS_URL`, default the local test servers).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::reader::{CollateralReader, ValuationPoint};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::{AssertSqlSafe, Executor};

const USERS: u64 = 20_000;
const ASSETS: u8 = 4;
const BLOCKS: usize = 200;
const TRANSFERS: usize = 400;
const CONFIRMATIONS: u64 = 12;

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

fn asset(a: u8) -> Address {
    Address::repeat_byte(0xA0 + a)
}

fn registry() -> AssetRegistry {
    AssetRegistry::new((0..ASSETS).map(|a| Asset::new(asset(a), format!("T{a}"), 18, 8_000)))
        .unwrap()
}

/// The funding block (user `i` holds the first `i % 4 + 1` assets, prices for all), the
/// transfers of asset 0, and empty blocks until everything is final.
fn chain() -> Arc<SimulatedChain> {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        for a in 0..ASSETS {
            b.price(
                asset(a),
                I256::try_from(1_234_567_890i64 + i64::from(a)).unwrap(),
                8,
            );
        }
        for i in 0..USERS {
            for a in 0..=(i % u64::from(ASSETS)) as u8 {
                let amount = U256::from(10u64.pow(18)) * U256::from(1 + i % 997);
                b.set_balance(asset(a), user(i), amount);
            }
        }
    });
    let mut x = 7u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..BLOCKS {
        chain.mine(|b| {
            for _ in 0..TRANSFERS {
                let amount = U256::from(next() % 1_000_000_000_000);
                b.transfer(asset(0), user(next() % USERS), user(next() % USERS), amount);
            }
        });
    }
    for _ in 0..=CONFIRMATIONS {
        chain.mine(|_| {});
    }
    chain
}

/// (rows, total bytes, index bytes) of `table`.
async fn size(store: &PostgresStore, table: &str) -> (i64, i64, i64) {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM {table}), pg_total_relation_size('{table}'),
                pg_indexes_size('{table}')"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

const TABLES: [&str; 5] = [
    "user_confirmed_balances",
    "user_pending_balances",
    "balance_updates",
    "blocks",
    "oracle_prices",
];

/// The sizes as the catch-up left them (dead tuples of the pending → confirmed updates
/// included, as autovacuum would leave them for reuse), then compacted (`VACUUM FULL`: the
/// live rows alone).
async fn postgres_sizes(store: &PostgresStore) {
    table_sizes(store, "after the catch-up (no VACUUM)").await;
    for table in TABLES {
        store
            .pool()
            .execute(AssertSqlSafe(format!("VACUUM FULL ANALYZE {table}")))
            .await
            .unwrap();
    }
    table_sizes(store, "after VACUUM FULL").await;
}

async fn table_sizes(store: &PostgresStore, when: &str) {
    println!("\nPostgres, {when}:");
    println!("| table | rows | total bytes | bytes per row | of which indexes |");
    println!("|---|---|---|---|---|");
    for table in TABLES {
        let (rows, total, indexes) = size(store, table).await;
        let per = |b: i64| {
            if rows > 0 {
                b as f64 / rows as f64
            } else {
                0.0
            }
        };
        println!(
            "| `{table}` | {rows} | {total} | {:.1} | {:.1} |",
            per(total),
            per(indexes)
        );
    }
}

async fn read_rate(reader: &Arc<CollateralReader>, block: u64) {
    println!("\nPostgres reads (`collateral_at` of random users):");
    println!("| concurrent tasks | reads/s | mean latency |");
    println!("|---|---|---|");
    for tasks in [1u64, 4, 16] {
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(3);
        let workers: Vec<_> = (0..tasks)
            .map(|t| {
                let (reader, done) = (reader.clone(), done.clone());
                tokio::spawn(async move {
                    let mut x = 0x9e37_79b9 ^ (t + 1);
                    while Instant::now() < until {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let at = ValuationPoint { block, now: 0 };
                        reader.collateral_at(user(x % USERS), at).await.unwrap();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let start = Instant::now();
        for w in workers {
            w.await.unwrap();
        }
        let (n, secs) = (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64());
        println!(
            "| {tasks} | {:.0} | {:.2} ms |",
            n as f64 / secs,
            secs * 1e3 * tasks as f64 / n as f64
        );
    }
}

async fn redis_sizes(reader: &CollateralReader, cache: &RedisCollateralCache) {
    let users = reader.rebuild_cache(|_, _| {}).await.unwrap();
    let mut conn = cache.connection();
    let mut by_assets: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(1_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(cache.key(&user(i)))
                .arg("SAMPLES")
                .arg(0);
        }
        let bytes: Vec<Option<u64>> = pipe.query_async(&mut conn).await.unwrap();
        for (&i, b) in chunk.iter().zip(bytes) {
            let e = by_assets.entry(i % u64::from(ASSETS) + 1).or_default();
            e.0 += 1;
            e.1 += b.expect("every holder has an entry");
        }
    }
    println!("\nRedis, `MEMORY USAGE` of the {users} entries `rebuild_cache` wrote:");
    println!("| assets held | users | bytes per user |");
    println!("|---|---|---|");
    for (assets, (n, bytes)) in &by_assets {
        println!("| {assets} | {n} | {:.1} |", *bytes as f64 / *n as f64);
    }
    let (n, bytes) = by_assets
        .values()
        .fold((0, 0), |(n, b), (m, c)| (n + m, b + c));
    println!("| all | {n} | {:.1} |", bytes as f64 / n as f64);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("scaling: bench");
        return;
    }
    let pg = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let schema = format!("bench_scaling_{}", std::process::id());
    let store = PostgresStore::connect_in_schema(&pg, &schema)
        .await
        .expect("Postgres reachable");
    let chain = chain();
    let mut config = WatcherConfig::new(EngineConfig::new(registry(), CONFIRMATIONS));
    config.start_block = 1;
    let started = Instant::now();
    let mut watcher = Watcher::new(config, chain.clone(), Arc::new(store.clone()))
        .await
        .unwrap();
    while watcher.sync().await.unwrap().applied > 0 {}
    let head = watcher.window().head().unwrap().number;
    println!(
        "catch-up of {} blocks in {:.1} s; load {}",
        head,
        started.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    watcher.shutdown().await.unwrap();
    postgres_sizes(&store).await;

    let valuator = Valuator::new(Arc::new(registry()), u64::MAX);
    let cache = Arc::new(
        RedisCollateralCache::connect(&redis, &format!("rc_scaling_{}", std::process::id()))
            .await
            .expect("Redis reachable"),
    );
    let reader = Arc::new(
        CollateralReader::new(Arc::new(store.clone()), valuator).with_cache(cache.clone()),
    );
    read_rate(&reader, head).await;
    redis_sizes(&reader, &cache).await;

    use reorg_collateral::traits::CollateralCache;
    cache.clear().await.unwrap();
    store
        .pool()
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
}
