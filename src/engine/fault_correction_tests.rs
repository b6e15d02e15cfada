//! Fault corrections in the fold (`FaultPolicy::Reconcile`): the first of a block ends its
//! asset's quarantine there and every one applies as an absolute balance; other correction
//! rows do not end a quarantine.

use alloy_primitives::{Address, B256, U256};

use crate::engine::{BaseState, Engine, EngineConfig, Plan};
use crate::model::{
    Asset, AssetRegistry, AssetState, BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader,
    Correction, CorrectionOrigin, FaultPolicy, LogId, Quarantine, Window, fault_correction,
};

const A: Address = Address::repeat_byte(0xA1);
const B: Address = Address::repeat_byte(0xB2);

fn engine() -> Engine {
    let assets = AssetRegistry::new([
        Asset::new(A, "A", 0, 10_000).with_policy(FaultPolicy::Reconcile),
        Asset::new(B, "B", 0, 10_000),
    ])
    .unwrap();
    Engine::new(EngineConfig::new(assets, 3), Window::default())
}

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
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

fn deposit(u: u8, amount: u64) -> BalanceChange {
    BalanceChange::Deposit {
        user: user(u),
        amount: U256::from(amount),
    }
}

fn withdraw(u: u8, amount: u64) -> BalanceChange {
    BalanceChange::Withdraw {
        user: user(u),
        amount: U256::from(amount),
    }
}

fn key(asset: Address, u: u8) -> BalanceKey {
    BalanceKey {
        user: user(u),
        asset,
    }
}

fn value(changes: &crate::model::BlockChanges, k: BalanceKey) -> Option<U256> {
    changes
        .balances
        .iter()
        .find(|(x, _)| *x == k)
        .map(|(_, v)| *v)
}

fn build(engine: &Engine, blocks: Vec<Block>, base: BaseState) -> crate::model::Changeset {
    let Plan::Apply(t) = engine.plan(blocks).unwrap() else {
        panic!("expected a transition")
    };
    engine.build(t, base, None).unwrap()
}

#[test]
fn a_reconcile_asset_faults_like_a_quarantined_one() {
    let e = engine();
    let b1 = block(
        1,
        vec![
            (A, deposit(1, 10)),
            (A, withdraw(1, 11)),
            (B, deposit(1, 5)),
        ],
    );
    let changes = build(&e, vec![b1], BaseState::default());
    let b = &changes.blocks[0];
    assert!(matches!(b.asset_states[..], [(a, AssetState::Quarantined(_))] if a == A));
    assert_eq!(
        value(b, key(A, 1)),
        Some(U256::from(10)),
        "the fault applied nothing"
    );
    assert_eq!(
        value(b, key(B, 1)),
        Some(U256::from(5)),
        "the other asset went on"
    );
}

#[test]
fn fault_corrections_at_the_end_of_the_faulting_block_undo_its_quarantine() {
    let e = engine();
    let mut b1 = block(
        1,
        vec![
            (A, deposit(1, 10)),
            (A, withdraw(1, 11)),
            (A, deposit(2, 3)),
            (B, deposit(1, 5)),
        ],
    );
    // What the chain says after block 1 (user 1 had 10 minted without an event).
    b1.events
        .push(fault_correction(0, 1, A, user(1), U256::from(9), 0));
    b1.events
        .push(fault_correction(0, 1, A, user(2), U256::from(3), 1));
    let b2 = block(2, vec![(A, withdraw(1, 4))]);
    let changes = build(&e, vec![b1, b2], BaseState::default());
    let (c1, c2) = (&changes.blocks[0], &changes.blocks[1]);
    assert!(
        c1.asset_states.is_empty(),
        "quarantined and repaired in one block: no state change is written"
    );
    assert_eq!(value(c1, key(A, 1)), Some(U256::from(9)));
    assert_eq!(value(c1, key(A, 2)), Some(U256::from(3)));
    assert_eq!(value(c1, key(B, 1)), Some(U256::from(5)));
    assert_eq!(
        value(c2, key(A, 1)),
        Some(U256::from(5)),
        "the asset folds again from the next block"
    );
    assert!(c2.asset_states.is_empty());
}

#[test]
fn a_fault_correction_ends_a_quarantine_of_an_earlier_block() {
    let e = engine();
    let b1 = block(1, vec![(A, deposit(1, 10)), (A, withdraw(1, 11))]);
    let first = build(&e, vec![b1.clone()], BaseState::default());
    let AssetState::Quarantined(q) = first.blocks[0].asset_states[0].1.clone() else {
        panic!("quarantined")
    };
    let mut e = e;
    e.commit(&first);
    // Block 2: its own events of A are skipped, the fault correction at its end repairs.
    let mut b2 = block(2, vec![(A, deposit(1, 100)), (B, deposit(2, 1))]);
    b2.events
        .push(fault_correction(0, 2, A, user(1), U256::from(42), 0));
    let base = BaseState {
        balances: vec![(key(A, 1), U256::from(10))],
        asset_states: vec![(A, AssetState::Quarantined(q))],
        ..BaseState::default()
    };
    let changes = build(&e, vec![b2], base);
    let c = &changes.blocks[0];
    assert_eq!(c.asset_states, vec![(A, AssetState::Active)]);
    assert_eq!(value(c, key(A, 1)), Some(U256::from(42)));
    assert_eq!(value(c, key(B, 2)), Some(U256::from(1)));
}

#[test]
fn other_corrections_do_not_end_a_quarantine() {
    let e = engine();
    let q = Quarantine {
        asset: A,
        block: crate::model::BlockRef {
            number: 1,
            hash: B256::repeat_byte(1),
        },
        log: LogId {
            tx_hash: B256::repeat_byte(0x11),
            log_index: 1,
        },
        reason: crate::model::FaultReason::Undecodable {
            detail: "test".into(),
        },
    };
    let mut b2 = block(2, vec![(A, deposit(1, 100))]);
    for (i, origin) in [CorrectionOrigin::Opening, CorrectionOrigin::Drift]
        .into_iter()
        .enumerate()
    {
        let c = Correction {
            asset: A,
            user: user(1),
            balance: U256::from(7),
            origin,
            read_at: crate::model::BlockRef {
                number: 1,
                hash: B256::repeat_byte(1),
            },
        };
        b2.events.insert(i, c.event(0, i as u64));
    }
    let base = BaseState {
        asset_states: vec![(A, AssetState::Quarantined(q))],
        ..BaseState::default()
    };
    let changes = build(&e, vec![b2], base);
    let c = &changes.blocks[0];
    assert!(c.asset_states.is_empty(), "still quarantined");
    assert_eq!(value(c, key(A, 1)), None, "nothing of A applied");
}
