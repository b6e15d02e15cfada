use alloy_primitives::{Address, I256};

use super::*;

const A: Address = Address::repeat_byte(0xA1);
const B: Address = Address::repeat_byte(0xB1);

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn key(u: u8, asset: Address) -> BalanceKey {
    BalanceKey {
        user: user(u),
        asset,
    }
}

fn view(confirmed: u64, pending: u64) -> BalanceView {
    BalanceView {
        confirmed: U256::from(confirmed),
        pending: U256::from(pending),
    }
}

fn price(asset: Address, block: u64) -> Price {
    Price {
        asset,
        answer: I256::try_from(block as i64).unwrap(),
        decimals: 8,
        round_id: U256::from(block),
        updated_at: block,
        block,
    }
}

fn step(pending: &[(BalanceKey, u64)], confirmed: &[(BalanceKey, u64)]) -> ViewDelta {
    let values = |v: &[(BalanceKey, u64)]| v.iter().map(|(k, n)| (*k, U256::from(*n))).collect();
    ViewDelta::Step {
        pending: values(pending),
        pending_prices: Vec::new(),
        confirmed: values(confirmed),
        confirmed_prices: Vec::new(),
    }
}

#[test]
fn deltas_keep_held_users_equal_to_the_store_and_ignore_the_others() {
    let mut memo = ViewMemo::new(10);
    memo.insert_user(user(1), &[(B, view(5, 5))]);
    // User 1 gains asset A (sorted in before B); user 2 is not held.
    memo.apply(step(&[(key(1, A), 7), (key(2, A), 9)], &[]));
    assert_eq!(
        memo.user(&user(1)),
        Some(&[(A, view(0, 7)), (B, view(5, 5))][..])
    );
    assert_eq!(memo.user(&user(2)), None);
    // Finalized later: confirmed catches up, pending stays the latest.
    memo.apply(step(&[(key(1, A), 8)], &[(key(1, A), 7)]));
    assert_eq!(
        memo.user(&user(1)),
        Some(&[(A, view(7, 8)), (B, view(5, 5))][..])
    );
    memo.apply(ViewDelta::Reset);
    assert_eq!(memo.user(&user(1)), None);
}

#[test]
fn prices_follow_their_deltas_and_a_reset_forgets_them() {
    let mut memo = ViewMemo::new(10);
    memo.insert_price(A, PriceView::default());
    memo.apply(ViewDelta::Step {
        pending: Vec::new(),
        pending_prices: vec![price(A, 3), price(B, 3)],
        confirmed: Vec::new(),
        confirmed_prices: Vec::new(),
    });
    let held = memo.price(&A).unwrap();
    assert_eq!((held.confirmed, held.pending), (None, Some(price(A, 3))));
    assert_eq!(memo.price(&B), None, "B was never read: not held");
    memo.apply(ViewDelta::Step {
        pending: Vec::new(),
        pending_prices: Vec::new(),
        confirmed: Vec::new(),
        confirmed_prices: vec![price(A, 3)],
    });
    assert_eq!(memo.price(&A).unwrap().confirmed, Some(price(A, 3)));
    memo.apply(ViewDelta::Reset);
    assert_eq!(memo.price(&A), None);
}

#[test]
fn the_capacity_bounds_the_users_held_and_zero_disables_the_memo() {
    let mut memo = ViewMemo::new(1);
    memo.insert_user(user(1), &[(A, view(1, 1))]);
    memo.insert_user(user(2), &[(A, view(2, 2))]);
    assert!(memo.user(&user(2)).is_none(), "full");
    memo.insert_user(user(1), &[(A, view(3, 3))]);
    assert_eq!(
        memo.user(&user(1)),
        Some(&[(A, view(3, 3))][..]),
        "a held user is replaced"
    );

    let mut off = ViewMemo::new(0);
    off.insert_user(user(1), &[(A, view(1, 1))]);
    off.insert_price(A, PriceView::default());
    assert!(off.user(&user(1)).is_none() && off.price(&A).is_none());
}
