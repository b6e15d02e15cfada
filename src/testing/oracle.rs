//! The replay oracle: a deliberately naive fold of a canonical chain from scratch.
//!
//! It shares no code with the engine's fold: balances are a `BTreeMap` updated event by
//! event, prices follow the acceptance rules written out again here. After any sequence
//! of blocks, reorgs and confirmations, a correct store equals `replay(canonical, finalized)`.

use std::collections::BTreeMap;

use alloy_primitives::{Address, I256, U256};

use crate::model::{
    AssetId, BalanceChange, BalanceKey, BalanceView, Block, BlockNumber, MAX_PRICE_DECIMALS, Price,
    PriceView, RateUpdate, RateView,
};

/// The state a canonical chain implies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Balances after the last block at or below the finalized height.
    pub confirmed: BTreeMap<BalanceKey, U256>,
    /// Balances after the last canonical block.
    pub pending: BTreeMap<BalanceKey, U256>,
    /// Prices accepted at or below the finalized height.
    pub confirmed_prices: BTreeMap<AssetId, Price>,
    /// Prices accepted on the whole chain.
    pub pending_prices: BTreeMap<AssetId, Price>,
    /// Vault rates accepted at or below the finalized height (the latest per asset).
    pub confirmed_rates: BTreeMap<AssetId, RateUpdate>,
    /// Vault rates accepted on the whole chain (the latest per asset).
    pub pending_rates: BTreeMap<AssetId, RateUpdate>,
}

impl Expected {
    /// The expected view of one balance.
    pub fn balance(&self, key: &BalanceKey) -> BalanceView {
        BalanceView {
            confirmed: self.confirmed.get(key).copied().unwrap_or_default(),
            pending: self.pending.get(key).copied().unwrap_or_default(),
        }
    }

    /// The expected view of one asset's price.
    pub fn price(&self, asset: &AssetId) -> PriceView {
        PriceView {
            confirmed: self.confirmed_prices.get(asset).copied(),
            pending: self.pending_prices.get(asset).copied(),
        }
    }

    /// The expected view of one vault's rate.
    pub fn rate(&self, asset: &AssetId) -> RateView {
        RateView {
            confirmed: self.confirmed_rates.get(asset).copied(),
            pending: self.pending_rates.get(asset).copied(),
        }
    }
}

#[derive(Default)]
struct Fold {
    balances: BTreeMap<BalanceKey, U256>,
    prices: BTreeMap<AssetId, Price>,
    rates: BTreeMap<AssetId, RateUpdate>,
}

impl Fold {
    fn add(&mut self, user: Address, asset: AssetId, amount: U256) {
        if user.is_zero() {
            return;
        }
        let b = self.balances.entry(BalanceKey { user, asset }).or_default();
        *b = b
            .checked_add(amount)
            .expect("oracle: replayed chain overflows a balance");
    }

    fn sub(&mut self, user: Address, asset: AssetId, amount: U256) {
        if user.is_zero() {
            return;
        }
        let b = self.balances.entry(BalanceKey { user, asset }).or_default();
        *b = b
            .checked_sub(amount)
            .expect("oracle: replayed chain underflows a balance");
    }

    fn block(&mut self, block: &Block) {
        let indices = |logs: Vec<u64>| logs.windows(2).all(|w| w[0] < w[1]);
        assert!(
            indices(block.events.iter().map(|e| e.log.log_index).collect())
                && indices(block.prices.iter().map(|p| p.log.log_index).collect()),
            "oracle: block {} delivers its logs out of log order",
            block.header.number
        );
        for e in &block.events {
            match e.change {
                BalanceChange::Transfer { from, to, amount } => {
                    self.sub(from, e.asset, amount);
                    self.add(to, e.asset, amount);
                }
                BalanceChange::Deposit { user, amount } => self.add(user, e.asset, amount),
                BalanceChange::Withdraw { user, amount } => self.sub(user, e.asset, amount),
                BalanceChange::Set { user, balance } => {
                    self.balances.insert(
                        BalanceKey {
                            user,
                            asset: e.asset,
                        },
                        balance,
                    );
                }
            }
        }
        for p in &block.prices {
            let newer = self
                .prices
                .get(&p.asset)
                .is_none_or(|c| p.round_id > c.round_id);
            let fits = i128::try_from(p.answer).is_ok_and(|a| a > 0 && a < (1i128 << 96));
            if p.answer > I256::ZERO && p.decimals <= MAX_PRICE_DECIMALS && newer && fits {
                self.prices.insert(
                    p.asset,
                    Price {
                        asset: p.asset,
                        answer: p.answer,
                        decimals: p.decimals,
                        round_id: p.round_id,
                        updated_at: p.updated_at,
                        block: block.header.number,
                    },
                );
            }
        }
        // A rate read at a block replaces the one before it, unless it is zero.
        for r in &block.rates {
            if r.rate > U256::ZERO {
                let rate = RateUpdate {
                    asset: r.asset,
                    rate: r.rate,
                    block: block.header.number,
                };
                self.rates.insert(r.asset, rate);
            }
        }
    }
}

/// Folds `canonical` (oldest first) from scratch; blocks at or below `finalized` make up
/// the confirmed state, all of them the pending state. Zero balances are left out.
///
/// # Panics
/// If the chain debits more than a balance holds or overflows one, or a block's events or
/// price updates are not in ascending log order (the engine refuses such a block with
/// `EngineError::LogOutOfOrder`): the oracle only replays valid chains, each block in log
/// order.
pub fn replay(canonical: &[Block], finalized: Option<BlockNumber>) -> Expected {
    let mut fold = Fold::default();
    let mut confirmed = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for block in canonical {
        fold.block(block);
        if finalized.is_some_and(|f| block.header.number <= f) {
            confirmed = (
                fold.balances.clone(),
                fold.prices.clone(),
                fold.rates.clone(),
            );
        }
    }
    let nonzero =
        |m: BTreeMap<BalanceKey, U256>| m.into_iter().filter(|(_, v)| !v.is_zero()).collect();
    Expected {
        confirmed: nonzero(confirmed.0),
        pending: nonzero(fold.balances),
        confirmed_prices: confirmed.1,
        pending_prices: fold.prices,
        confirmed_rates: confirmed.2,
        pending_rates: fold.rates,
    }
}
