//! [`MultiHarness::check`]: the multi-chain collateral compared with the per-chain replay
//! oracles, the cross-chain price taken from the other chain's oracle.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::MultiHarness;
use crate::chains::{ChainHeads, ChainId};
use crate::model::{BalanceKey, Collateral, UserId};
use crate::testing::oracle::Expected;

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
            let sum = |side: fn(&Collateral) -> Decimal| {
                want.values().map(side).fold(Decimal::ZERO, |a, b| a + b)
            };
            assert_eq!(
                got.confirmed,
                sum(|c| c.confirmed.total),
                "confirmed of {user}"
            );
            assert_eq!(got.pending, sum(|c| c.pending.total), "pending of {user}");
            let complete = want
                .values()
                .all(|c| c.confirmed.is_complete() && c.pending.is_complete());
            assert_eq!(got.complete, complete, "completeness of {user}");
            let by_symbol = got.by_symbol();
            let confirmed: Decimal = by_symbol.values().map(|s| s.confirmed).sum();
            assert_eq!(confirmed, got.confirmed, "by-symbol lines of {user} add up");
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
