use alloy_primitives::{Address, B256, U256};

use crate::engine::{BaseState, Engine, EngineConfig, Plan, Transition};
use crate::model::{
    Asset, AssetRegistry, AssetState, BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader,
    FaultPolicy, FaultReason, LogId, Window, resume_log,
};

const A: Address = Address::repeat_byte(0xA1);
const B: Address = Address::repeat_byte(0xB2);

fn engine(policy: FaultPolicy) -> Engine {
    let assets = AssetRegistry::new([
        Asset::new(A, "A", 0, 10_000).with_policy(policy),
        Asset::new(B, "B", 0, 10_000),
    ])
    .unwrap();
    Engine::new(EngineConfig::new(assets, 3), Window::default())
}

fn block(number: u64, events: Vec<(Address, BalanceChange)>) -> Block {
    let mut b = Block::empty(BlockHeader {
        number,
        hash: B256::repeat_byte(number as u8),
        parent_hash: B256::repeat_byte(number as u8 - 1),
        timestamp: number,
    });
    b.events = events
        .into_iter()
        .enumerate()
        .map(|(i, (asset, change))| BalanceEvent {
            part: 0,
            log: LogId {
                tx_hash: B256::repeat_byte(0x10 + i as u8),
                log_index: i as u64,
            },
            asset,
            change,
        })
        .collect();
    b
}

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn deposit(u: u8, amount: u64) -> BalanceChange {
    BalanceChange::Deposit {
        user: user(u),
        amount: U256::from(amount),
    }
}

fn transfer(from: u8, to: u8, amount: U256) -> BalanceChange {
    BalanceChange::Transfer {
        from: user(from),
        to: user(to),
        amount,
    }
}

fn build(engine: &Engine, blocks: Vec<Block>, base: BaseState) -> crate::model::Changeset {
    let Plan::Apply(t) = engine.plan(blocks).unwrap() else {
        panic!("expected a transition")
    };
    engine.build(t, base, None).unwrap()
}

#[test]
fn an_underflow_quarantines_its_asset_and_the_rest_goes_on() {
    let e = engine(FaultPolicy::Quarantine);
    let b1 = block(
        1,
        vec![
            (A, deposit(1, 10)),
            (A, transfer(1, 2, U256::from(11))),
            (B, deposit(1, 5)),
            (A, deposit(1, 7)),
        ],
    );
    let c = build(&e, vec![b1], BaseState::default());
    let changes = &c.blocks[0];
    let key = |u: u8, asset| BalanceKey {
        user: user(u),
        asset,
    };
    // A: the deposit before the fault counts; the faulting transfer and what follows do not.
    assert_eq!(
        changes.balances,
        vec![(key(1, A), U256::from(10)), (key(1, B), U256::from(5))]
    );
    let [(asset, AssetState::Quarantined(q))] = changes.asset_states.as_slice() else {
        panic!("{:?}", changes.asset_states)
    };
    assert_eq!((*asset, q.block.number, q.log.log_index), (A, 1, 1));
    assert_eq!(
        q.reason,
        FaultReason::Underflow {
            user: user(1),
            balance: U256::from(10),
            amount: U256::from(11)
        }
    );
}

#[test]
fn a_quarantined_base_skips_until_a_resume_and_a_failed_credit_undoes_its_debit() {
    let e = engine(FaultPolicy::Quarantine);
    let c = build(
        &e,
        vec![block(1, vec![(A, deposit(1, 10))])],
        BaseState::default(),
    );
    let mut e2 = e.clone();
    e2.commit(&c);
    let key = BalanceKey {
        user: user(1),
        asset: A,
    };
    let to = BalanceKey {
        user: user(2),
        asset: A,
    };
    // A transfer whose credit overflows: the debit before it is undone too.
    let base = BaseState {
        balances: vec![(key, U256::from(10)), (to, U256::MAX)],
        ..BaseState::default()
    };
    let mut b2 = block(2, vec![(A, transfer(1, 2, U256::from(3)))]);
    b2.events.push(BalanceEvent {
        part: 0,
        log: resume_log(A, 2, 0),
        asset: A,
        change: BalanceChange::Resume,
    });
    let b3 = block(3, vec![(A, deposit(1, 1))]);
    let c = build(&e2, vec![b2, b3], base);
    assert!(
        c.blocks[0].balances.is_empty(),
        "{:?}",
        c.blocks[0].balances
    );
    // Quarantined and resumed in the same block: its state after the block is active.
    assert_eq!(c.blocks[0].asset_states, vec![(A, AssetState::Active)]);
    assert_eq!(c.blocks[1].balances, vec![(key, U256::from(11))]);
}

