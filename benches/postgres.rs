//! Postgres benchmarks (needs `DATABASE_URL`, default the local test database).
//!
//! - `pg_ingest`: events/s through the watcher with batched writes (`COPY` + `UNNEST`, 25 blocks per
//!   transaction) during a sustained catch-up of 200 blocks of 200 transfers over 10,000
//!   users, against the original design's per-row path (one `INSERT` into
//!   `balance_updates` + one `UPSERT` into the confirmed balances per effect, one
//!   transaction per block) over the first 50 of those blocks, in the same run.
//! - `pg_read`: per-user collateral read latency with 10,000 and 1,000,000 rows in
//!   `balance_updates`, against the original "killer query" (users JOIN the whole log).
//!
//! `cargo bench --bench postgres --features postgres`

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Asset, AssetRegistry, Block, Effect};
use reorg_collateral::prelude::*;
use reorg_collateral::reader::{CollateralReader, ValuationPoint};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::CollateralCache;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::{AssertSqlSafe, Executor};

const TOKEN: Address = Address::repeat_byte(0xA1);
const USERS: u64 = 10_000;
/// Blocks of transfers after the funding block: the batched watcher syncs all of them (a
/// sustained catch-up: 8 changesets of 25 blocks, 40,000 transfers).
const BLOCKS: usize = 200;
/// Of those, the per-row baseline applies the first 50 (10,000 transfers; at ~2,600
/// events/s all 200 would take 15 s per sample). Both are reported per event.
const BASELINE_BLOCKS: usize = 50;
const EVENTS_PER_BLOCK: usize = 200;
static SCHEMA: AtomicUsize = AtomicUsize::new(0);

fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

async fn fresh(tag: &str) -> PostgresStore {
    let schema = format!(
        "bench_{tag}_{}_{}",
        std::process::id(),
        SCHEMA.fetch_add(1, Ordering::Relaxed)
    );
    PostgresStore::connect_in_schema(&url(), &schema)
        .await
        .expect("Postgres reachable")
}

async fn drop_schema(store: &PostgresStore) {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store
        .pool()
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
}

/// A chain that funds `USERS` users, then `BLOCKS` blocks of 200 transfers.
fn chain() -> Arc<SimulatedChain> {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        for i in 0..USERS {
            b.set_balance(TOKEN, user(i), U256::from(1_000_000_000u64));
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
            for _ in 0..EVENTS_PER_BLOCK {
                b.transfer(
                    TOKEN,
                    user(next() % USERS),
                    user(next() % USERS),
                    U256::from(next() % 1_000),
                );
            }
        });
    }
    chain
}

fn config() -> WatcherConfig {
    let mut c = WatcherConfig::new(EngineConfig::new(
        AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).unwrap(),
        12,
    ));
    c.start_block = 1;
    // The defaults: a catch-up batches its changesets by itself.
    c
}

/// The log the watcher wrote for `blocks`, read back, must be exactly their effects. The
/// 25-block changesets here take the binary `COPY` path of the log, which the conformance
/// suite's small changesets do not reach. Not timed.
async fn check_log(store: &PostgresStore, blocks: &[Block]) {
    let (first, last) = (
        blocks[0].header.number,
        blocks[blocks.len() - 1].header.number,
    );
    let stored = store.log(first..=last).await.unwrap();
    let stored: HashSet<_> = stored
        .iter()
        .map(|r| (r.block, r.log, r.ordinal, r.key, r.effect))
        .collect();
    let mut expected = HashSet::new();
    for b in blocks {
        for e in &b.events {
            for (ordinal, (key, effect)) in e.effects().enumerate() {
                assert!(expected.insert((b.id(), e.log, ordinal as u8, key, effect)));
            }
        }
    }
    assert_eq!(
        stored.len(),
        expected.len(),
        "log rows of #{first}..=#{last}"
    );
    assert!(
        stored == expected,
        "log of #{first}..=#{last} differs from the chain"
    );
}

