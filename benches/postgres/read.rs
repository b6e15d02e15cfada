//! `pg_read`: per-user collateral reads against the original killer query, at two log sizes;
//! and every user's collateral read after a watcher's catch-up, through `collateral` (the
//! store's head read per call) next to `collateral_at` (one head for all).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TOKEN, USERS, drop_schema, fresh, user};
use alloy_primitives::U256;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::reader::{CollateralReader, ValuationPoint};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::Executor;

/// Users read after the catch-up, and blocks of the catch-up (one transfer each): every
/// block is written pending and updated to confirmed, as a watcher catching up does.
const CATCH_UP_USERS: u64 = 2_000;
const CATCH_UP_BLOCKS: u64 = 10_000;

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

pub(crate) fn read(c: &mut Criterion) {
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
    every_user_after_catch_up(&rt, &mut group, &valuator);
    group.finish();
    print_read_table(&table);
}

/// Catches a watcher up over `CATCH_UP_BLOCKS` blocks, then reads every user's collateral,
/// as an API server answering each user does: `collateral(user)` reads the store's head
/// per call; `collateral_at` is valued at one head read once. Both should cost the same.
fn every_user_after_catch_up(
    rt: &tokio::runtime::Runtime,
    group: &mut BenchmarkGroup<'_, WallTime>,
    valuator: &Valuator,
) {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        for i in 0..CATCH_UP_USERS {
            b.deposit(TOKEN, user(i), U256::from(1_000_000_000u64));
        }
        b.price(TOKEN, 200_000_000_000i64.try_into().unwrap(), 8);
    });
    for i in 0..CATCH_UP_BLOCKS {
        chain.mine(|b| {
            b.transfer(
                TOKEN,
                user(i % CATCH_UP_USERS),
                user((i * 7 + 1) % CATCH_UP_USERS),
                U256::from(1),
            );
        });
    }
    let store = rt.block_on(async {
        let store = fresh("read_catch_up").await;
        let mut config = WatcherConfig::new(EngineConfig::new(valuator.assets().clone(), 12));
        config.start_block = 1;
        let mut watcher = Watcher::new(config, chain.clone(), Arc::new(store.clone()))
            .await
            .unwrap();
        watcher.sync().await.unwrap();
        store
    });
    let reader = CollateralReader::new(Arc::new(store.clone()), valuator.clone());
    let users: Vec<_> = (0..CATCH_UP_USERS).map(user).collect();
    let blocks = 1 + CATCH_UP_BLOCKS;
    group.bench_with_input(
        BenchmarkId::new("every_user_after_catch_up/collateral", blocks),
        &blocks,
        |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    for u in &users {
                        reader.collateral(*u).await.unwrap();
                    }
                })
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("every_user_after_catch_up/collateral_at", blocks),
        &blocks,
        |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let at = ValuationPoint::of(reader.head().await.unwrap().as_ref());
                    for u in &users {
                        reader.collateral_at(*u, at).await.unwrap();
                    }
                })
            })
        },
    );
    rt.block_on(drop_schema(&store));
}
