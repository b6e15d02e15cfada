//! Bad inputs through the watcher: each is a typed error and leaves every piece of stored
//! state (window, balances, prices, log) exactly as it was.

use std::sync::Arc;

use alloy_primitives::{Address, B256, I256, U256};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BalanceKey, Block, BlockHeader,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::PriceFeed;
use reorg_collateral::{EngineConfig, EngineError, Error, Watcher, WatcherConfig};

const TOKEN: Address = Address::repeat_byte(0xA1);

fn alice() -> Address {
    Address::repeat_byte(0x11)
}

fn bob() -> Address {
    Address::repeat_byte(0x22)
}

struct Setup {
    chain: Arc<SimulatedChain>,
    store: Arc<MemoryStore>,
    watcher: Watcher,
}

async fn setup(confirmations: u64) -> Setup {
    // Strict: these tests assert that a fault refuses the block (the default policy would
    // quarantine the asset instead, see tests/memory/quarantine.rs).
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 6, 8_000)
        .with_policy(reorg_collateral::model::FaultPolicy::Strict)])
    .unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, confirmations));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await
        .unwrap();
    chain.mine(|b| {
        b.deposit(TOKEN, alice(), U256::from(1_000));
        b.price(TOKEN, I256::try_from(100_000_000i64).unwrap(), 8);
    });
    for _ in 0..4 {
        chain.mine(|b| {
            b.transfer(TOKEN, alice(), bob(), U256::from(10));
        });
    }
    watcher.sync().await.unwrap();
    Setup {
        chain,
        store,
        watcher,
    }
}

/// Everything a store exposes, for before/after comparison.
async fn snapshot(store: &MemoryStore) -> String {
    let window = store.window().await.unwrap();
    let mut out = format!("{window:?}\n");
    for user in [alice(), bob()] {
        let b = store
            .balance(BalanceKey { user, asset: TOKEN })
            .await
            .unwrap();
        out += &format!("{user}: {b:?}\n");
    }
    out += &format!("{:?}\n", store.price(TOKEN).await.unwrap());
    out += &format!("{:?}\n", store.log(0..=u64::MAX).await.unwrap());
    out
}

fn next_header(s: &Setup) -> BlockHeader {
    let head = s.watcher.window().head().copied().unwrap();
    BlockHeader {
        number: head.number + 1,
        hash: B256::repeat_byte(0x42),
        parent_hash: head.hash,
        timestamp: head.timestamp + 12,
    }
}

fn event(index: u64, change: BalanceChange) -> reorg_collateral::model::BalanceEvent {
    reorg_collateral::model::BalanceEvent {
        part: 0,
        log: reorg_collateral::model::LogId {
            tx_hash: B256::repeat_byte(index as u8 + 1),
            log_index: index,
        },
        asset: TOKEN,
        change,
    }
}

#[tokio::test]
async fn gap_is_refused_without_change() {
    let mut s = setup(3).await;
    let before = snapshot(&s.store).await;
    let mut header = next_header(&s);
    header.number += 1;
    let err = s.watcher.ingest(Block::empty(header)).await.unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::Gap { expected, .. }) if expected == header.number - 1),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
}

#[tokio::test]
async fn too_deep_reorg_is_refused_without_change() {
    let mut s = setup(2).await;
    let fin = s.watcher.window().finalized_number().unwrap();
    let head = s.chain.head_number();
    let before = snapshot(&s.store).await;
    // Fork below the finalized height on the source, longer than ours.
    s.chain.reorg(head - fin + 1);
    for _ in 0..6 {
        s.chain.mine(|b| {
            b.deposit(TOKEN, bob(), U256::from(1));
        });
    }
    let err = s.watcher.sync().await.unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::ReorgBeyondFinality { finalized, .. }) if finalized == fin),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
}

