//! The read path's cost does not depend on history (issue #25): after a catch-up, every
//! block of which was written pending and updated to confirmed, reading the window, the
//! head and a user's collateral touches the rows of the unconfirmed window only.
//!
//! What a read touches is counted exactly, not timed: the index entries and heap tuples a
//! session's scans read of `blocks` (`pg_stat_user_indexes.idx_tup_read`,
//! `pg_stat_user_tables.seq_tup_read`), flushed by that very session
//! (`pg_stat_force_next_flush()`: the server flushes before it reports the statement done)
//! before it reads them. The reader's pool has one connection, so the store's reads and the
//! counting run on one session; the writer's pool has one too, flushed the same way once
//! the watcher is idle, so nothing it did lands in a count. A transaction
//! holding a snapshot from before the catch-up keeps every dead index entry the catch-up
//! leaves in place (neither vacuum nor an index scan may remove one a snapshot can still
//! see): the worst case a long report query makes, the same on every run.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::reader::{CollateralReader, ValuationPoint};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, StoreWriter, Watcher, WatcherConfig};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use support::pg::{fresh_pool, schema_of, schema_options};

const TOKEN: Address = Address::repeat_byte(0xA1);
const CONFIRMATIONS: u64 = 12;
/// Blocks of each catch-up: far more than the window, so a read that walked the history
/// would read far more than the bound.
const BLOCKS: u64 = 400;

fn user(i: u64) -> Address {
    Address::left_padding_from(&(i + 1).to_be_bytes())
}

/// Mines `n` blocks of one transfer each between the first users.
fn mine(chain: &SimulatedChain, n: u64) {
    for i in 0..n {
        chain.mine(|b| {
            b.transfer(TOKEN, user(i % 3), user((i + 1) % 3), U256::from(1));
        });
    }
}

/// Index entries and heap tuples of `blocks` that this session's scans read so far:
/// forces the session's pending statistics out first (they are flushed when it goes
/// idle after the forcing statement), so the count includes its previous statements.
async fn blocks_read(pool: &PgPool) -> (i32, i64) {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await
        .expect("pg_stat_force_next_flush (PostgreSQL 15 or later)");
    sqlx::query_as(
        "SELECT pg_backend_pid(),
                (SELECT COALESCE(sum(idx_tup_read), 0) FROM pg_stat_user_indexes
                  WHERE schemaname = current_schema() AND relname = 'blocks')::int8
              + (SELECT COALESCE(sum(seq_tup_read), 0) FROM pg_stat_user_tables
                  WHERE schemaname = current_schema() AND relname = 'blocks')::int8",
    )
    .fetch_one(pool)
    .await
    .expect("read the statistics of blocks")
}

/// How many index entries and tuples of `blocks` `read` touches.
async fn touched<F: Future<Output = ()>>(pool: &PgPool, read: F) -> i64 {
    let (pid, before) = blocks_read(pool).await;
    read.await;
    let (same, after) = blocks_read(pool).await;
    assert_eq!(
        pid, same,
        "the reader's only connection was replaced mid-count"
    );
    after - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_touch_the_window_not_the_history() {
    let schema = schema_of(&fresh_pool().await).await;
    let one_connection = || {
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(schema_options(&schema))
    };
    let writer_pool = one_connection().await.expect("the writer's one connection");
    let writer = Arc::new(PostgresStore::new(writer_pool.clone()));
    let registry = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).expect("registry");
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        for i in 0..3 {
            b.deposit(TOKEN, user(i), U256::from(1_000_000u64));
        }
        b.price(TOKEN, I256::try_from(100_000_000i64).expect("price"), 8);
    });
    let mut config = WatcherConfig::new(EngineConfig::new(registry.clone(), CONFIRMATIONS));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, chain.clone(), writer.clone())
        .await
        .expect("watcher");

    // A snapshot from before the catch-ups, held to the end.
    let mut holder = PgConnection::connect_with(&schema_options(&schema))
        .await
        .expect("snapshot holder");
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT count(*) FROM blocks")
        .execute(&mut holder)
        .await
        .expect("take the snapshot");

    let reader_pool = one_connection().await.expect("the reader's one connection");
    let store = Arc::new(PostgresStore::new(reader_pool.clone()));
    let reader = CollateralReader::new(store.clone(), Valuator::new(Arc::new(registry), u64::MAX));

    for round in 1..=2u64 {
        mine(&chain, BLOCKS);
        watcher.sync().await.expect("catch-up");
        watcher.flush().await;
        // The writer's statistics are out before the reader counts.
        blocks_read(&writer_pool).await;
        let expected = watcher.window().clone();
        assert_eq!(expected.unconfirmed.len() as u64, CONFIRMATIONS);
        let history = chain.head_number();
        assert!(history > round * BLOCKS);
        assert_eq!(expected.head().map(|h| h.number), Some(history));

        let window = touched(&reader_pool, async {
            assert_eq!(store.window().await.expect("window"), expected);
        })
        .await;
        let head = touched(&reader_pool, async {
            assert_eq!(store.head().await.expect("head"), expected.head().copied());
        })
        .await;
        let collateral = touched(&reader_pool, async {
            let c = reader.collateral(user(0)).await.expect("collateral");
            let at = ValuationPoint::of(expected.head());
            assert_eq!(c.block, history);
            assert_eq!(c, reader.collateral_at(user(0), at).await.expect("at"));
        })
        .await;
        // The window's pending blocks, the finalized block's primary-key probe, and
        // nothing of the `history` blocks below them (each left a dead entry in
        // `blocks_pending`, kept by the held snapshot).
        let bound = CONFIRMATIONS as i64 + 2;
        assert!(
            window <= bound,
            "round {round}: reading the window of {CONFIRMATIONS} blocks touched {window} \
             entries of blocks after {history} blocks of history (bound {bound})"
        );
        assert!(
            head <= 3,
            "round {round}: reading the head touched {head} entries of blocks"
        );
        let state = touched(&reader_pool, async {
            let (head, state) = store.head_state().await.expect("state").expect("a head");
            assert_eq!(Some(head), expected.head().copied());
            assert_eq!(Some(state), expected.state());
        })
        .await;
        assert!(
            state <= 3,
            "round {round}: reading the head and the finalized height touched {state} entries of blocks"
        );
        // One statement (`CollateralReader::collateral_snapshot` on Postgres): the state
        // read once, with the balances and prices, nothing else of `blocks`; the valuation
        // at a given point reads no block.
        assert!(
            collateral <= 3,
            "round {round}: collateral(user) touched {collateral} entries of blocks"
        );
    }
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release the snapshot");
}
