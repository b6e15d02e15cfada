//! Unit tests of the state machine.

use alloy_primitives::{Address, B256, U256};

use super::*;
use crate::model::{Asset, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, LogId};

const ASSET: Address = Address::repeat_byte(0xA1);

/// Plans a copy of `segment`.
fn plan(engine: &Engine, segment: &[Block]) -> Result<Plan, EngineError> {
    engine.plan(segment.to_vec())
}

/// Plans `segment`, which must resolve to a transition.
fn transition(engine: &Engine, segment: &[Block]) -> Transition {
    match plan(engine, segment).unwrap() {
        Plan::Apply(t) => t,
        other => panic!("expected a transition, got {other:?}"),
    }
}

fn config(confirmations: u64) -> EngineConfig {
    EngineConfig::new(
        AssetRegistry::new([
            Asset::new(ASSET, "TKN", 0, 10_000).with_policy(crate::model::FaultPolicy::Strict)
        ])
        .unwrap(),
        confirmations,
    )
}

fn header(number: u64, fork: u8, parent: &BlockHeader) -> BlockHeader {
    BlockHeader {
        number,
        hash: B256::from(U256::from(number) << 8 | U256::from(fork)),
        parent_hash: parent.hash,
        timestamp: number * 12,
    }
}

/// A chain `start..=end` on fork `fork`, branching from `parent`.
fn chain(parent: &BlockHeader, len: u64, fork: u8) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut prev = *parent;
    for i in 1..=len {
        let h = header(parent.number + i, fork, &prev);
        prev = h;
        out.push(Block::empty(h));
    }
    out
}

fn genesis() -> BlockHeader {
    BlockHeader {
        number: 10,
        hash: B256::repeat_byte(1),
        parent_hash: B256::ZERO,
        timestamp: 0,
    }
}

/// An engine that applied genesis + `len` blocks of fork 0.
fn engine_with(len: u64, confirmations: u64) -> (Engine, Vec<Block>) {
    let mut engine = Engine::new(config(confirmations), Window::default());
    let mut blocks = vec![Block::empty(genesis())];
    blocks.extend(chain(&genesis(), len, 0));
    for b in &blocks {
        let t = transition(&engine, std::slice::from_ref(b));
        let c = engine.build(t, BaseState::default(), None).unwrap();
        engine.commit(&c);
    }
    (engine, blocks)
}

fn deposit(block: &mut Block, index: u64, user: u8, amount: U256) {
    block.events.push(BalanceEvent {
        part: 0,
        log: LogId {
            tx_hash: B256::repeat_byte(index as u8),
            log_index: index,
        },
        asset: ASSET,
        change: BalanceChange::Deposit {
            user: Address::repeat_byte(user),
            amount,
        },
    });
}

#[test]
fn first_block_commits_anything() {
    let engine = Engine::new(config(3), Window::default());
    let t = transition(&engine, &[Block::empty(genesis())]);
    assert!(matches!(t, Transition::Commit { ref new } if new.len() == 1));
}

#[test]
fn child_of_head_commits_and_finalizes_at_depth() {
    let (engine, blocks) = engine_with(3, 3);
    let next = chain(&blocks.last().unwrap().header, 1, 0);
    let t = transition(&engine, &next);
    assert!(matches!(t, Transition::Commit { .. }));
    let c = engine.build(t, BaseState::default(), None).unwrap();
    assert_eq!(c.finalize_number(), Some(11), "head 14 - 3 confirmations");
}

#[test]
fn known_finality_finalizes_new_blocks_at_once_capped_at_the_new_head() {
    let (engine, blocks) = engine_with(3, 3);
    let fin = engine.window().finalized_number().unwrap();
    let build = |len: u64, known: Option<u64>| {
        let next = chain(&blocks.last().unwrap().header, len, 0);
        let t = transition(&engine, &next);
        engine.build(t, BaseState::default(), known).unwrap()
    };
    // Head 13 + 5 = 18: by depth 15; the source knows 17 is final.
    assert_eq!(build(5, Some(17)).finalize_number(), Some(17));
    // Known finality beyond the new head finalizes the whole changeset.
    let c = build(5, Some(40));
    assert_eq!(c.finalize_number(), Some(18));
    assert_eq!(c.finalize, Some(c.blocks.last().unwrap().block.header));
    // Below the depth rule, or below what is already final: the depth rule decides.
    assert_eq!(build(5, Some(12)).finalize_number(), Some(15));
    assert_eq!(build(1, Some(fin - 1)).finalize_number(), Some(11));
    assert_eq!(build(5, None).finalize_number(), Some(15));
}

#[test]
fn no_finality_before_enough_confirmations() {
    let (engine, _) = engine_with(2, 3);
    assert_eq!(engine.window().finalized_number(), None);
}

