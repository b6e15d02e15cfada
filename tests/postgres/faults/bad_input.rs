//! Bad input (duplicate logs, unknown assets, gaps, underflow and overflow, stray or
//! out-of-range changesets) is a typed error and leaves Postgres unchanged.

use crate::support;

use std::sync::Arc;

use super::dump;
use alloy_primitives::{Address, B256, U256};
use reorg_collateral::model::{BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader, LogId};
use reorg_collateral::prelude::*;
use reorg_collateral::testing::{Backends, Harness};
use reorg_collateral::{EngineError, Error, StoreError};
use support::pg::fresh_store;

#[tokio::test]
async fn bad_input_is_typed_and_leaves_postgres_unchanged() {
    let store = Arc::new(fresh_store().await);
    let backends = Backends::new(store.clone());
    // Strict assets: a fault must refuse the block (the default policy quarantines).
    let mut h = Harness::with_config(backends, 3, 5, |c| {
        let strict = reorg_collateral::testing::harness::default_assets()
            .into_iter()
            .map(|a| a.with_policy(reorg_collateral::model::FaultPolicy::Strict));
        c.engine.assets = Arc::new(reorg_collateral::model::AssetRegistry::new(strict).unwrap());
    })
    .await;
    h.chain.mine(|b| {
        b.deposit(h.assets[0].id, h.users[0], U256::from(1_000));
    });
    h.sync().await;
    let before = dump(&store).await;
    let head = *h.watcher.window().head().unwrap();
    let next = BlockHeader {
        number: head.number + 1,
        hash: B256::repeat_byte(9),
        parent_hash: head.hash,
        timestamp: head.timestamp + 12,
    };
    let event = |i: u64, asset: Address, change| BalanceEvent {
        part: 0,
        log: LogId {
            tx_hash: B256::repeat_byte(1),
            log_index: i,
        },
        asset,
        change,
    };
    let credit = BalanceChange::Deposit {
        user: h.users[0],
        amount: U256::from(1),
    };

    let dup = Block {
        header: next,
        events: vec![
            event(0, h.assets[0].id, credit),
            event(0, h.assets[0].id, credit),
        ],
        prices: vec![],
        rates: Vec::new(),
    };
    assert!(matches!(
        h.watcher.ingest(dup).await,
        Err(Error::Engine(EngineError::DuplicateLog { .. }))
    ));
    let unknown = Block {
        header: next,
        events: vec![event(0, Address::repeat_byte(0xEE), credit)],
        prices: vec![],
        rates: Vec::new(),
    };
    assert!(matches!(
        h.watcher.ingest(unknown).await,
        Err(Error::Engine(EngineError::UnknownAsset { .. }))
    ));
    let gap = Block::empty(BlockHeader {
        number: head.number + 2,
        ..next
    });
    assert!(matches!(
        h.watcher.ingest(gap).await,
        Err(Error::Engine(EngineError::Gap { .. }))
    ));
    let too_much = Block {
        header: next,
        events: vec![event(
            0,
            h.assets[0].id,
            BalanceChange::Withdraw {
                user: h.users[0],
                amount: U256::from(1_001),
            },
        )],
        prices: vec![],
        rates: Vec::new(),
    };
    assert!(matches!(
        h.watcher.ingest(too_much).await,
        Err(Error::Engine(EngineError::BalanceUnderflow(_)))
    ));

    // Below the engine: a changeset that does not extend the stored head is refused whole.
    let stray = reorg_collateral::model::Changeset {
        revert: vec![],
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block::empty(BlockHeader {
                parent_hash: B256::repeat_byte(3),
                ..next
            }),
            balances: vec![(
                BalanceKey {
                    user: h.users[1],
                    asset: h.assets[0].id,
                },
                U256::from(5),
            )],
            prices: vec![],
            rejected_prices: vec![],
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        }],
        finalize: None,
    };
    assert!(matches!(
        store.apply(&stray).await,
        Err(StoreError::Inconsistent { .. })
    ));
    // A height that does not fit BIGINT is a typed error, not a wrap.
    let huge = reorg_collateral::model::Changeset {
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block::empty(BlockHeader {
                number: u64::MAX,
                ..next
            }),
            balances: vec![],
            prices: vec![],
            rejected_prices: vec![],
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        }],
        ..Default::default()
    };
    assert!(matches!(
        store.apply(&huge).await,
        Err(StoreError::OutOfRange { .. }) | Err(StoreError::Inconsistent { .. })
    ));
    // A changeset that carries the same log twice (the engine would refuse it first) is
    // refused by the writer before anything is written (the log has no unique index since
    // migration 0004): typed, nothing written.
    let twice = reorg_collateral::model::Changeset {
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block {
                header: next,
                events: vec![
                    event(0, h.assets[0].id, credit),
                    event(0, h.assets[0].id, credit),
                ],
                prices: vec![],
                rates: Vec::new(),
            },
            balances: vec![(
                BalanceKey {
                    user: h.users[0],
                    asset: h.assets[0].id,
                },
                U256::from(1_002),
            )],
            prices: vec![],
            rejected_prices: vec![],
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        }],
        ..Default::default()
    };
    match store.apply(&twice).await {
        Err(StoreError::Inconsistent { detail, .. }) => {
            assert!(detail.contains("duplicate log"), "{detail}")
        }
        other => panic!("expected a duplicate-log error, got {other:?}"),
    }
    assert_eq!(dump(&store).await, before);
    // The largest amount a U256 holds round-trips exactly through NUMERIC(78,0).
    h.chain.mine(|b| {
        b.set_balance(h.assets[1].id, h.users[2], U256::MAX);
    });
    h.sync().await;
    h.check().await;
    // A credit that would push it past U256::MAX is refused whole.
    let before = dump(&store).await;
    let head = *h.watcher.window().head().unwrap();
    let overflow = Block {
        header: BlockHeader {
            number: head.number + 1,
            hash: B256::repeat_byte(0x0F),
            parent_hash: head.hash,
            timestamp: head.timestamp + 12,
        },
        events: vec![event(
            7,
            h.assets[1].id,
            BalanceChange::Deposit {
                user: h.users[2],
                amount: U256::from(1),
            },
        )],
        prices: vec![],
        rates: Vec::new(),
    };
    assert!(matches!(
        h.watcher.ingest(overflow).await,
        Err(Error::Engine(EngineError::BalanceOverflow(_)))
    ));
    assert_eq!(dump(&store).await, before);
}
