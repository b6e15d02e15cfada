//! Conformance of the history reads: `explain(u)` equals `collateral(u)` and its rows fold
//! to its balances, and `collateral_at_block(u, N)` equals the replay oracle's fold of the
//! canonical chain cut at `N` (a vault priced through its rate, a rebasing asset, an asset
//! quarantined and resumed included), through reorgs, restarts and finalization.

use std::sync::Arc;

use alloy_primitives::U256;

use super::{Backends, Rng};
use crate::error::Error;
use crate::model::{AssetRegistry, BalanceView, BlockNumber, PriceStatus};
use crate::reader::{CollateralReader, SideExplanation};
use crate::testing::harness::{Harness, START};
use crate::testing::oracle::replay;
use crate::testing::strategy::{BlockSpec, EventSpec, Op};
use crate::traits::{HistoryError, LogStatus};
use crate::valuation::Valuator;

/// Rows per side asked of `explain` in the bounded check.
const LIMIT: usize = 2;

fn next_op(rng: &mut Rng) -> Op {
    match rng.below(12) {
        0..=5 => Op::Mine(rng.block()),
        6..=8 => {
            let depth = rng.below(5) + 1;
            let blocks = (0..rng.below(3) + 1).map(|_| rng.block()).collect();
            Op::Reorg { depth, blocks }
        }
        9 => Op::FinalizeTag { lag: rng.below(4) },
        10 => Op::HeadBack {
            depth: rng.below(3) + 1,
        },
        _ => Op::Restart,
    }
}

fn reader(h: &Harness) -> CollateralReader {
    let registry = AssetRegistry::new(h.assets.clone()).expect("assets");
    CollateralReader::new(
        h.backends.store.clone(),
        Valuator::new(Arc::new(registry), h.config.max_price_age),
    )
}

/// The fold of a side's rows (latest first, all of them) from zero.
fn fold(side: &SideExplanation) -> U256 {
    side.rows.iter().rev().fold(U256::ZERO, |b, r| {
        r.effect.apply(b).expect("log rows fold without underflow")
    })
}

fn check_side(side: &SideExplanation, confirmed: bool, limit: usize, what: &str) {
    assert!(side.rows.len() <= limit, "{what}: more rows than the limit");
    assert!(
        side.rows
            .windows(2)
            .all(|w| (w[0].block.number, w[0].log.log_index, w[0].ordinal)
                > (w[1].block.number, w[1].log.log_index, w[1].ordinal)),
        "{what}: rows not latest first"
    );
    for r in &side.rows {
        match confirmed {
            true => assert_eq!(r.status, LogStatus::Confirmed, "{what}: {r:?}"),
            false => assert_ne!(r.status, LogStatus::Reverted, "{what}: {r:?}"),
        }
    }
    if let Some(a) = &side.arithmetic
        && side.status != Some(PriceStatus::Unrepresentable)
    {
        assert_eq!(
            a.value, side.value,
            "{what}: arithmetic differs from the value"
        );
        assert_eq!(a.units, side.balance, "{what}: arithmetic units");
    }
}

/// After every step of a random walk: `explain(u).collateral == collateral(u)` for every
/// user, every side's arithmetic gives the valuation's value, the bounded rows are the
/// latest of their side, and (with no bound) the rows fold to the balances.
pub async fn explain_equals_collateral(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 4).await;
    let mut rng = Rng(seed.max(1));
    for _ in 0..steps {
        let op = next_op(&mut rng);
        h.step(&op).await;
        let reader = reader(&h);
        for user in h.users.clone() {
            let want = reader.collateral(user).await.expect("collateral");
            let bounded = reader.explain(user, LIMIT).await.expect("explain");
            assert_eq!(bounded.collateral, want, "explain({user}).collateral");
            let all = reader.explain(user, usize::MAX / 2).await.expect("explain");
            assert_eq!(all.collateral, want, "explain({user}).collateral, all rows");
            for (b, a) in bounded.assets.iter().zip(&all.assets) {
                let what = format!("{user} in {}", a.symbol);
                check_side(&b.confirmed, true, LIMIT, &what);
                check_side(&b.pending, false, LIMIT, &what);
                assert!(!a.confirmed.truncated && !a.pending.truncated, "{what}");
                assert_eq!(
                    b.confirmed.rows[..],
                    a.confirmed.rows[..b.confirmed.rows.len()]
                );
                assert_eq!(b.pending.rows[..], a.pending.rows[..b.pending.rows.len()]);
                assert_eq!(b.confirmed.truncated, a.confirmed.rows.len() > LIMIT);
                assert_eq!(
                    fold(&a.confirmed),
                    a.confirmed.balance,
                    "{what}: confirmed fold"
                );
                assert_eq!(fold(&a.pending), a.pending.balance, "{what}: pending fold");
            }
            let text = bounded.to_string();
            assert!(text.contains(&format!("{user}")), "display names the user");
        }
    }
}

