//! Share-ratio rebasing assets ([`IndexFormula::SharesRatio`](crate::model::IndexFormula::SharesRatio),
//! Lido stETH: shares × totalPooledEther ÷ totalShares) through reorgs, finality and
//! restarts: share moves that are not converted (`TransferShares`, a burn as a move to the
//! zero address), token amounts that are, and reports whose index a reorg rolls back. The
//! store's balances, log, collateral and cache equal the replay oracle's.

use alloy_primitives::{Address, U256};

use super::super::harness::Harness;
use super::super::strategy::Op;
use super::{Backends, Rng, deposit, mine};
use crate::model::{AssetIndex, BalanceChange, BalanceKey};

/// An index of `pooled` ether over `shares` (both positive).
fn ratio(pooled: U256, shares: U256) -> AssetIndex {
    AssetIndex::shares_ratio(pooled, shares).expect("positive totals")
}

/// Totals around 1.05–1.25 ether per share, from `rng`, neither dividing the other.
fn totals(rng: &mut Rng) -> AssetIndex {
    let shares = U256::from(10u64).pow(U256::from(24)) + U256::from(rng.below(1_000_000) + 1);
    let pooled = shares * U256::from(105 + rng.below(20)) / U256::from(100) + U256::from(7);
    ratio(pooled, shares)
}

/// The store's index of the harness's first asset at the head.
async fn stored_index(h: &Harness) -> Option<AssetIndex> {
    let asset = h.assets[0].id;
    let head = h.chain.head_number();
    let stored = h.backends.store.indexes_at(&[asset], head).await;
    stored.expect("indexes_at")[0]
}

/// At most a third of `user`'s shares of the first asset at the head (a pending balance
/// converted back to shares floors, so never more than it holds).
fn third_of_shares(h: &Harness, user: Address) -> U256 {
    let expected = h.expected();
    let asset = h.assets[0].id;
    let balance = expected.balance(&BalanceKey { user, asset }).pending;
    let shares = match expected.pending_indexes.get(&asset) {
        Some(index) => index.shares(balance).expect("shares fit"),
        None => balance,
    };
    shares / U256::from(3)
}

/// Mines an oracle report as Lido's `handleOracleReport` logs it: a third of the first
/// user's shares burnt (`SharesBurnt`), fee shares minted to the second (`TransferShares`
/// from zero), then the report's totals (`TokenRebased`); syncs and checks, and the store's
/// index at the head is the report's.
pub(super) async fn report(h: &mut Harness, index: AssetIndex, fee: u64) {
    let asset = h.assets[0].id;
    let (first, second) = (h.users[0], h.users[1]);
    let burnt = third_of_shares(h, first);
    h.chain.mine(|b| {
        b.event(
            asset,
            BalanceChange::TransferShares {
                from: first,
                to: Address::ZERO,
                shares: burnt,
            },
        );
        b.event(
            asset,
            BalanceChange::TransferShares {
                from: Address::ZERO,
                to: second,
                shares: U256::from(fee),
            },
        );
        b.event(asset, BalanceChange::Rebase { index });
    });
    h.sync().await;
    h.check().await;
    assert_eq!(
        stored_index(h).await,
        Some(index),
        "the store's index after a report at #{}",
        h.chain.head_number()
    );
}

/// Mines a block of share moves: `minted` shares to the third user, a third of the first
/// user's shares to the fourth; syncs and checks.
async fn move_shares(h: &mut Harness, minted: u64) {
    let asset = h.assets[0].id;
    let (first, third, fourth) = (h.users[0], h.users[2], h.users[3]);
    let moved = third_of_shares(h, first);
    h.chain.mine(|b| {
        b.event(
            asset,
            BalanceChange::TransferShares {
                from: Address::ZERO,
                to: third,
                shares: U256::from(minted),
            },
        );
        b.event(
            asset,
            BalanceChange::TransferShares {
                from: first,
                to: fourth,
                shares: moved,
            },
        );
    });
    h.sync().await;
    h.check().await;
}

/// Shares minted 1:1 before the first report, reports between ordinary blocks; a reorg of
/// the block holding a report rolls the index back to the one before it; finalized by
/// depth and by tag, and across restarts.
pub async fn shares_ratio_through_reorgs(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    // Before any report the asset has no index: shares read 1:1.
    move_shares(&mut h, 1_000_000_000_000).await;
    h.step(&mine(vec![deposit(0, 0, 500_000), deposit(1, 0, 7)]))
        .await;
    let first = ratio(
        U256::from(1_050_000_000_003u64),
        U256::from(1_000_000_000_001u64),
    );
    report(&mut h, first, 12_345).await;
    move_shares(&mut h, 777_777).await;
    h.step(&mine(vec![deposit(2, 0, 123_457)])).await;
    let second = ratio(
        U256::from(1_234_567_890_123u64),
        U256::from(1_000_000_012_345u64),
    );
    report(&mut h, second, 999).await;
    // The report's block reorged out: the index rolls back to the first report's.
    h.step(&Op::Reorg {
        depth: 1,
        blocks: vec![],
    })
    .await;
    assert_eq!(
        stored_index(&h).await,
        Some(first),
        "the store's index after the report was reorged out"
    );
    // Another report in its place, then two blocks, all reorged out with the report.
    let third = ratio(
        U256::from(1_100_000_000_007u64),
        U256::from(1_000_000_000_003u64),
    );
    report(&mut h, third, 5).await;
    move_shares(&mut h, 31).await;
    h.step(&Op::Reorg {
        depth: 2,
        blocks: vec![],
    })
    .await;
    assert_eq!(
        stored_index(&h).await,
        Some(first),
        "index after a depth-2 reorg"
    );
    h.step(&Op::Restart).await;
    report(&mut h, third, 17).await;
    h.step(&mine(vec![deposit(3, 0, 99)])).await;
    h.step(&Op::FinalizeTag { lag: 1 }).await;
    for _ in 0..4 {
        h.step(&mine(vec![deposit(4, 0, 1)])).await;
    }
    h.step(&Op::HeadBack { depth: 1 }).await;
    h.step(&Op::Restart).await;
    move_shares(&mut h, 3).await;
}

/// A random walk of `steps` over a chain whose first asset is a share-ratio token: reports
/// about every fifth step, share moves, ordinary random blocks (their token amounts
/// converted), reorgs, finality and restarts.
pub async fn shares_ratio_walk(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 5).await;
    let mut rng = Rng(seed.max(1));
    move_shares(&mut h, rng.below(1_000_000_000_000) + 1).await;
    let first = totals(&mut rng);
    report(&mut h, first, rng.below(1_000)).await;
    for _ in 0..steps {
        match rng.below(12) {
            0..=1 => {
                let index = totals(&mut rng);
                let fee = rng.below(100_000);
                report(&mut h, index, fee).await;
                continue;
            }
            2..=3 => {
                let minted = rng.below(1_000_000);
                move_shares(&mut h, minted).await;
                continue;
            }
            4..=6 => h.step(&Op::Mine(rng.block())).await,
            7..=8 => {
                let depth = rng.below(5) + 1;
                let blocks = (0..rng.below(3)).map(|_| rng.block()).collect();
                h.step(&Op::Reorg { depth, blocks }).await;
            }
            9..=10 => h.step(&Op::FinalizeTag { lag: rng.below(4) }).await,
            _ => h.step(&Op::Restart).await,
        }
    }
}