/// The original design's write path: per effect, one INSERT and one UPSERT.
async fn naive_ingest(store: &PostgresStore, blocks: &[Block]) {
    let pool = store.pool();
    for block in blocks {
        let mut tx = pool.begin().await.unwrap();
        let h = &block.header;
        sqlx::query("INSERT INTO blocks (hash, number, parent_hash, timestamp, status) VALUES ($1, $2, $3, $4, 0)")
            .bind(h.hash.as_slice())
            .bind(h.number as i64)
            .bind(h.parent_hash.as_slice())
            .bind(h.timestamp as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        for e in &block.events {
            for (ordinal, (key, effect)) in e.effects().enumerate() {
                let (kind, amount, delta) = match effect {
                    Effect::Credit(a) => (0i16, a, a.to_string()),
                    Effect::Debit(a) => (1, a, format!("-{a}")),
                    Effect::Set(a) => (2, a, a.to_string()),
                };
                sqlx::query(
                    "INSERT INTO balance_updates (block_hash, block_number, tx_hash, log_index, ordinal, user_address, asset, kind, amount)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric)",
                )
                .bind(h.hash.as_slice())
                .bind(h.number as i64)
                .bind(e.log.tx_hash.as_slice())
                .bind(e.log.log_index as i64)
                .bind(ordinal as i16)
                .bind(key.user.as_slice())
                .bind(key.asset.as_slice())
                .bind(kind)
                .bind(amount.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO user_confirmed_balances (user_address, asset, balance, block_number, block_status)
                     VALUES ($1, $2, $3::numeric, $4, 1)
                     ON CONFLICT (user_address, asset)
                     DO UPDATE SET balance = user_confirmed_balances.balance + $5::numeric, block_number = EXCLUDED.block_number",
                )
                .bind(key.user.as_slice())
                .bind(key.asset.as_slice())
                .bind(amount.to_string())
                .bind(h.number as i64)
                .bind(if kind == 2 { amount.to_string() } else { delta })
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
}

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let chain = chain();
    let canonical = chain.canonical();
    let mut group = c.benchmark_group("pg_ingest");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((BLOCKS * EVENTS_PER_BLOCK) as u64));
    // The watcher keeps the balances it wrote at the head in memory (`head_memo`):
    // here all 10,000 users fit, and the funding block fills it, so the timed sync reads no
    // balance from the store. `batched_watcher_no_memo` reads every base balance from
    // Postgres (`balances_at`), the bound for a working set larger than the memo.
    for (name, memo) in [("batched_watcher", 262_144), ("batched_watcher_no_memo", 0)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let store = Arc::new(fresh("ingest").await);
                        let mut c = config();
                        c.head_memo = memo;
                        let mut w = Watcher::new(c, chain.clone(), store.clone()).await.unwrap();
                        w.ingest(canonical[0].clone()).await.unwrap();
                        // The funding block, not timed: applied and finalized (it is 200
                        // blocks deep), so the timed sync does not promote its 10,000 rows.
                        w.ingest(canonical[1].clone()).await.unwrap();
                        w.finalize_to(1).await.unwrap();
                        let start = Instant::now();
                        w.sync().await.unwrap();
                        total += start.elapsed();
                        check_log(&store, &canonical[2..]).await;
                        drop_schema(&store).await;
                    }
                    total
                })
            })
        });
    }
    // The production configuration: the same catch-up with the Redis cache and a
    // subscriber attached, timed until the cache and the subscriber have caught up.
    group.bench_function("batched_watcher_redis_subscriber", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let store = Arc::new(fresh("ingest_redis").await);
                    let redis = std::env::var("REDIS_URL")
                        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                    let prefix = format!("bench_ingest_{}_{i}", std::process::id());
                    let cache = Arc::new(
                        RedisCollateralCache::connect(&redis, &prefix)
                            .await
                            .expect("Redis reachable"),
                    );
                    let mut w = Watcher::new(config(), chain.clone(), store.clone())
                        .await
                        .unwrap()
                        .with_cache(cache.clone());
                    let mut updates = w.subscribe();
                    let subscriber = tokio::spawn(async move {
                        let mut n = 0u64;
                        while updates.recv().await.is_some() {
                            n += 1;
                        }
                        n
                    });
                    w.ingest(canonical[0].clone()).await.unwrap();
                    w.ingest(canonical[1].clone()).await.unwrap();
                    w.finalize_to(1).await.unwrap();
                    w.flush().await;
                    let start = Instant::now();
                    w.sync().await.unwrap();
                    let status = w.flush().await;
                    total += start.elapsed();
                    assert_eq!(status.failing, None);
                    drop(w);
                    assert!(subscriber.await.unwrap() > 0);
                    cache.clear().await.unwrap();
                    check_log(&store, &canonical[2..]).await;
                    drop_schema(&store).await;
                }
                total
            })
        })
    });
    group.throughput(Throughput::Elements(
        (BASELINE_BLOCKS * EVENTS_PER_BLOCK) as u64,
    ));
    group.bench_function("original_per_row_baseline", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = fresh("naive").await;
                    // Genesis and the funding block, not timed, as for the watcher.
                    naive_ingest(&store, &canonical[..2]).await;
                    let start = Instant::now();
                    naive_ingest(&store, &canonical[2..2 + BASELINE_BLOCKS]).await;
                    total += start.elapsed();
                    drop_schema(&store).await;
                }
                total
            })
        })
    });
    group.finish();
}

