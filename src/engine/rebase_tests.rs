//! The engine with a rebasing asset: events of one log by part, amounts to shares at the
//! index in effect, index rows per block.

use alloy_primitives::{Address, B256, U256};

use crate::engine::{BaseState, Engine, EngineConfig, Plan};
use crate::error::EngineError;
use crate::model::{
    Asset, AssetIndex, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader,
    IndexUpdate, LogId, Window,
};

const AMPL: Address = Address::repeat_byte(0xA1);

fn engine() -> Engine {
    let assets = AssetRegistry::new([Asset::new(AMPL, "AMPL", 9, 10_000)]).unwrap();
    Engine::new(EngineConfig::new(assets, 3), Window::default())
}

fn event(log_index: u64, part: u16, change: BalanceChange) -> BalanceEvent {
    BalanceEvent {
        log: LogId {
            tx_hash: B256::repeat_byte(log_index as u8 + 1),
            log_index,
        },
        asset: AMPL,
        change,
        part,
    }
}

fn block(events: Vec<BalanceEvent>) -> Block {
    Block {
        header: BlockHeader {
            number: 10,
            hash: B256::repeat_byte(1),
            parent_hash: B256::ZERO,
            timestamp: 0,
        },
        events,
        prices: Vec::new(),
        rates: Vec::new(),
    }
}

fn user(b: u8) -> Address {
    Address::repeat_byte(b)
}

#[test]
fn amounts_move_shares_at_the_index_in_effect_and_the_block_writes_its_index() {
    let e = engine();
    let mint = BalanceChange::Transfer {
        from: Address::ZERO,
        to: user(1),
        amount: U256::from(100),
    };
    let first = AssetIndex::div_by(U256::from(1_000));
    let second = AssetIndex::div_by(U256::from(3_000));
    let b = block(vec![
        event(0, 0, BalanceChange::Rebase { index: first }),
        event(0, 1, mint),
        event(
            1,
            0,
            BalanceChange::Transfer {
                from: user(1),
                to: user(2),
                amount: U256::from(10),
            },
        ),
        event(2, 0, BalanceChange::Rebase { index: second }),
        event(
            3,
            0,
            BalanceChange::Deposit {
                user: user(2),
                amount: U256::from(1),
            },
        ),
    ]);
    let Plan::Apply(t) = e.plan(vec![b]).unwrap() else {
        panic!("a transition");
    };
    assert_eq!(t.event_assets(), vec![AMPL]);
    let c = e.build(t, BaseState::default(), None).unwrap();
    let key = |u| BalanceKey {
        user: user(u),
        asset: AMPL,
    };
    // Shares: 100 × 1000 minted, 10 × 1000 moved, 1 × 3000 deposited after the rebase.
    assert_eq!(
        c.blocks[0].balances,
        vec![(key(1), U256::from(90_000)), (key(2), U256::from(13_000))]
    );
    assert_eq!(
        c.blocks[0].indexes,
        vec![IndexUpdate {
            asset: AMPL,
            index: second,
            rebased: true,
        }]
    );
}

#[test]
fn a_repeated_part_of_one_log_is_refused_and_parts_must_ascend() {
    let e = engine();
    let set = |u| BalanceChange::Set {
        user: user(u),
        balance: U256::from(1),
    };
    assert!(matches!(
        e.plan(vec![block(vec![event(0, 0, set(1)), event(0, 0, set(2))])]),
        Err(EngineError::DuplicateLog { .. })
    ));
    assert!(matches!(
        e.plan(vec![block(vec![event(0, 1, set(1)), event(0, 0, set(2))])]),
        Err(EngineError::LogOutOfOrder { .. })
    ));
    assert!(
        e.plan(vec![block(vec![event(0, 0, set(1)), event(0, 1, set(2))])])
            .is_ok()
    );
}

#[test]
fn an_invalid_index_is_refused_and_a_plain_block_of_an_indexed_asset_writes_it_unchanged() {
    let e = engine();
    let zero = AssetIndex::div_by(U256::ZERO);
    let Plan::Apply(t) = e
        .plan(vec![block(vec![event(
            0,
            0,
            BalanceChange::Rebase { index: zero },
        )])])
        .unwrap()
    else {
        panic!("a transition");
    };
    assert!(matches!(
        e.build(t, BaseState::default(), None),
        Err(EngineError::InvalidIndex { .. })
    ));
    let index = AssetIndex::div_by(U256::from(7));
    let deposit = BalanceChange::Deposit {
        user: user(1),
        amount: U256::from(2),
    };
    let Plan::Apply(t) = e.plan(vec![block(vec![event(0, 0, deposit)])]).unwrap() else {
        panic!("a transition");
    };
    let base = BaseState {
        indexes: vec![(AMPL, index)],
        ..BaseState::default()
    };
    let c = e.build(t, base, None).unwrap();
    assert_eq!(c.blocks[0].balances[0].1, U256::from(14));
    assert_eq!(
        c.blocks[0].indexes,
        vec![IndexUpdate {
            asset: AMPL,
            index,
            rebased: false,
        }]
    );
}