#[test]
fn a_strict_asset_refuses_the_step() {
    let e = engine(FaultPolicy::Strict);
    let t = Transition::Commit {
        new: vec![block(1, vec![(A, transfer(1, 2, U256::from(1)))])],
    };
    assert!(matches!(
        e.build(t, BaseState::default(), None),
        Err(crate::error::EngineError::BalanceUnderflow(_))
    ));
}

fn undecodable(detail: &str) -> BalanceChange {
    BalanceChange::Undecodable {
        detail: crate::model::DecodeDetail::new(detail),
    }
}

#[test]
fn an_undecodable_log_quarantines_its_asset_at_that_log_and_the_rest_goes_on() {
    let e = engine(FaultPolicy::Quarantine);
    let b1 = block(
        1,
        vec![
            (A, deposit(1, 10)),
            (A, undecodable("Transfer: buffer overrun")),
            (B, deposit(1, 5)),
            (A, deposit(1, 7)),
        ],
    );
    let c = build(&e, vec![b1], BaseState::default());
    let changes = &c.blocks[0];
    let key = |u: u8, asset| BalanceKey {
        user: user(u),
        asset,
    };
    assert_eq!(
        changes.balances,
        vec![(key(1, A), U256::from(10)), (key(1, B), U256::from(5))]
    );
    let [(asset, AssetState::Quarantined(q))] = changes.asset_states.as_slice() else {
        panic!("{:?}", changes.asset_states)
    };
    assert_eq!((*asset, q.block.number, q.log.log_index), (A, 1, 1));
    assert_eq!(
        q.reason,
        FaultReason::Undecodable {
            detail: "Transfer: buffer overrun".into()
        }
    );
}

#[test]
fn an_undecodable_log_of_a_quarantined_asset_is_skipped_like_its_other_events() {
    let e = engine(FaultPolicy::Quarantine);
    let b1 = block(
        1,
        vec![
            (A, transfer(1, 2, U256::from(1))),
            (A, undecodable("later")),
        ],
    );
    let c = build(&e, vec![b1], BaseState::default());
    let [(_, AssetState::Quarantined(q))] = c.blocks[0].asset_states.as_slice() else {
        panic!("{:?}", c.blocks[0].asset_states)
    };
    // The first fault names the quarantine.
    assert!(matches!(q.reason, FaultReason::Underflow { .. }), "{q}");
}

#[test]
fn an_undecodable_log_of_a_strict_asset_refuses_the_step_naming_the_log() {
    let e = engine(FaultPolicy::Strict);
    let t = Transition::Commit {
        new: vec![block(
            1,
            vec![(B, deposit(1, 5)), (A, undecodable("Deposit: short data"))],
        )],
    };
    let err = e.build(t, BaseState::default(), None).unwrap_err();
    let crate::error::EngineError::Undecodable(fault) = &err else {
        panic!("{err}")
    };
    let crate::error::UndecodableFault {
        block,
        log,
        asset,
        detail,
    } = &**fault;
    assert_eq!((block.number, log.log_index, *asset), (1, 1, A));
    assert_eq!(detail.as_str(), "Deposit: short data");
    assert!(
        err.to_string()
            .contains("could not be decoded: Deposit: short data")
    );
}
