//! The replay oracle: a deliberately naive fold of a canonical chain from scratch.
//!
//! It shares no code with the engine's fold: balances are a `BTreeMap` updated event by
//! event, prices follow the acceptance rules written out again here. After any sequence
//! of blocks, reorgs and confirmations, a correct store equals `replay(canonical, finalized)`.
//! A rebasing asset's balances are folded in shares with its own index map and converted
//! with the same side's index at the end, as readers see them.
//!
//! Quarantine (design §6) is written again here: a debit larger than the balance or a
//! credit past `U256::MAX` quarantines the event's asset (no effect of that event applies)
//! and its later events are skipped until a `Resume` event of it; so does an `Undecodable`
//! event (a log its decoder rejected), at its log; a fault correction
//! (`Reconciled { origin: Fault }`, written by the watcher for an asset of
//! `FaultPolicy::Reconcile`) ends the quarantine and then applies. (A strict asset's fault
//! never reaches a committed chain: the engine refuses the block, so every fault the
//! oracle sees is a quarantine.)

use std::collections::BTreeMap;

use alloy_primitives::{Address, I256, U256, U512};

use crate::model::{
    AssetId, AssetIndex, AssetState, AssetStateView, BalanceChange, BalanceKey, BalanceView, Block,
    BlockNumber, CorrectionOrigin, FaultReason, MAX_PRICE_DECIMALS, Price, PriceView, Quarantine,
    RateUpdate, RateView,
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
    /// Assets quarantined after the last block at or below the finalized height.
    pub confirmed_quarantined: BTreeMap<AssetId, Quarantine>,
    /// Assets quarantined after the last canonical block.
    pub pending_quarantined: BTreeMap<AssetId, Quarantine>,
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

    /// What a store's [`AssetStateReader::asset_states`](crate::traits::AssetStateReader::asset_states)
    /// must list: every asset quarantined on either side, ordered by asset.
    pub fn asset_states(&self) -> Vec<AssetStateView> {
        let state = |m: &BTreeMap<AssetId, Quarantine>, a: &AssetId| {
            m.get(a)
                .cloned()
                .map_or(AssetState::Active, AssetState::Quarantined)
        };
        let assets: std::collections::BTreeSet<AssetId> = self
            .confirmed_quarantined
            .keys()
            .chain(self.pending_quarantined.keys())
            .copied()
            .collect();
        assets
            .into_iter()
            .map(|a| AssetStateView {
                asset: a,
                confirmed: state(&self.confirmed_quarantined, &a),
                pending: state(&self.pending_quarantined, &a),
            })
            .collect()
    }

    /// The expected view of one vault's rate.
    pub fn rate(&self, asset: &AssetId) -> RateView {
        RateView {
            confirmed: self.confirmed_rates.get(asset).copied(),
            pending: self.pending_rates.get(asset).copied(),
        }
    }
}

