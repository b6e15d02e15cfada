//! The replay oracle: a deliberately naive fold of a canonical chain from scratch.
//!
//! It shares no code with the engine's fold: balances are a `BTreeMap` updated event by
//! event, prices follow the acceptance rules written out again here. After any sequence
//! of blocks, reorgs and confirmations, a correct store equals `replay(canonical, finalized)`.
//! A rebasing asset's balances are folded in shares with its own index map and converted
//! with the same side's index at the end, as readers see them.

use std::collections::BTreeMap;

use alloy_primitives::{Address, I256, U256, U512};

use crate::model::{
    AssetId, AssetIndex, BalanceChange, BalanceKey, BalanceView, Block, BlockNumber,
    MAX_PRICE_DECIMALS, Price, PriceView,
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
    /// Rebasing assets' indexes at or below the finalized height (`confirmed` balances
    /// of these assets are their shares converted with it).
    pub confirmed_indexes: BTreeMap<AssetId, AssetIndex>,
    /// Rebasing assets' indexes on the whole chain.
    pub pending_indexes: BTreeMap<AssetId, AssetIndex>,
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
}

#[derive(Default)]
struct Fold {
    /// Balances; shares for an asset with an index.
    balances: BTreeMap<BalanceKey, U256>,
    prices: BTreeMap<AssetId, Price>,
    indexes: BTreeMap<AssetId, AssetIndex>,
}

/// `floor(a × b ÷ c)`, the oracle's own arithmetic (in `U512`, panicking past `U256`).
fn scale(a: U256, b: U256, c: U256) -> U256 {
    let wide = U512::from(a) * U512::from(b) / U512::from(c);
    assert!(
        wide <= U512::from(U256::MAX),
        "oracle: a converted amount exceeds U256"
    );
    U256::from_limbs(wide.as_limbs()[..4].try_into().expect("four limbs"))
}

impl Fold {
    /// An event's token amount in the asset's shares (UFragments: `value × gonsPerFragment`).
    fn shares(&self, asset: AssetId, amount: U256) -> U256 {
        match self.indexes.get(&asset) {
            Some(i) => scale(amount, i.den, i.num),
            None => amount,
        }
    }

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
        let ascending = |logs: Vec<(u64, u16)>| logs.windows(2).all(|w| w[0] < w[1]);
        let corrections = block
            .events
            .iter()
            .take_while(|e| e.log.is_correction())
            .count();
        let of = |events: &[crate::model::BalanceEvent]| {
            events
                .iter()
                .map(|e| (e.log.log_index, e.part))
                .collect::<Vec<_>>()
        };
        assert!(
            block.events[corrections..]
                .iter()
                .all(|e| !e.log.is_correction())
                && ascending(of(&block.events[..corrections]))
                && ascending(of(&block.events[corrections..]))
                && ascending(block.prices.iter().map(|p| (p.log.log_index, 0)).collect()),
            "oracle: block {} delivers its logs out of log order",
            block.header.number
        );
        for e in &block.events {
            let change = match e.change {
                BalanceChange::Rebase { index } => {
                    self.indexes.insert(e.asset, index);
                    continue;
                }
                BalanceChange::Transfer { from, to, amount } => BalanceChange::Transfer {
                    from,
                    to,
                    amount: self.shares(e.asset, amount),
                },
                BalanceChange::Deposit { user, amount } => BalanceChange::Deposit {
                    user,
                    amount: self.shares(e.asset, amount),
                },
                BalanceChange::Withdraw { user, amount } => BalanceChange::Withdraw {
                    user,
                    amount: self.shares(e.asset, amount),
                },
                BalanceChange::Set { user, balance } => BalanceChange::Set {
                    user,
                    balance: self.shares(e.asset, balance),
                },
                BalanceChange::Reconciled {
                    user,
                    balance,
                    origin,
                } => BalanceChange::Reconciled {
                    user,
                    balance: self.shares(e.asset, balance),
                    origin,
                },
            };
            match change {
                BalanceChange::Rebase { .. } => unreachable!("handled above"),
                BalanceChange::Transfer { from, to, amount } => {
                    self.sub(from, e.asset, amount);
                    self.add(to, e.asset, amount);
                }
                BalanceChange::Deposit { user, amount } => self.add(user, e.asset, amount),
                BalanceChange::Withdraw { user, amount } => self.sub(user, e.asset, amount),
                // A correction is an absolute balance read from the chain: like `Set`.
                BalanceChange::Set { user, balance }
                | BalanceChange::Reconciled { user, balance, .. } => {
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
                fold.indexes.clone(),
            );
        }
    }
    // Balances as readers see them: shares converted with the same side's index.
    let balances = |m: BTreeMap<BalanceKey, U256>, indexes: &BTreeMap<AssetId, AssetIndex>| {
        m.into_iter()
            .map(|(k, v)| match indexes.get(&k.asset) {
                Some(i) => (k, scale(v, i.num, i.den)),
                None => (k, v),
            })
            .filter(|(_, v)| !v.is_zero())
            .collect()
    };
    Expected {
        confirmed: balances(confirmed.0, &confirmed.2),
        pending: balances(fold.balances, &fold.indexes),
        confirmed_prices: confirmed.1,
        pending_prices: fold.prices,
        confirmed_indexes: confirmed.2,
        pending_indexes: fold.indexes,
    }
}