/// Fills `balance_updates` with `rows` rows over `USERS` users in one confirmed block, and
/// the current state with one confirmed row per user and a confirmed price: one
/// `INSERT … SELECT generate_series` each.
async fn populate(store: &PostgresStore, rows: i64) {
    let pool = store.pool();
    sqlx::query("INSERT INTO blocks VALUES ('\\x01', 1, '\\x00', 0, 1)")
        .execute(pool)
        .await
        .unwrap();
    // `addr(g)` is `user(g - 1)`: 12 zero bytes, then `g` big-endian.
    sqlx::query(
        "INSERT INTO balance_updates (block_hash, block_number, tx_hash, log_index, ordinal, user_address, asset, kind, amount)
         SELECT '\\x01', 1, int8send(g), g, 0, '\\x000000000000000000000000'::bytea || int8send(1 + g % $2), $3, 0, 1
         FROM generate_series(1, $1) g",
    )
    .bind(rows)
    .bind(USERS as i64)
    .bind(TOKEN.as_slice())
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO user_current_balances (user_address, asset, balance, block_number, block_status)
         SELECT '\\x000000000000000000000000'::bytea || int8send(g), $2, g, 1, 1 FROM generate_series(1, $1) g",
    )
    .bind(USERS as i64)
    .bind(TOKEN.as_slice())
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO oracle_prices (asset, answer, decimals, round_id, updated_at, block_number, block_status)
         VALUES ($1, 200000000000, 8, 1, 0, 1, 1)",
    )
    .bind(TOKEN.as_slice())
    .execute(pool)
    .await
    .unwrap();
    // The original design's `users` table, for its killer query.
    sqlx::query("CREATE TABLE users (user_id BIGSERIAL PRIMARY KEY, address BYTEA NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (address) SELECT '\\x000000000000000000000000'::bytea || int8send(g)
         FROM generate_series(1, $1) g",
    )
    .bind(USERS as i64)
    .execute(pool)
    .await
    .unwrap();
    pool.execute("ANALYZE").await.unwrap();
}

/// The original design's killer query as written: users JOIN the whole confirmed log
/// (status comes from `blocks` here; the original kept it on each log row).
const KILLER_QUERY: &str = "SELECT u.user_id, u.address, bu.asset, bu.amount::text FROM users u
     JOIN balance_updates bu ON u.address = bu.user_address
     JOIN blocks b ON b.hash = bu.block_hash
     WHERE b.status = 1";

