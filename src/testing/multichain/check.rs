//! [`MultiHarness::check`]: the multi-chain collateral compared with the per-chain replay
//! oracles, the cross-chain price taken from the other chain's oracle.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::MultiHarness;
use crate::chains::SymbolTotal;
use crate::chains::{ChainHeads, ChainId};
use crate::model::{BalanceKey, Collateral, UserId};
use crate::testing::oracle::Expected;
use crate::valuation::ExactSum;

impl MultiHarness {
    /// Asserts that every user's multi-chain collateral equals the per-chain oracle
    /// valuations (chain `cross.chain`'s `cross.asset` priced by chain `cross.from`'s
    /// `cross.key`, aged against the later head of the two), summed, and that it reflects
    /// every chain's current state.
    pub async fn check(&self) {
        let expected: Vec<Expected> = self.chains.iter().map(|(_, h)| h.expected()).collect();
        let mut heads = ChainHeads::new();
        for (id, h) in &self.chains {
            let window = h.backends.store.window().await.expect("window");
            heads.insert(*id, window.state().expect("every chain has its anchor"));
        }
        let users = self.chains[0].1.users.clone();
        let all = self
            .reader
            .collateral_many(&users)
            .await
            .expect("multi-chain read of a store nobody writes meanwhile");
        assert_eq!(all.len(), users.len(), "one collateral per user asked");
        if let Some(reference) = &self.reference {
            let other = reference
                .collateral_many(&users)
                .await
                .expect("reference read of a store nobody writes meanwhile");
            for ((user, got), want) in users.iter().zip(&all).zip(other) {
                let (got, want) = (got.as_ref().ok(), want.ok());
                assert!(got.is_some(), "valuation of {user}");
                assert_eq!(
                    got,
                    want.as_ref(),
                    "collateral of {user}: the two read paths"
                );
            }
        }
        for (user, got) in users.iter().zip(all) {
            let got = got.expect("valuation");
            let want = self.expected_chains(&expected, *user);
            assert_eq!(
                got.at, heads,
                "states of the multi-chain collateral of {user}"
            );
            for (id, c) in &want {
                assert_eq!(got.chains.get(id), Some(c), "collateral of {user} on {id}");
            }
            assert_eq!(got.chains.len(), want.len(), "chains of {user}");
            // The sums over the chains, in chain order, exact, leaving out a total that
            // would not fit (written again here).
            let sum = |side: fn(&Collateral) -> Decimal| {
                let (mut sum, mut out) = (ExactSum::default(), Vec::new());
                for (id, c) in &want {
                    if !sum.try_add(side(c)) {
                        out.push(*id);
                    }
                }
                (sum.total(), out)
            };
            let (confirmed, left_confirmed) = sum(|c| c.confirmed.total);
            let (pending, left_pending) = sum(|c| c.pending.total);
            assert_eq!(got.confirmed, confirmed, "confirmed of {user}");
            assert_eq!(got.pending, pending, "pending of {user}");
            assert_eq!(
                (&got.left_out.confirmed, &got.left_out.pending),
                (&left_confirmed, &left_pending),
                "chains left out of the sums of {user}"
            );
            let complete = left_confirmed.is_empty()
                && left_pending.is_empty()
                && want
                    .values()
                    .all(|c| c.confirmed.is_complete() && c.pending.is_complete());
            assert_eq!(got.complete, complete, "completeness of {user}");
            assert_eq!(
                got.by_symbol(),
                by_symbol(self, &want),
                "by-symbol lines of {user}"
            );
        }
    }

    /// Each chain's collateral of `user` the oracles imply.
    fn expected_chains(
        &self,
        expected: &[Expected],
        user: UserId,
    ) -> BTreeMap<ChainId, Collateral> {
        let mut out = BTreeMap::new();
        for (i, (id, h)) in self.chains.iter().enumerate() {
            let head = h.canonical().last().expect("anchor").header;
            let mut now = head.timestamp;
            if i == self.cross.chain {
                let from = &self.chains[self.cross.from].1;
                now = now.max(from.canonical().last().expect("anchor").header.timestamp);
            }
            let valuator = h.watcher.valuator().clone();
            let registry = valuator.assets();
            let exp = &expected[i];
            let balances: Vec<_> = h
                .assets
                .iter()
                .map(|a| (a.id, exp.balance(&BalanceKey { user, asset: a.id })))
                .filter(|(_, v)| !v.confirmed.is_zero() || !v.pending.is_zero())
                .collect();
            let prices: Vec<_> = balances
                .iter()
                .map(|(a, _)| {
                    let key = registry.price_key(a);
                    if i == self.cross.chain && key == self.cross.asset {
                        expected[self.cross.from].price(&self.cross.key)
                    } else {
                        exp.price(&key)
                    }
                })
                .collect();
            let rates: Vec<_> = balances.iter().map(|(a, _)| exp.rate(a)).collect();
            let c = valuator
                .collateral_full(
                    user,
                    head.number,
                    now,
                    &balances,
                    &prices,
                    &rates,
                    &exp.asset_states(),
                )
                .expect("oracle valuation");
            out.insert(*id, c);
        }
        out
    }
}

/// The by-symbol lines of per-chain collateral `want`, written again: per symbol of each
/// chain's registry, the exact sums of the values on each side.
fn by_symbol(
    harness: &MultiHarness,
    want: &BTreeMap<ChainId, Collateral>,
) -> BTreeMap<String, SymbolTotal> {
    let mut sums: BTreeMap<String, (ExactSum, ExactSum, SymbolTotal)> = BTreeMap::new();
    for (id, h) in &harness.chains {
        let Some(c) = want.get(id) else { continue };
        let registry = h.watcher.valuator().assets();
        let mut held: Vec<_> = c
            .confirmed
            .assets
            .iter()
            .chain(&c.pending.assets)
            .map(|a| a.asset)
            .collect();
        held.sort_unstable();
        held.dedup();
        for asset in held {
            let symbol = registry.get(&asset).expect("tracked").symbol.clone();
            let side =
                |v: &crate::model::Valuation| v.assets.iter().find(|a| a.asset == asset).copied();
            let (conf, pend) = (side(&c.confirmed), side(&c.pending));
            let e = sums.entry(symbol).or_insert_with(|| {
                (
                    ExactSum::default(),
                    ExactSum::default(),
                    SymbolTotal {
                        complete: true,
                        ..SymbolTotal::default()
                    },
                )
            });
            let value = |a: Option<crate::model::AssetValuation>| {
                a.and_then(|a| a.value).unwrap_or_default()
            };
            let fresh = |a: Option<crate::model::AssetValuation>| {
                a.is_none_or(|a| a.status == crate::model::PriceStatus::Fresh)
            };
            let fits = e.0.try_add(value(conf)) & e.1.try_add(value(pend));
            e.2.assets.push((*id, asset));
            e.2.complete &= fits && fresh(conf) && fresh(pend);
        }
    }
    sums.into_iter()
        .map(|(s, (c, p, mut t))| {
            t.confirmed = c.total();
            t.pending = p.total();
            (s, t)
        })
        .collect()
}