/// The oracle's collateral of `user` after block `n`: the canonical chain cut at `n`,
/// replayed with `n` final, valued at `n`'s timestamp with the prices of each asset's price
/// key, the vault rates and the quarantines of that replay.
fn oracle_at(
    h: &Harness,
    reader: &CollateralReader,
    user: crate::model::UserId,
    n: BlockNumber,
) -> crate::model::Collateral {
    // The harness's canonical chain: the chain's blocks with the resumes the watcher wrote.
    let cut: Vec<_> = h
        .canonical()
        .into_iter()
        .take_while(|b| b.header.number <= n)
        .collect();
    let now = cut.last().expect("a block at or below n").header.timestamp;
    let expected = replay(&cut, Some(n));
    let registry = reader.valuator().assets();
    let mut views = Vec::new();
    let mut prices = Vec::new();
    let mut rates = Vec::new();
    for asset in &h.assets {
        let key = crate::model::BalanceKey {
            user,
            asset: asset.id,
        };
        let b = expected.confirmed.get(&key).copied().unwrap_or_default();
        views.push((
            asset.id,
            BalanceView {
                confirmed: b,
                pending: b,
            },
        ));
        prices.push(expected.price(&registry.price_key(&asset.id)));
        rates.push(expected.rate(&asset.id));
    }
    reader
        .valuator()
        .collateral_full(
            user,
            n,
            now,
            &views,
            &prices,
            &rates,
            &expected.asset_states(),
        )
        .expect("oracle valuation")
}

/// A block whose one event overdraws `user`'s balance of the third asset: it quarantines
/// that asset (the harness's assets go on under the default fault policy).
fn overdraw(user: u8) -> Op {
    Op::Mine(BlockSpec {
        events: vec![EventSpec::Overdraw {
            user,
            asset: 2,
            extra: 1,
        }],
        ..BlockSpec::default()
    })
}

/// After every step of a random walk: `collateral_at_block(u, N)` equals the oracle's
/// replay of the canonical chain cut at `N` for every finalized `N` (a sample of them),
/// equals `collateral(u)` at the finalized tip when nothing is pending, and a block above
/// the finalized height is refused with `NotFinal`.
///
/// The walk mixes in the harness's vault (`vUSDC`, priced through its rate), a rebasing
/// first asset (rebased first, then about every tenth step) and quarantines of the third
/// asset (an overdraw) with resumes.
pub async fn collateral_at_block_matches_replay(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 4).await;
    let mut rng = Rng(seed.max(1));
    let first = super::rebasing::supply(&mut rng);
    super::rebasing::rebase(&mut h, first).await;
    for step in 0..steps {
        match rng.below(20) {
            0..=1 => {
                let s = super::rebasing::supply(&mut rng);
                super::rebasing::rebase(&mut h, s).await;
            }
            2 => h.step(&overdraw(rng.small(5))).await,
            3 => h.step(&Op::Resume { asset: 2 }).await,
            _ => {
                let op = next_op(&mut rng);
                h.step(&op).await;
            }
        }
        let reader = reader(&h);
        let head = h.chain.head_number();
        let Some(fin) = h.expected_finalized() else {
            let refused = reader.collateral_at_block(h.users[0], START).await;
            assert!(
                matches!(refused, Err(Error::History(HistoryError::NotFinal { .. }))),
                "nothing final yet: {refused:?}"
            );
            continue;
        };
        let blocks: Vec<BlockNumber> = (START..=fin)
            .rev()
            .enumerate()
            .filter(|(i, _)| *i < 3 || (*i + step) % 5 == 0)
            .map(|(_, n)| n)
            .collect();
        for user in h.users.clone() {
            for n in &blocks {
                let got = reader
                    .collateral_at_block(user, *n)
                    .await
                    .unwrap_or_else(|e| panic!("collateral_at_block({user}, {n}): {e}"));
                let want = oracle_at(&h, &reader, user, *n);
                assert_eq!(got, want, "collateral_at_block({user}, #{n}) vs replay");
            }
            if head == fin {
                let at = reader.collateral_at_block(user, fin).await.expect("at fin");
                let now = reader.collateral(user).await.expect("collateral");
                assert_eq!(at, now, "at the finalized tip with nothing pending");
            }
            let refused = reader.collateral_at_block(user, fin + 1).await;
            assert!(
                matches!(
                    refused,
                    Err(Error::History(HistoryError::NotFinal { block, finalized }))
                        if block == fin + 1 && finalized == Some(fin)
                ),
                "block above the finalized height: {refused:?}"
            );
        }
    }
}
