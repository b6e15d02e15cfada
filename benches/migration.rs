//! Backfill throughput (needs `DATABASE_URL`, default the local test database).
//!
//! `migration_backfill/<rows>`: a full backfill (start + fold + merge) of a legacy log in
//! the original design's shape (hex-text addresses, signed amounts, a status column;
//! 10,000 users × 3 assets) of 250k, 500k and 1M rows, so throughput and linearity are read
//! off the same run. `MIGRATION_BENCH_ROWS` (comma-separated) replaces the sizes.
//!
//! `cargo bench --bench migration --features postgres`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reorg_collateral::migration::{Backfill, History, LegacyLog, Phase};
use reorg_collateral::store::PostgresStore;
use sqlx::{AssertSqlSafe, Executor};

#[path = "../tests/support/legacy.rs"]
mod legacy;

static SCHEMA: AtomicUsize = AtomicUsize::new(0);

fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn sizes() -> Vec<u64> {
    std::env::var("MIGRATION_BENCH_ROWS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![250_000, 500_000, 1_000_000])
}

async fn legacy_store(rows: u64) -> PostgresStore {
    let schema = format!(
        "bench_migration_{}_{}",
        std::process::id(),
        SCHEMA.fetch_add(1, Ordering::Relaxed)
    );
    let store = PostgresStore::connect_in_schema(&url(), &schema)
        .await
        .expect("Postgres reachable");
    let pool = store.pool();
    legacy::create_table(pool, "legacy_log").await;
    legacy::fill_confirmed(pool, rows).await;
    pool.execute("CREATE INDEX legacy_log_block ON legacy_log (block_number)")
        .await
        .expect("index");
    pool.execute("VACUUM ANALYZE legacy_log")
        .await
        .expect("analyze");
    store
}

async fn reset(store: &PostgresStore) {
    store
        .pool()
        .execute("DELETE FROM migration_state; TRUNCATE user_current_balances, migration_backfill")
        .await
        .expect("reset");
}

async fn drop_schema(store: &PostgresStore) {
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(store.pool())
        .await
        .expect("schema");
    store
        .pool()
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .expect("drop schema");
}

fn backfill(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let history = History::Legacy(LegacyLog::original_design("legacy_log"));
    let mut group = c.benchmark_group("migration_backfill");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(5));
    let mut table = Vec::new();
    for rows in sizes() {
        let store = rt.block_on(legacy_store(rows));
        group.throughput(Throughput::Elements(rows));
        let mut times = Vec::new();
        group.bench_with_input(BenchmarkId::from_parameter(rows), &rows, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        reset(&store).await;
                        let job = Backfill::new(store.pool().clone(), history.clone());
                        let started = Instant::now();
                        job.start(None).await.expect("start");
                        let done = job.run(|_| {}).await.expect("backfill");
                        let took = started.elapsed();
                        assert_eq!(done.phase, Phase::Done);
                        assert_eq!(done.rows_folded, rows);
                        times.push(took);
                        total += took;
                    }
                    total
                })
            })
        });
        times.sort();
        table.push((rows, times[times.len() / 2]));
        rt.block_on(drop_schema(&store));
    }
    group.finish();
    let (base_rows, base_time) = table[0];
    println!("\n| log rows | backfill (median) | rows/s | time vs {base_rows} rows |");
    println!("|---|---|---|---|");
    for (rows, t) in &table {
        println!(
            "| {rows} | {:.2} s | {:.0} k | {:.2}× (rows {:.1}×) |",
            t.as_secs_f64(),
            *rows as f64 / t.as_secs_f64() / 1e3,
            t.as_secs_f64() / base_time.as_secs_f64(),
            *rows as f64 / base_rows as f64
        );
    }
}

criterion_group!(benches, backfill);
criterion_main!(benches);
