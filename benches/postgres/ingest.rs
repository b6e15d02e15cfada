//! `pg_ingest`: the batched watcher (with and without the head memo, with Redis and a
//! subscriber) against the original design's per-row write path.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BASELINE_BLOCKS, BLOCKS, EVENTS_PER_BLOCK, chain, config, drop_schema, fresh};
use criterion::{Criterion, Throughput};
use reorg_collateral::Watcher;
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{Block, Effect};
use reorg_collateral::prelude::*;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::CollateralCache;

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
            for (i, (key, effect)) in e.effects().enumerate() {
                assert!(expected.insert((b.id(), e.log, e.ordinal(i), key, effect)));
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
                    Effect::Reconcile(a) => (3, a, a.to_string()),
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

pub(crate) fn ingest(c: &mut Criterion) {
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
    // `batched_watcher_history_index`: the same with the history index of
    // `collateral_at_block` (`PostgresStore::create_history_indexes`), its cost on ingest.
    for (name, memo, history) in [
        ("batched_watcher", 262_144, false),
        ("batched_watcher_no_memo", 0, false),
        ("batched_watcher_history_index", 262_144, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let store = fresh("ingest").await;
                        if history {
                            store.create_history_indexes().await.unwrap();
                        }
                        let store = Arc::new(store);
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