/// The same join aggregated to one balance per (user, asset), computed in the server.
const KILLER_QUERY_AGGREGATED: &str =
    "SELECT u.user_id, u.address, bu.asset, SUM(bu.amount)::text FROM users u
     JOIN balance_updates bu ON u.address = bu.user_address
     JOIN blocks b ON b.hash = bu.block_hash AND b.status = 1
     GROUP BY u.user_id, u.address, bu.asset";

/// The median of `runs` timed runs of `f`.
async fn median<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    times.sort();
    times[runs / 2]
}

/// Medians of the three reads at one log size, for the printed table.
struct ReadRow {
    rows: i64,
    collateral: Duration,
    killer: Duration,
    aggregated: Duration,
}

/// Prints the read table of the README: each read's median at each size, and its growth
/// from the smallest size (the targets: collateral within 1.5×, killer query ≥ 50×).
fn print_read_table(table: &[ReadRow]) {
    let Some(base) = table.first() else { return };
    let growth = |d: Duration, b: Duration| d.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "| rows in `balance_updates` | collateral, one user | killer query as written | killer query aggregated |"
    );
    println!("|---|---|---|---|");
    for r in table {
        println!(
            "| {} | {:.0?} ({:.2}×) | {:.1?} ({:.0}×) | {:.1?} ({:.0}×) |",
            r.rows,
            r.collateral,
            growth(r.collateral, base.collateral),
            r.killer,
            growth(r.killer, base.killer),
            r.aggregated,
            growth(r.aggregated, base.aggregated),
        );
    }
    println!();
}

fn read(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let registry = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).unwrap();
    let valuator = Valuator::new(Arc::new(registry), u64::MAX);
    let probe = user(4241);
    let mut group = c.benchmark_group("pg_read");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut table = Vec::new();
    for rows in [10_000i64, 1_000_000] {
        let store = rt.block_on(async {
            let store = fresh("read").await;
            populate(&store, rows).await;
            store
        });
        // What a trading backend asks per request: `collateral(user)` = the user's balances
        // (one indexed lookup in `user_current_balances`) and their prices, valued.
        let reader = CollateralReader::new(Arc::new(store.clone()), valuator.clone());
        let collateral = || async {
            let at = ValuationPoint { block: 1, now: 0 };
            let c = reader.collateral_at(probe, at).await.unwrap();
            assert!(!c.confirmed.total.is_zero());
        };
        // The original design's killer query, as written and aggregated per (user, asset).
        let query = |sql: &'static str| {
            let pool = store.pool();
            move || async move {
                sqlx::query(sql).fetch_all(pool).await.unwrap();
            }
        };
        group.bench_with_input(
            BenchmarkId::new("collateral_per_user", rows),
            &rows,
            |b, _| b.iter(|| rt.block_on(collateral())),
        );
        for (name, sql) in [
            ("killer_query_as_written", KILLER_QUERY),
            ("killer_query_aggregated", KILLER_QUERY_AGGREGATED),
        ] {
            let run = query(sql);
            group.bench_with_input(BenchmarkId::new(name, rows), &rows, |b, _| {
                b.iter(|| rt.block_on(run()))
            });
        }
        // Medians outside criterion, for the printed table (not part of its statistics).
        let (killer_runs, collateral_runs) = (5, 201);
        table.push(rt.block_on(async {
            ReadRow {
                rows,
                collateral: median(collateral_runs, collateral).await,
                killer: median(killer_runs, query(KILLER_QUERY)).await,
                aggregated: median(killer_runs, query(KILLER_QUERY_AGGREGATED)).await,
            }
        }));
        rt.block_on(drop_schema(&store));
    }
    group.finish();
    print_read_table(&table);
}

criterion_group!(benches, ingest, read);
criterion_main!(benches);
