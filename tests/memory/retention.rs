//! The embedded default stays bounded: over 1,000,000 blocks the memory store keeps the
//! unconfirmed window plus the retained confirmed blocks of log, one price state per
//! asset and one balance state per balance, whatever the chain's length.

use std::sync::Arc;

use alloy_primitives::B256;
use alloy_primitives::{Address, I256, U256};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, Block, BlockChanges,
    BlockHeader, Changeset, LogId, Price,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{MemoryStore, Retained, Retention};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const TOKEN: Address = Address::repeat_byte(0xA1);
const BLOCKS: u64 = 1_000_000;
const CONFIRMATIONS: u64 = 12;
const KEPT: u64 = 1_000;
const USERS: u8 = 20;

/// Block `n` of a linear chain.
fn header(n: u64) -> BlockHeader {
    let hash = |n: u64| B256::from(U256::from(n + 1));
    BlockHeader {
        number: n,
        hash: hash(n),
        parent_hash: if n == 0 { B256::ZERO } else { hash(n - 1) },
        timestamp: n * 12,
    }
}

/// The million blocks go to the store as changesets (one block each, a balance written per
/// block, a price every 10th, finality `CONFIRMATIONS` behind), as the watcher writes them
/// at the head: the store's retention is what is measured, not the engine.
#[tokio::test]
async fn a_million_blocks_keep_the_retained_sizes_bounded() {
    let store = MemoryStore::with_retention(Retention {
        confirmed_blocks: KEPT,
    });
    let user = |n: u64| Address::repeat_byte(1 + (n % u64::from(USERS)) as u8);
    let mut largest = Retained::default();
    let mut early = Retained::default();
    for n in 0..BLOCKS {
        let balances = vec![(
            BalanceKey {
                user: user(n),
                asset: TOKEN,
            },
            U256::from(n / u64::from(USERS) + 1),
        )];
        let prices = if n % 10 == 0 {
            vec![Price {
                asset: TOKEN,
                answer: I256::try_from(100_000_000 + n as i64).unwrap(),
                decimals: 8,
                round_id: U256::from(n + 1),
                updated_at: n * 12,
                block: n,
            }]
        } else {
            Vec::new()
        };
        let changes = Changeset {
            revert: Vec::new(),
            blocks: vec![BlockChanges {
                block: Block {
                    events: vec![BalanceEvent {
                        part: 0,
                        log: LogId {
                            tx_hash: B256::from(U256::from(n)),
                            log_index: 0,
                        },
                        asset: TOKEN,
                        change: BalanceChange::Deposit {
                            user: user(n),
                            amount: U256::from(1),
                        },
                    }],
                    ..Block::empty(header(n))
                },
                balances,
                prices,
                rejected_prices: Vec::new(),
                indexes: Vec::new(),
                asset_states: Vec::new(),
                rates: Vec::new(),
            }],
            finalize: n.checked_sub(CONFIRMATIONS).map(header),
        };
        store.apply(&changes).await.unwrap();
        if n % 1_000 == 0 {
            let r = store.retained();
            largest = Retained {
                log_blocks: largest.log_blocks.max(r.log_blocks),
                log_heights: largest.log_heights.max(r.log_heights),
                pending_blocks: largest.pending_blocks.max(r.pending_blocks),
                pending_balances: largest.pending_balances.max(r.pending_balances),
                prices: largest.prices.max(r.prices),
                users: largest.users.max(r.users),
                history: largest.history.max(r.history),
            };
            if n == 10 * KEPT {
                early = largest;
            }
        }
    }
    // The kept confirmed blocks and the unconfirmed window, all along.
    let window = (KEPT + CONFIRMATIONS) as usize;
    assert_eq!(
        (largest.log_blocks, largest.log_heights),
        (window, window),
        "{largest:?}"
    );
    assert_eq!(
        largest.pending_blocks, CONFIRMATIONS as usize,
        "{largest:?}"
    );
    // A price per pending block that carried one, plus the confirmed one.
    assert!(
        largest.prices <= CONFIRMATIONS as usize / 10 + 2,
        "{largest:?}"
    );
    // A balance holds its values of the unconfirmed window (and one confirmed value not
    // folded until its next write).
    assert_eq!(largest.users, USERS as usize);
    assert!(largest.pending_balances <= window, "{largest:?}");
    // The history (per-user log positions, balance points, prices, headers) is bounded by
    // the same retention: a position per kept block, a balance point per kept block and
    // user, a price per tenth block, a header per kept confirmed block.
    assert!(largest.history > window, "{largest:?}");
    assert!(
        largest.history <= window + 2 * KEPT as usize + KEPT as usize / 10 + USERS as usize + 2,
        "{largest:?}"
    );
    // Nothing grew after the first 10,000 blocks.
    assert_eq!(
        largest, early,
        "sizes after 1,000,000 blocks vs after 10,000"
    );
    // The kept log still answers; below it, nothing is kept.
    let head = BLOCKS - 1;
    let fin = store.window().await.unwrap().finalized_number().unwrap();
    assert_eq!(fin, head - CONFIRMATIONS);
    let kept = store.log(0..=head).await.unwrap();
    assert_eq!(
        kept.iter().map(|r| r.block.number).min(),
        Some(fin - KEPT + 1)
    );
    assert_eq!(kept.len(), window, "one deposit row per kept block");
}

#[tokio::test]
async fn the_default_store_is_bounded_and_unbounded_keeps_everything() {
    assert_eq!(
        Retention::default().confirmed_blocks,
        reorg_collateral::store::DEFAULT_RETAINED_CONFIRMED_BLOCKS
    );
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 2));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let bounded = Arc::new(MemoryStore::with_retention(Retention {
        confirmed_blocks: 5,
    }));
    let unbounded = Arc::new(MemoryStore::with_retention(Retention::UNBOUNDED));
    let mut a = Watcher::new(config.clone(), chain.clone(), bounded.clone())
        .await
        .unwrap();
    let mut b = Watcher::new(config, chain.clone(), unbounded.clone())
        .await
        .unwrap();
    for n in 0..50u64 {
        chain.mine(|blk| {
            blk.deposit(TOKEN, Address::repeat_byte(1), U256::from(n + 1));
        });
    }
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    // Head 51, finalized 49: blocks 45..=49 confirmed and kept, 50..=51 pending.
    assert_eq!(bounded.retained().log_blocks, 7);
    assert_eq!(unbounded.retained().log_blocks, 51);
    // The history behind explain and collateral_at_block is counted, and bounded with the
    // log: the unbounded store keeps a log position and a balance point per block.
    assert!(
        bounded.retained().history < unbounded.retained().history,
        "{:?} vs {:?}",
        bounded.retained(),
        unbounded.retained()
    );
    assert!(
        unbounded.retained().history >= 51 + 49,
        "{:?}",
        unbounded.retained()
    );
    // Balances are the same: retention drops only the log.
    let key = Address::repeat_byte(1);
    assert_eq!(
        bounded.user_balances(key).await.unwrap(),
        unbounded.user_balances(key).await.unwrap()
    );
}
