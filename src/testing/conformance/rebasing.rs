//! Rebasing assets (shares × index) through reorgs, finality and restarts: the store's
//! balances, log, collateral and cache equal the replay oracle's, which converts with an
//! index of its own.

use alloy_primitives::U256;

use super::super::harness::Harness;
use super::super::strategy::Op;
use super::{Backends, Rng, deposit, mine};
use crate::model::{BalanceChange, IndexFormula};

/// The test token's `TOTAL_GONS`: small enough that the harness's amounts in gons fit a
/// `U256` whatever the supply (UFragments' own is near `2^256`, for 9-decimal amounts).
fn formula() -> IndexFormula {
    IndexFormula::DivByIndex {
        total_gons: U256::from(10u64).pow(U256::from(30)),
    }
}

/// Mines a block rebasing the harness's first asset to `supply` (then, as a second part of
/// the same log, a deposit of it converted at the new index), and syncs and checks.
pub(super) async fn rebase(h: &mut Harness, supply: U256) {
    let asset = h.assets[0].id;
    let index = formula().index(supply).expect("a positive supply");
    let user = h.users[0];
    h.chain.mine(|b| {
        b.event(asset, BalanceChange::Rebase { index });
        b.event_of_same_log(
            asset,
            BalanceChange::Deposit {
                user,
                amount: U256::from(1_000),
            },
        );
    });
    h.sync().await;
    h.check().await;
    let head = h.chain.head_number();
    let stored = h.backends.store.indexes_at(&[asset], head).await;
    assert_eq!(
        stored.expect("indexes_at"),
        vec![Some(index)],
        "the store's index of the rebased asset at #{head}"
    );
}

/// Supplies around `10^27` (gons per fragment around 1 000, floored).
pub(super) fn supply(rng: &mut Rng) -> U256 {
    U256::from(10u64).pow(U256::from(26)) * U256::from(rng.below(99) + 1) + U256::from(rng.below(7))
}

/// The first asset rebases between ordinary blocks; rebases are reorged out and replaced,
/// finalized by depth and by tag, and survive a restart.
pub async fn rebasing_through_reorgs(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    h.step(&mine(vec![deposit(0, 0, 500_000), deposit(1, 0, 7)]))
        .await;
    rebase(&mut h, U256::from(10u64).pow(U256::from(27))).await;
    h.step(&mine(vec![deposit(2, 0, 123_457)])).await;
    rebase(
        &mut h,
        U256::from(3u64) * U256::from(10u64).pow(U256::from(26)) + U256::from(1),
    )
    .await;
    // The rebase and the block after it reorged out, another rebase in their place.
    h.step(&Op::Reorg {
        depth: 2,
        blocks: vec![],
    })
    .await;
    rebase(
        &mut h,
        U256::from(7u64) * U256::from(10u64).pow(U256::from(27)),
    )
    .await;
    h.step(&Op::Restart).await;
    h.step(&mine(vec![deposit(3, 0, 99)])).await;
    h.step(&Op::FinalizeTag { lag: 1 }).await;
    for _ in 0..4 {
        h.step(&mine(vec![deposit(4, 0, 1)])).await;
    }
    h.step(&Op::HeadBack { depth: 1 }).await;
    h.step(&Op::Restart).await;
    h.step(&mine(vec![])).await;
}

/// A random walk of `steps` over a chain whose first asset rebases about every fifth
/// block (one rebase first, so its events are shares from the start).
pub async fn rebasing_walk(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 5).await;
    let mut rng = Rng(seed.max(1));
    let first = supply(&mut rng);
    rebase(&mut h, first).await;
    for _ in 0..steps {
        match rng.below(10) {
            0..=1 => {
                let s = supply(&mut rng);
                rebase(&mut h, s).await;
                continue;
            }
            2..=5 => h.step(&Op::Mine(rng.block())).await,
            6..=7 => {
                let depth = rng.below(5) + 1;
                let blocks = (0..rng.below(3)).map(|_| rng.block()).collect();
                h.step(&Op::Reorg { depth, blocks }).await;
            }
            8 => h.step(&Op::FinalizeTag { lag: rng.below(4) }).await,
            _ => h.step(&Op::Restart).await,
        }
    }
}