#[test]
fn redelivery_is_noop_anywhere_in_the_window() {
    let (engine, blocks) = engine_with(5, 3);
    for b in &blocks[blocks.len() - 4..] {
        assert_eq!(
            plan(&engine, std::slice::from_ref(b)).unwrap(),
            Plan::UpToDate,
            "block #{}",
            b.header.number
        );
    }
    // A segment whose applied prefix is skipped commits only the rest.
    let mut seg = blocks[blocks.len() - 2..].to_vec();
    seg.extend(chain(&blocks.last().unwrap().header, 2, 0));
    let t = transition(&engine, &seg);
    assert!(matches!(t, Transition::Commit { ref new } if new.len() == 2));
}

#[test]
fn reorg_of_every_depth_in_the_window() {
    let (engine, blocks) = engine_with(8, 5);
    let head = blocks.last().unwrap().header.number;
    let fin = engine.window().finalized_number().unwrap();
    for depth in 1..=(head - fin) {
        let fork_point = &blocks[blocks.len() - 1 - depth as usize].header;
        for new_len in 1..=depth + 1 {
            let new = chain(fork_point, new_len, 1);
            let t = transition(&engine, &new);
            let Transition::Reorg { old, new: applied } = &t else {
                panic!("depth {depth}: {t:?}")
            };
            assert_eq!(old.len() as u64, depth);
            assert_eq!(old.first().unwrap().number, fork_point.number + 1);
            assert_eq!(applied.len() as u64, new_len);
            let c = engine.build(t.clone(), BaseState::default(), None).unwrap();
            let mut e = engine.clone();
            e.commit(&c);
            assert_eq!(e.window().head().unwrap(), &new.last().unwrap().header);
        }
    }
}

#[test]
fn unknown_parent_asks_for_it() {
    let (engine, blocks) = engine_with(6, 5);
    let fork_point = &blocks[blocks.len() - 4].header;
    let new = chain(fork_point, 4, 1);
    let t = plan(&engine, &new[2..]).unwrap();
    assert_eq!(
        t,
        Plan::NeedParent {
            hash: new[1].header.hash,
            number: new[1].header.number,
            segment: new[2..].to_vec(),
        }
    );
}

#[test]
fn gap_is_refused() {
    let (engine, blocks) = engine_with(3, 3);
    let ahead = chain(&blocks.last().unwrap().header, 2, 0);
    let err = plan(&engine, &ahead[1..]).unwrap_err();
    assert!(
        matches!(err, EngineError::Gap { expected: 14, .. }),
        "{err}"
    );
}

#[test]
fn reorg_below_finality_is_refused() {
    let (engine, blocks) = engine_with(8, 3);
    let fin = engine.window().finalized_number().unwrap();
    // Forking off the finalized block itself is fine; forking below it is not.
    let below = &blocks[(fin - 10) as usize - 1].header;
    let new = chain(below, 3, 1);
    let err = plan(&engine, &new).unwrap_err();
    assert!(
        matches!(err, EngineError::AlreadyFinalized { finalized, .. } if finalized == fin),
        "{err}"
    );
    let err = plan(&engine, &new[1..]).unwrap_err();
    assert!(
        matches!(err, EngineError::ReorgBeyondFinality { finalized, .. } if finalized == fin),
        "{err}"
    );
    let err = engine
        .plan(chain(&blocks[(fin - 10) as usize].header, 1, 1))
        .map(|t| matches!(t, Plan::Apply(Transition::Reorg { .. })));
    assert_eq!(err, Ok(true));
    // A block just above finality whose parent is unknown cannot be resolved.
    let mut orphan = chain(&blocks[(fin - 10) as usize].header, 1, 1);
    orphan[0].header.parent_hash = B256::repeat_byte(0x77);
    let err = plan(&engine, &orphan).unwrap_err();
    assert!(
        matches!(err, EngineError::ReorgBeyondFinality { finalized, .. } if finalized == fin),
        "{err}"
    );
}

#[test]
fn anchor_block_cannot_be_replaced_before_finality() {
    let (engine, _) = engine_with(2, 10);
    let other = Block::empty(BlockHeader {
        hash: B256::repeat_byte(9),
        ..genesis()
    });
    assert!(matches!(
        engine.plan(vec![other]),
        Err(EngineError::ReorgBeyondFinality { .. })
    ));
}

#[test]
fn discontinuous_segment_is_refused() {
    let (engine, blocks) = engine_with(2, 3);
    let mut seg = chain(&blocks.last().unwrap().header, 3, 0);
    seg.remove(1);
    assert!(matches!(
        plan(&engine, &seg),
        Err(EngineError::Discontinuous { .. })
    ));
    assert_eq!(engine.plan(vec![]), Err(EngineError::Empty));
}

#[test]
fn malformed_blocks_are_refused() {
    let (engine, blocks) = engine_with(1, 3);
    let mut b = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
    deposit(&mut b, 1, 1, U256::from(1));
    deposit(&mut b, 1, 2, U256::from(1));
    assert!(matches!(
        plan(&engine, std::slice::from_ref(&b)),
        Err(EngineError::DuplicateLog { .. })
    ));
    b.events.truncate(1);
    b.events[0].asset = Address::repeat_byte(0xEE);
    assert!(
        matches!(engine.plan(vec![b]), Err(EngineError::UnknownAsset { asset, .. }) if asset == Address::repeat_byte(0xEE))
    );
}

