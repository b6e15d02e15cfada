//! Folding new blocks onto base balances and prices: the engine's only arithmetic.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::U256;
use alloy_primitives::map::HashMap;
use smallvec::SmallVec;

use super::BaseState;
use crate::error::{BalanceFault, EngineError};
use crate::model::{AssetId, AssetIndex, BalanceKey, Block, Effect, Price};
use crate::model::{AssetRegistry, AssetState, BalanceChange, BlockChanges, CorrectionOrigin};

/// Running state while folding a transition's blocks: balances in a dense vector behind
/// one hash index, so each effect costs one lookup.
pub(super) struct Fold {
    index: HashMap<BalanceKey, usize>,
    keys: Vec<BalanceKey>,
    values: Vec<U256>,
    /// Ordinal of the last block that touched each balance (to list a block's keys once).
    stamp: Vec<usize>,
    blocks: usize,
    prices: HashMap<AssetId, Price>,
    /// Rebasing assets' indexes (see [`super::rebase`]).
    indexes: HashMap<AssetId, AssetIndex>,
    /// Assets not [`AssetState::Active`] (quarantined), and the registry that says which
    /// policy a fault of each asset follows.
    states: HashMap<AssetId, AssetState>,
    assets: Arc<AssetRegistry>,
}

impl Fold {
    pub(super) fn new(base: BaseState, assets: Arc<AssetRegistry>) -> Self {
        let n = base.balances.len();
        let mut fold = Self {
            index: HashMap::with_capacity_and_hasher(n, Default::default()),
            keys: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            stamp: Vec::with_capacity(n),
            blocks: 0,
            prices: base.prices.into_iter().collect(),
            indexes: base.indexes.into_iter().collect(),
            states: base
                .asset_states
                .into_iter()
                .filter(|(_, s)| s.is_quarantined())
                .collect(),
            assets,
        };
        for (key, value) in base.balances {
            fold.slot(key, value);
        }
        fold
    }

    /// The slot of `key`, created with `value` if new.
    fn slot(&mut self, key: BalanceKey, value: U256) -> usize {
        *self.index.entry(key).or_insert_with(|| {
            self.keys.push(key);
            self.values.push(value);
            self.stamp.push(usize::MAX);
            self.keys.len() - 1
        })
    }

    /// Applies one block's events and prices and records what it writes. On error the
    /// fold is abandoned (the caller discards the whole transition).
    pub(super) fn block(&mut self, block: Block) -> Result<BlockChanges, EngineError> {
        let id = block.id();
        self.blocks += 1;
        let mut touched = Vec::with_capacity(block.events.len() * 2);
        let mut indexed = super::rebase::Touched::default();
        let mut asset_states: BTreeMap<AssetId, AssetState> = BTreeMap::new();
        let mut staged: SmallVec<[(usize, U256); 2]> = SmallVec::new();
        // Assets quarantined before this block: a fault correction ends their quarantine
        // here; one of a quarantine of this block undoes it.
        let quarantined_before: SmallVec<[AssetId; 2]> = self.states.keys().copied().collect();
        for event in &block.events {
            if let BalanceChange::Reconciled {
                origin: CorrectionOrigin::Fault,
                ..
            } = event.change
                && self.states.remove(&event.asset).is_some()
            {
                if quarantined_before.contains(&event.asset) {
                    asset_states.insert(event.asset, AssetState::Active);
                } else {
                    asset_states.remove(&event.asset);
                }
            }
            if event.change == BalanceChange::Resume {
                if self.states.remove(&event.asset).is_some() {
                    asset_states.insert(event.asset, AssetState::Active);
                }
                continue;
            }
            if self.states.contains_key(&event.asset) {
                // Quarantined: skipped (rebases too) until a resume.
                continue;
            }
            if let BalanceChange::Undecodable { detail } = event.change {
                let policy = self.assets.policy(&event.asset);
                let q = super::quarantine::on_undecodable(policy, id, event, detail)?;
                tracing::warn!(block = id.number, log = %q.log, asset = %q.asset, reason = %q.reason, "asset quarantined");
                let state = AssetState::Quarantined(q);
                self.states.insert(event.asset, state.clone());
                asset_states.insert(event.asset, state);
                continue;
            }
            if !indexed.event(&mut self.indexes, event, id)? {
                continue;
            }
            let index = self.indexes.get(&event.asset).copied();
            staged.clear();
            let mut fault = None;
            for (key, effect) in event.effects() {
                let effect = match super::rebase::to_shares(effect, index, id, event, key) {
                    Ok(effect) => effect,
                    Err(EngineError::BalanceOverflow(f)) => {
                        fault = Some((true, *f));
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let slot = self.slot(key, U256::ZERO);
                let before = staged
                    .iter()
                    .rev()
                    .find(|(s, _)| *s == slot)
                    .map_or(self.values[slot], |(_, v)| *v);
                let Some(after) = effect.apply(before) else {
                    let (overflow, amount) = match effect {
                        Effect::Debit(amount) => (false, amount),
                        Effect::Credit(amount)
                        | Effect::Set(amount)
                        | Effect::Reconcile(amount) => (true, amount),
                    };
                    fault = Some((
                        overflow,
                        BalanceFault {
                            block: id,
                            log: event.log,
                            user: key.user,
                            asset: key.asset,
                            balance: before,
                            amount,
                        },
                    ));
                    break;
                };
                staged.push((slot, after));
            }
            if let Some((overflow, fault)) = fault {
                match super::quarantine::on_fault(self.assets.policy(&event.asset), overflow, fault)
                {
                    Err(e) => return Err(e),
                    Ok(q) => {
                        tracing::warn!(block = id.number, log = %q.log, asset = %q.asset, reason = %q.reason, "asset quarantined");
                        let state = AssetState::Quarantined(q);
                        self.states.insert(event.asset, state.clone());
                        asset_states.insert(event.asset, state);
                    }
                }
                continue;
            }
            for &(slot, after) in &staged {
                self.values[slot] = after;
                if self.stamp[slot] != self.blocks {
                    self.stamp[slot] = self.blocks;
                    touched.push(slot);
                }
            }
        }
        let mut balances: Vec<(BalanceKey, U256)> = touched
            .into_iter()
            .map(|s| (self.keys[s], self.values[s]))
            .collect();
        balances.sort_unstable_by_key(|(k, _)| *k);

        let mut accepted = BTreeMap::new();
        let mut rejected_prices = Vec::new();
        for update in &block.prices {
            match update.accept(self.prices.get(&update.asset), id.number) {
                Ok(price) => {
                    self.prices.insert(update.asset, price);
                    accepted.insert(update.asset, price);
                }
                Err(why) => {
                    tracing::warn!(block = id.number, log = %update.log, asset = %update.asset, %why, "oracle update rejected");
                    rejected_prices.push((update.log, why));
                }
            }
        }
        let rates = super::rates::accept(&block);
        Ok(BlockChanges {
            block,
            balances,
            prices: accepted.into_values().collect(),
            rejected_prices,
            indexes: indexed.updates(&self.indexes),
            asset_states: asset_states.into_iter().collect(),
            rates,
        })
    }
}

#[cfg(test)]
#[path = "fault_correction_tests.rs"]
mod fault_correction_tests;
