//! [`Harness::mine_spec`]: a generated [`BlockSpec`] mined on the harness chain, with
//! withdrawals and transfers resolved against the oracle's pending balances.

use alloy_primitives::{I256, U256};

use super::Harness;
use crate::model::{BalanceChange, BalanceKey, Block, CorrectionOrigin, DecodeDetail};
use crate::source::BlockBuilder;
use crate::testing::oracle::replay;
use crate::testing::strategy::{BlockSpec, EventSpec};

impl Harness {
    /// Mines a block from a spec, resolving percentages against the current pending state.
    pub fn mine_spec(&self, spec: &BlockSpec) -> Block {
        let state = replay(&self.canonical(), None);
        let mut balances = state.pending;
        let (users, assets) = (&self.users, &self.assets);
        // Spec indices wrap around the harness's users and assets.
        let key = |user: u8, asset: u8| BalanceKey {
            user: users[user as usize % users.len()],
            asset: assets[asset as usize % assets.len()].id,
        };
        let share =
            |balance: U256, percent: u8| balance * U256::from(percent.min(100)) / U256::from(100);
        self.chain.mine(|b: &mut BlockBuilder| {
            // Corrections apply first (the block carries them before its own events).
            for e in &spec.events {
                if let EventSpec::Correction {
                    user,
                    asset,
                    amount,
                    origin,
                } = *e
                {
                    let key = key(user, asset);
                    let origin = match origin % 3 {
                        0 => CorrectionOrigin::Opening,
                        1 => CorrectionOrigin::Drift,
                        _ => CorrectionOrigin::Resume,
                    };
                    balances.insert(key, U256::from(amount));
                    b.correction(key.asset, key.user, U256::from(amount), origin);
                }
            }
            for e in &spec.events {
                match *e {
                    EventSpec::Correction { .. } => {}
                    EventSpec::Deposit {
                        user,
                        asset,
                        amount,
                    } => {
                        let key = key(user, asset);
                        *balances.entry(key).or_default() += U256::from(amount);
                        b.deposit(key.asset, key.user, U256::from(amount));
                    }
                    EventSpec::Withdraw {
                        user,
                        asset,
                        percent,
                    } => {
                        let key = key(user, asset);
                        let bal = balances.entry(key).or_default();
                        let amount = share(*bal, percent);
                        *bal -= amount;
                        b.withdraw(key.asset, key.user, amount);
                    }
                    EventSpec::Transfer {
                        from,
                        to,
                        asset,
                        percent,
                    } => {
                        let (from, to) = (key(from, asset), key(to, asset));
                        let bal = balances.entry(from).or_default();
                        let amount = share(*bal, percent);
                        *bal -= amount;
                        *balances.entry(to).or_default() += amount;
                        b.transfer(from.asset, from.user, to.user, amount);
                    }
                    EventSpec::Huge { .. } => {}
                    EventSpec::Undecodable { asset } => {
                        let asset = assets[asset as usize % assets.len()].id;
                        let detail =
                            DecodeDetail::new("Transfer: buffer overrun while deserializing");
                        b.event(asset, BalanceChange::Undecodable { detail });
                    }
                    EventSpec::Overdraw { user, asset, extra } => {
                        let key = key(user, asset);
                        let bal = balances.get(&key).copied().unwrap_or_default();
                        b.withdraw(key.asset, key.user, bal + U256::from(extra.max(1)));
                    }
                    EventSpec::Set {
                        user,
                        asset,
                        amount,
                    } => {
                        let key = key(user, asset);
                        balances.insert(key, U256::from(amount));
                        b.set_balance(key.asset, key.user, U256::from(amount));
                    }
                }
            }
            for e in &spec.events {
                if let EventSpec::Huge { user, asset } = *e {
                    let key = key(user, asset);
                    let amount = U256::from(10u64).pow(U256::from(30));
                    *balances.entry(key).or_default() += amount;
                    b.deposit(key.asset, key.user, amount);
                }
            }
            // A price for an asset priced from another key goes to that key (its feed).
            let registry = &self.config.engine.assets;
            for p in &spec.prices {
                let asset = registry.price_key(&assets[p.asset as usize % assets.len()].id);
                let answer = I256::try_from(p.answer).unwrap_or_default();
                if p.old_round {
                    let current = state
                        .pending_prices
                        .get(&asset)
                        .map(|p| p.round_id)
                        .unwrap_or_default();
                    b.price_at_round(asset, answer, 8, current);
                } else {
                    b.price(asset, answer, 8);
                }
            }
            let vaults: Vec<_> = assets
                .iter()
                .filter(|a| registry.is_derived(&a.id))
                .collect();
            let mut rated = Vec::new();
            for r in &spec.rates {
                let Some(vault) = vaults.get(r.asset as usize % vaults.len().max(1)) else {
                    continue;
                };
                // A source reads one rate per vault and block.
                if !rated.contains(&vault.id) {
                    rated.push(vault.id);
                    b.rate(vault.id, U256::from(r.rate));
                }
            }
        })
    }
}
