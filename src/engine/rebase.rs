//! Rebasing assets in the fold: a `Rebase` event sets the asset's index, and every other
//! event of an asset with an index moves shares (its token amounts converted with the
//! index in effect at that log; a `TransferShares` names shares and moves them as they
//! are). Balances of such an asset are shares; the block's events
//! (and so the log rows the stores write from them) keep the amounts the chain named.

use std::collections::BTreeMap;

use alloy_primitives::map::HashMap;

use crate::error::{BalanceFault, EngineError};
use crate::model::{
    AssetId, AssetIndex, BalanceChange, BalanceEvent, BalanceKey, BlockRef, Effect, IndexUpdate,
};

/// The rebasing assets one block touches, and whether it rebased each.
#[derive(Default)]
pub(super) struct Touched {
    assets: BTreeMap<AssetId, bool>,
}

impl Touched {
    /// Takes in one event: a `Rebase` updates `indexes` (and has no balance effects:
    /// `false`); an event of an indexed asset is recorded. `true` when the event's effects
    /// are to be applied.
    pub(super) fn event(
        &mut self,
        indexes: &mut HashMap<AssetId, AssetIndex>,
        event: &BalanceEvent,
        block: BlockRef,
    ) -> Result<bool, EngineError> {
        if let BalanceChange::Rebase { index } = event.change {
            if !index.is_valid() {
                return Err(EngineError::InvalidIndex {
                    block,
                    log: event.log,
                    asset: event.asset,
                });
            }
            indexes.insert(event.asset, index);
            self.assets.insert(event.asset, true);
            return Ok(false);
        }
        if indexes.contains_key(&event.asset) {
            self.assets.entry(event.asset).or_insert(false);
        }
        Ok(true)
    }

    /// The block's index rows, ordered by asset.
    pub(super) fn updates(&self, indexes: &HashMap<AssetId, AssetIndex>) -> Vec<IndexUpdate> {
        self.assets
            .iter()
            .filter_map(|(asset, rebased)| {
                indexes.get(asset).map(|index| IndexUpdate {
                    asset: *asset,
                    index: *index,
                    rebased: *rebased,
                })
            })
            .collect()
    }
}

/// `effect` in shares under `index` (unchanged without one, and for an event that names
/// shares, [`BalanceChange::TransferShares`]). A share count past `U256::MAX` is the
/// balance's overflow.
pub(super) fn to_shares(
    effect: Effect,
    index: Option<AssetIndex>,
    block: BlockRef,
    event: &BalanceEvent,
    key: BalanceKey,
) -> Result<Effect, EngineError> {
    let Some(index) = index else {
        return Ok(effect);
    };
    if let BalanceChange::TransferShares { .. } = event.change {
        return Ok(effect);
    }
    let (amount, make): (_, fn(_) -> Effect) = match effect {
        Effect::Credit(a) => (a, Effect::Credit),
        Effect::Debit(a) => (a, Effect::Debit),
        Effect::Set(a) => (a, Effect::Set),
        Effect::Reconcile(a) => (a, Effect::Reconcile),
    };
    index.shares(amount).map(make).ok_or_else(|| {
        EngineError::BalanceOverflow(Box::new(BalanceFault {
            block,
            log: event.log,
            user: key.user,
            asset: key.asset,
            balance: alloy_primitives::U256::ZERO,
            amount,
        }))
    })
}

#[cfg(test)]
#[path = "rebase_tests.rs"]
mod tests;
