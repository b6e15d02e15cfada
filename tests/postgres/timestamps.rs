//! Hostile timestamps: a block timestamp and a price `updatedAt` at or beyond 2^63 (any
//! `u64` a source can decode) are stored exactly on Postgres, as in memory, and ingestion
//! goes on; they used to be refused on Postgres only, on every retry.

use std::sync::Arc;

use alloy_primitives::{Address, B256, I256, U256};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BalanceEvent, Block, BlockHeader, LogId, PriceUpdate,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::support::pg::fresh_store;

const TOKEN: Address = Address::repeat_byte(0xA1);
const BLOCK_TIME: u64 = (1 << 63) + 7;

fn config() -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).expect("registry");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 2));
    config.start_block = 1;
    config
}

fn log(i: u64) -> LogId {
    LogId {
        tx_hash: B256::repeat_byte(i as u8 + 1),
        log_index: i,
    }
}

/// Ingests three hostile blocks on `store`, restarts a watcher on it and ingests one more;
/// returns what the store holds.
async fn run(store: Arc<dyn BalanceStore>) -> String {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        b.deposit(TOKEN, Address::repeat_byte(0x11), U256::from(5));
    });
    let mut watcher = Watcher::new(config(), chain.clone(), store.clone())
        .await
        .expect("watcher");
    watcher.sync().await.expect("first block");
    let mut parent = *watcher.window().head().expect("head");
    let mut next = |i: u8, updated_at: u64| {
        let header = BlockHeader {
            number: parent.number + 1,
            hash: B256::repeat_byte(0x40 + i),
            parent_hash: parent.hash,
            timestamp: BLOCK_TIME + u64::from(i),
        };
        parent = header;
        Block {
            header,
            events: vec![BalanceEvent {
                part: 0,
                log: log(0),
                asset: TOKEN,
                change: BalanceChange::Deposit {
                    user: Address::repeat_byte(0x11),
                    amount: U256::from(1),
                },
            }],
            prices: vec![PriceUpdate {
                log: log(1),
                asset: TOKEN,
                answer: I256::try_from(100_000_000i64).expect("answer"),
                decimals: 8,
                round_id: U256::from(i),
                updated_at,
            }],
            rates: Vec::new(),
        }
    };
    for (i, updated_at) in [(1, u64::MAX), (2, 1 << 63), (3, u64::MAX - 1)] {
        watcher
            .ingest(next(i, updated_at))
            .await
            .unwrap_or_else(|e| panic!("hostile block {i} is ingested: {e}"));
    }
    drop(watcher);
    let mut watcher = Watcher::new(config(), chain.clone(), store.clone())
        .await
        .expect("a restarted watcher reads the window back");
    watcher
        .ingest(next(4, 1_000))
        .await
        .expect("ingestion goes on");
    let window = store.window().await.expect("window");
    let head = window.head().expect("head");
    assert_eq!(head.timestamp, BLOCK_TIME + 4, "stored exactly");
    let price = store.price(TOKEN).await.expect("price");
    assert_eq!(price.confirmed.map(|p| p.updated_at), Some(1 << 63));
    assert_eq!(price.pending.map(|p| p.updated_at), Some(1_000));
    format!(
        "{window:?}\n{price:?}\n{:?}",
        store.log(0..=u64::MAX).await.expect("log")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_beyond_i64_are_stored_exactly_and_ingestion_goes_on() {
    let postgres = run(Arc::new(fresh_store().await)).await;
    let memory = run(Arc::new(MemoryStore::new())).await;
    assert_eq!(postgres, memory, "both backends hold the same");
}
