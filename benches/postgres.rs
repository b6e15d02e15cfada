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
//! `cargo bench --bench postgres --features postgres,redis`
//! `ingest` and `read` (in `benches/postgres/`) hold the two groups; the fixtures they share
//! are here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::{Address, U256};
use criterion::{criterion_group, criterion_main};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, WatcherConfig};
use sqlx::{AssertSqlSafe, Executor};

#[path = "postgres/ingest.rs"]
mod ingest;
#[path = "postgres/read.rs"]
mod read;

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

criterion_group!(benches, ingest::ingest, read::read);
criterion_main!(benches);
