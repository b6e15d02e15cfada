//! Folding new blocks onto base balances and prices: the engine's only arithmetic.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_primitives::map::HashMap;

use super::BaseState;
use crate::error::{BalanceFault, EngineError};
use crate::model::BlockChanges;
use crate::model::{AssetId, BalanceKey, Block, Effect, Price};

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
}

impl Fold {
    pub(super) fn new(base: BaseState) -> Self {
        let n = base.balances.len();
        let mut fold = Self {
            index: HashMap::with_capacity_and_hasher(n, Default::default()),
            keys: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            stamp: Vec::with_capacity(n),
            blocks: 0,
            prices: base.prices.into_iter().collect(),
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
        for event in &block.events {
            for (key, effect) in event.effects() {
                let slot = self.slot(key, U256::ZERO);
                let before = self.values[slot];
                let Some(after) = effect.apply(before) else {
                    let (overflow, amount) = match effect {
                        Effect::Debit(amount) => (false, amount),
                        Effect::Credit(amount) | Effect::Set(amount) => (true, amount),
                    };
                    let fault = Box::new(BalanceFault {
                        block: id,
                        log: event.log,
                        user: key.user,
                        asset: key.asset,
                        balance: before,
                        amount,
                    });
                    return Err(if overflow {
                        EngineError::BalanceOverflow(fault)
                    } else {
                        EngineError::BalanceUnderflow(fault)
                    });
                };
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
            rates,
        })
    }
}