#[tokio::test]
async fn duplicate_blocks_are_no_ops_or_refused_without_change() {
    let mut s = setup(2).await;
    let before = snapshot(&s.store).await;
    let canonical = s.chain.canonical();
    let fin = s.watcher.window().finalized_number().unwrap();
    // In the window (head and the finalized tip): idempotent no-op.
    for b in canonical.iter().filter(|b| b.header.number >= fin) {
        let report = s.watcher.ingest(b.clone()).await.unwrap();
        assert_eq!(report.applied, 0);
    }
    // Below the finalized tip: a duplicate from history, refused.
    let old = canonical
        .iter()
        .find(|b| b.header.number < fin)
        .unwrap()
        .clone();
    let err = s.watcher.ingest(old).await.unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::AlreadyFinalized { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
}

#[tokio::test]
async fn malformed_events_are_refused_without_change() {
    let mut s = setup(3).await;
    let before = snapshot(&s.store).await;
    let header = next_header(&s);
    let deposit = BalanceChange::Deposit {
        user: alice(),
        amount: U256::from(1),
    };
    let dup = Block {
        header,
        events: vec![event(0, deposit), event(0, deposit)],
        prices: vec![],
        rates: Vec::new(),
    };
    let err = s.watcher.ingest(dup).await.unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::DuplicateLog { .. })),
        "{err}"
    );

    let mut unknown = event(0, deposit);
    unknown.asset = Address::repeat_byte(0xEE);
    let err = s
        .watcher
        .ingest(Block {
            header,
            events: vec![unknown],
            prices: vec![],
            rates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::UnknownAsset { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
}

#[tokio::test]
async fn logs_out_of_log_order_are_refused_without_change() {
    let mut s = setup(3).await;
    let before = snapshot(&s.store).await;
    let header = next_header(&s);
    // In log order: alice is set to 5, then credited 1 (6). Delivered the other way round,
    // a fold in delivery order would store 5 while the log (folded by index) says 6.
    let set = BalanceChange::Set {
        user: alice(),
        balance: U256::from(5),
    };
    let deposit = BalanceChange::Deposit {
        user: alice(),
        amount: U256::from(1),
    };
    let swapped = Block {
        header,
        events: vec![event(1, deposit), event(0, set)],
        prices: vec![],
        rates: Vec::new(),
    };
    let err = s.watcher.ingest(swapped).await.unwrap_err();
    match &err {
        Error::Engine(EngineError::LogOutOfOrder { log, previous, .. }) => {
            assert_eq!((log.log_index, *previous), (0, 1), "{err}");
        }
        other => panic!("expected LogOutOfOrder, got {other:?}"),
    }
    assert!(err.to_string().contains("out of log order"), "{err}");
    assert_eq!(snapshot(&s.store).await, before);

    // Price updates too: the later of two updates of one asset wins, in log order.
    let update = |index: u64, round: u64| reorg_collateral::model::PriceUpdate {
        log: reorg_collateral::model::LogId {
            tx_hash: B256::repeat_byte(index as u8 + 1),
            log_index: index,
        },
        asset: TOKEN,
        answer: I256::try_from(100 + round).unwrap(),
        decimals: 8,
        round_id: U256::from(round),
        updated_at: header.timestamp,
    };
    let err = s
        .watcher
        .ingest(Block {
            header,
            events: vec![],
            prices: vec![update(3, 2), update(2, 1)],
            rates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::LogOutOfOrder { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
    // The same block in log order applies.
    s.watcher
        .ingest(Block {
            header,
            events: vec![event(0, set), event(1, deposit)],
            prices: vec![],
            rates: Vec::new(),
        })
        .await
        .expect("in log order");
    let key = BalanceKey {
        user: alice(),
        asset: TOKEN,
    };
    assert_eq!(s.store.balance(key).await.unwrap().pending, U256::from(6));
}

#[tokio::test]
async fn overflow_and_underflow_are_refused_without_change() {
    let mut s = setup(3).await;
    let before = snapshot(&s.store).await;
    let header = next_header(&s);
    // The first event alone is fine; the block as a whole must not half-apply.
    let events = vec![
        event(
            0,
            BalanceChange::Deposit {
                user: bob(),
                amount: U256::from(5),
            },
        ),
        event(
            1,
            BalanceChange::Deposit {
                user: alice(),
                amount: U256::MAX,
            },
        ),
    ];
    let err = s
        .watcher
        .ingest(Block {
            header,
            events,
            prices: vec![],
            rates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::BalanceOverflow(ref f)) if f.user == alice() && f.log.log_index == 1),
        "{err}"
    );

    let events = vec![
        event(
            0,
            BalanceChange::Deposit {
                user: bob(),
                amount: U256::from(5),
            },
        ),
        event(
            1,
            BalanceChange::Transfer {
                from: bob(),
                to: alice(),
                amount: U256::from(1_000_000),
            },
        ),
    ];
    let err = s
        .watcher
        .ingest(Block {
            header,
            events,
            prices: vec![],
            rates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::BalanceUnderflow(ref f)) if f.user == bob() && f.balance == U256::from(45)),
        "{err}"
    );
    assert_eq!(snapshot(&s.store).await, before);
}

#[tokio::test]
async fn rejected_prices_are_reported_and_not_used() {
    let mut s = setup(3).await;
    let before = s.store.price(TOKEN).await.unwrap();
    s.chain.mine(|b| {
        b.price(TOKEN, I256::ZERO, 8);
        b.price(TOKEN, I256::try_from(-5i64).unwrap(), 8);
        b.price_at_round(TOKEN, I256::try_from(5i64).unwrap(), 8, U256::from(1));
    });
    let report = s.watcher.sync().await.unwrap();
    assert_eq!(report.rejected_prices, 3);
    assert_eq!(s.store.price(TOKEN).await.unwrap().pending, before.pending);
}
