use alloy_primitives::{Address, B256, I256, U256};

use super::*;
use crate::model::{Block, BlockChanges, BlockHeader};

const A: Address = Address::repeat_byte(0xA1);

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn header(number: u64, fork: u8) -> BlockHeader {
    BlockHeader {
        number,
        hash: {
            let mut h = [fork; 32];
            h[31] = number as u8;
            B256::from(h)
        },
        parent_hash: B256::ZERO,
        timestamp: number,
    }
}

fn price(number: u64) -> Price {
    Price {
        asset: A,
        answer: I256::try_from(100 + number as i64).unwrap(),
        decimals: 8,
        round_id: U256::from(number),
        updated_at: number,
        block: number,
    }
}

/// Block `number` of `fork`, setting `user`'s balance to `value` (and a price if asked).
fn block(number: u64, fork: u8, user: u8, value: u64, priced: bool) -> BlockChanges {
    BlockChanges {
        block: Block {
            header: header(number, fork),
            events: Vec::new(),
            prices: Vec::new(),
            rates: Vec::new(),
        },
        balances: vec![(
            BalanceKey {
                user: self::user(user),
                asset: A,
            },
            U256::from(value),
        )],
        prices: if priced {
            vec![price(number)]
        } else {
            Vec::new()
        },
        rejected_prices: Vec::new(),
        indexes: Vec::new(),
        asset_states: Vec::new(),
        rates: Vec::new(),
    }
}

fn window(finalized: Option<u64>, unconfirmed: &[BlockHeader]) -> Window {
    Window {
        finalized: finalized.map(|n| header(n, 0)),
        unconfirmed: unconfirmed.to_vec(),
    }
}

fn key(u: u8) -> BalanceKey {
    BalanceKey {
        user: user(u),
        asset: A,
    }
}

#[test]
fn a_finalization_of_recorded_blocks_is_known_without_the_store() {
    let mut recent = RecentBlocks::default();
    let b1 = block(1, 1, 1, 10, true);
    let b2 = block(2, 1, 2, 20, false);
    let append = Changeset {
        blocks: vec![b1.clone(), b2.clone()],
        ..Changeset::default()
    };
    let before = window(None, &[]);
    assert_eq!(recent.touched(&append, &before), Some(Touched::default()));
    let delta = recent.commit(&append, &before);
    assert_eq!(
        delta,
        ViewDelta::Step {
            pending: vec![(key(1), U256::from(10)), (key(2), U256::from(20))],
            pending_prices: vec![price(1)],
            confirmed: Vec::new(),
            confirmed_prices: Vec::new(),
        }
    );
    // Block 3 finalizes block 1: user 1 and the price of block 1 are promoted.
    let b3 = block(3, 1, 1, 30, false);
    let step = Changeset {
        blocks: vec![b3],
        finalize: Some(header(1, 1)),
        ..Changeset::default()
    };
    let before = window(None, &[header(1, 1), header(2, 1)]);
    let touched = recent.touched(&step, &before).expect("recorded");
    assert_eq!(touched.users, [user(1)].into());
    assert_eq!(touched.price_assets, [A].into());
    assert_eq!(
        recent.commit(&step, &before),
        ViewDelta::Step {
            pending: vec![(key(1), U256::from(30))],
            pending_prices: Vec::new(),
            confirmed: vec![(key(1), U256::from(10))],
            confirmed_prices: vec![price(1)],
        }
    );
}

#[test]
fn blocks_final_on_arrival_are_promoted_in_the_same_step() {
    let mut recent = RecentBlocks::default();
    let step = Changeset {
        blocks: vec![block(5, 1, 1, 10, false), block(6, 1, 1, 11, false)],
        finalize: Some(header(5, 1)),
        ..Changeset::default()
    };
    let before = window(Some(4), &[]);
    assert_eq!(recent.touched(&step, &before), Some(Touched::default()));
    let ViewDelta::Step {
        pending, confirmed, ..
    } = recent.commit(&step, &before)
    else {
        panic!("known");
    };
    assert_eq!(
        pending,
        vec![(key(1), U256::from(10)), (key(1), U256::from(11))]
    );
    assert_eq!(confirmed, vec![(key(1), U256::from(10))]);
}

#[test]
fn a_block_applied_elsewhere_or_a_revert_is_not_known() {
    let mut recent = RecentBlocks::default();
    // Block 1 is pending in the store, written before a restart: not recorded here.
    let step = Changeset {
        blocks: vec![block(2, 1, 1, 10, false)],
        finalize: Some(header(1, 1)),
        ..Changeset::default()
    };
    let before = window(None, &[header(1, 1)]);
    assert_eq!(recent.touched(&step, &before), None);
    assert_eq!(recent.commit(&step, &before), ViewDelta::Reset);

    // A reorg replacing block 2 by another fork's: touched from the record, then reset.
    let reorg = Changeset {
        revert: vec![header(2, 1)],
        blocks: vec![block(2, 2, 3, 5, false)],
        ..Changeset::default()
    };
    let before = window(Some(1), &[header(2, 1)]);
    assert_eq!(
        recent.touched(&reorg, &before).map(|t| t.users),
        Some([user(1)].into())
    );
    assert_eq!(recent.commit(&reorg, &before), ViewDelta::Reset);

    // A revert of a block the record holds under another hash is not known.
    let other = Changeset {
        revert: vec![header(2, 9)],
        ..Changeset::default()
    };
    assert_eq!(
        recent.touched(&other, &window(Some(1), &[header(2, 9)])),
        None
    );

    // The replacement block is recorded: finalizing it later is known.
    let fin = Changeset {
        blocks: vec![block(3, 2, 3, 6, false)],
        finalize: Some(header(2, 2)),
        ..Changeset::default()
    };
    let before = window(Some(1), &[header(2, 2)]);
    assert_eq!(
        recent.touched(&fin, &before).map(|t| t.users),
        Some([user(3)].into())
    );
    assert!(matches!(
        recent.commit(&fin, &before),
        ViewDelta::Step { .. }
    ));
}