#[test]
fn build_folds_on_base_and_types_overflow_and_underflow() {
    let (engine, blocks) = engine_with(1, 3);
    let mut b = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
    deposit(&mut b, 1, 1, U256::from(5));
    deposit(&mut b, 2, 1, U256::from(7));
    let key = BalanceKey {
        user: Address::repeat_byte(1),
        asset: ASSET,
    };
    let base = BaseState {
        balances: [(key, U256::from(100))].into_iter().collect(),
        prices: Default::default(),
        indexes: Default::default(),
        asset_states: Vec::new(),
    };
    let c = engine
        .build(transition(&engine, std::slice::from_ref(&b)), base, None)
        .unwrap();
    assert_eq!(c.blocks[0].balances, vec![(key, U256::from(112))]);

    let base = BaseState {
        balances: [(key, U256::MAX - U256::from(6))].into_iter().collect(),
        prices: Default::default(),
        indexes: Default::default(),
        asset_states: Vec::new(),
    };
    let err = engine
        .build(transition(&engine, std::slice::from_ref(&b)), base, None)
        .unwrap_err();
    assert!(
        matches!(err, EngineError::BalanceOverflow(ref f) if f.amount == U256::from(7) && f.log.log_index == 2),
        "{err}"
    );

    b.events[1].change = BalanceChange::Withdraw {
        user: key.user,
        amount: U256::from(6),
    };
    let err = engine
        .build(transition(&engine, &[b]), BaseState::default(), None)
        .unwrap_err();
    assert!(
        matches!(err, EngineError::BalanceUnderflow(ref f) if f.balance == U256::from(5)),
        "{err}"
    );
}

#[test]
fn revert_to_a_shorter_chain_rolls_back_above_it_and_never_below_finality() {
    let (engine, blocks) = engine_with(6, 4);
    let head = blocks.last().unwrap().header.number;
    let fin = engine.window().finalized_number().unwrap();
    assert_eq!(engine.revert_to(head).unwrap(), None);
    assert_eq!(engine.revert_to(head + 3).unwrap(), None);
    let Some(Transition::Revert { old }) = engine.revert_to(head - 2).unwrap() else {
        panic!("expected a revert")
    };
    assert_eq!(
        old.iter().map(|h| h.number).collect::<Vec<_>>(),
        vec![head - 1, head]
    );
    let c = engine
        .build(Transition::Revert { old }, BaseState::default(), Some(head))
        .unwrap();
    assert_eq!((c.blocks.len(), c.finalize), (0, None));
    let mut e = engine.clone();
    e.commit(&c);
    assert_eq!(e.window().head().unwrap().number, head - 2);
    // Back to the finalized block is allowed, below it is not.
    assert!(engine.revert_to(fin).unwrap().is_some());
    assert!(matches!(
        engine.revert_to(fin - 1),
        Err(EngineError::ReorgBeyondFinality { .. })
    ));
}

#[test]
fn tag_finality_is_capped_at_head_and_never_regresses() {
    let (mut engine, blocks) = engine_with(4, 100);
    let head = blocks.last().unwrap().header.number;
    let c = engine.finalize(head + 50).unwrap();
    assert_eq!(c.finalize_number(), Some(head));
    engine.commit(&c);
    assert_eq!(engine.finalize(head - 1), None);
    assert_eq!(engine.window().unconfirmed, vec![]);
}

/// A correction row of `user` with `balance`, the `i`-th of its block.
fn correction(block: &mut Block, i: u64, user: u8, balance: u64) {
    let c = crate::model::Correction {
        asset: ASSET,
        user: Address::repeat_byte(user),
        balance: U256::from(balance),
        origin: crate::model::CorrectionOrigin::Opening,
        read_at: crate::model::BlockRef {
            number: block.header.number - 1,
            hash: block.header.parent_hash,
        },
    };
    block.events.push(c.event(0, i));
}

#[test]
fn corrections_apply_first_like_set_and_must_lead_the_block() {
    let (engine, blocks) = engine_with(1, 3);
    let key = BalanceKey {
        user: Address::repeat_byte(7),
        asset: ASSET,
    };
    let mut b = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
    correction(&mut b, 0, 7, 100);
    deposit(&mut b, 0, 7, U256::from(5));
    let base = BaseState {
        balances: [(key, U256::from(3))].into_iter().collect(),
        prices: Default::default(),
        indexes: Default::default(),
        asset_states: Vec::new(),
    };
    let c = engine
        .build(transition(&engine, std::slice::from_ref(&b)), base, None)
        .unwrap();
    assert_eq!(c.blocks[0].balances, vec![(key, U256::from(105))]);

    // A correction after the block's own events is out of order.
    let mut late = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
    deposit(&mut late, 0, 7, U256::from(5));
    correction(&mut late, 0, 7, 100);
    let err = plan(&engine, &[late]).unwrap_err();
    assert!(
        matches!(err, EngineError::LogOutOfOrder { ref log, .. } if log.is_correction()),
        "{err}"
    );
}