#[derive(Default, Clone)]
struct Fold {
    /// Balances; shares for an asset with an index.
    balances: BTreeMap<BalanceKey, U256>,
    prices: BTreeMap<AssetId, Price>,
    indexes: BTreeMap<AssetId, AssetIndex>,
    quarantined: BTreeMap<AssetId, Quarantine>,
    rates: BTreeMap<AssetId, RateUpdate>,
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
            if e.change == BalanceChange::Resume {
                self.quarantined.remove(&e.asset);
                continue;
            }
            // A fault correction (FaultPolicy::Reconcile) ends the quarantine, then applies.
            if let BalanceChange::Reconciled {
                origin: CorrectionOrigin::Fault,
                ..
            } = e.change
            {
                self.quarantined.remove(&e.asset);
            }
            if self.quarantined.contains_key(&e.asset) {
                continue;
            }
            // A log its decoder rejected quarantines its asset at that log.
            if let BalanceChange::Undecodable { detail } = e.change {
                let reason = FaultReason::Undecodable {
                    detail: detail.as_str().to_owned(),
                };
                let q = Quarantine {
                    asset: e.asset,
                    block: block.id(),
                    log: e.log,
                    reason,
                };
                self.quarantined.insert(e.asset, q);
                continue;
            }
            // Token amounts in shares for a rebasing asset (a rebase sets its index).
            let change = match e.change {
                BalanceChange::Resume | BalanceChange::Undecodable { .. } => {
                    unreachable!("handled above")
                }
                BalanceChange::Rebase { index } => {
                    self.indexes.insert(e.asset, index);
                    continue;
                }
                BalanceChange::Transfer { from, to, amount } => BalanceChange::Transfer {
                    from,
                    to,
                    amount: self.shares(e.asset, amount),
                },
                // Already shares (stETH): moved as they are.
                BalanceChange::TransferShares { from, to, shares } => BalanceChange::Transfer {
                    from,
                    to,
                    amount: shares,
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
            let key = |user| BalanceKey {
                user,
                asset: e.asset,
            };
            let get = |m: &BTreeMap<BalanceKey, U256>, user| {
                m.get(&key(user)).copied().unwrap_or_default()
            };
            // The event's writes, checked before any applies.
            let mut writes: Vec<(Address, U256)> = Vec::new();
            let mut fault = None;
            match change {
                BalanceChange::Rebase { .. } | BalanceChange::TransferShares { .. } => {
                    unreachable!("handled above")
                }
                BalanceChange::Transfer { from, to, amount } => {
                    let mut from_after = None;
                    if !from.is_zero() {
                        let b = get(&self.balances, from);
                        match b.checked_sub(amount) {
                            Some(v) => from_after = Some(v),
                            None => {
                                fault = Some(FaultReason::Underflow {
                                    user: from,
                                    balance: b,
                                    amount,
                                })
                            }
                        }
                    }
                    if fault.is_none() && !to.is_zero() {
                        let b = match from_after {
                            Some(v) if to == from => v,
                            _ => get(&self.balances, to),
                        };
                        match b.checked_add(amount) {
                            Some(v) => writes.push((to, v)),
                            None => {
                                fault = Some(FaultReason::Overflow {
                                    user: to,
                                    balance: b,
                                    amount,
                                })
                            }
                        }
                    }
                    if let Some(v) = from_after {
                        writes.insert(0, (from, v));
                    }
                }
                BalanceChange::Deposit { user, .. } | BalanceChange::Withdraw { user, .. }
                    if user.is_zero() => {}
                BalanceChange::Deposit { user, amount } => {
                    let b = get(&self.balances, user);
                    match b.checked_add(amount) {
                        Some(v) => writes.push((user, v)),
                        None => {
                            fault = Some(FaultReason::Overflow {
                                user,
                                balance: b,
                                amount,
                            })
                        }
                    }
                }
                BalanceChange::Withdraw { user, amount } => {
                    let b = get(&self.balances, user);
                    match b.checked_sub(amount) {
                        Some(v) => writes.push((user, v)),
                        None => {
                            fault = Some(FaultReason::Underflow {
                                user,
                                balance: b,
                                amount,
                            })
                        }
                    }
                }
                // A correction is an absolute balance read from the chain: like `Set`.
                BalanceChange::Set { user, balance }
                | BalanceChange::Reconciled { user, balance, .. } => {
                    self.balances.insert(key(user), balance);
                }
                BalanceChange::Resume | BalanceChange::Undecodable { .. } => {
                    unreachable!("handled above")
                }
            }
            if let Some(reason) = fault {
                self.quarantined.insert(
                    e.asset,
                    Quarantine {
                        asset: e.asset,
                        block: block.id(),
                        log: e.log,
                        reason,
                    },
                );
                continue;
            }
            for (user, v) in writes {
                if !user.is_zero() {
                    self.balances.insert(key(user), v);
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
/// A debit larger than a balance or a credit past `U256::MAX` quarantines the asset (see
/// the module docs).
///
/// # Panics
/// If a block's events or
/// price updates are not in ascending log order (the engine refuses such a block with
/// `EngineError::LogOutOfOrder`): the oracle only replays valid chains, each block in log
/// order.
pub fn replay(canonical: &[Block], finalized: Option<BlockNumber>) -> Expected {
    let mut fold = Fold::default();
    let mut confirmed = Fold::default();
    for block in canonical {
        fold.block(block);
        if finalized.is_some_and(|f| block.header.number <= f) {
            confirmed = fold.clone();
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
        confirmed: balances(confirmed.balances, &confirmed.indexes),
        pending: balances(fold.balances, &fold.indexes),
        confirmed_prices: confirmed.prices,
        pending_prices: fold.prices,
        confirmed_indexes: confirmed.indexes,
        pending_indexes: fold.indexes,
        confirmed_quarantined: confirmed.quarantined,
        pending_quarantined: fold.quarantined,
        confirmed_rates: confirmed.rates,
        pending_rates: fold.rates,
    }
}
