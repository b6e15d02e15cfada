//! Rebasing assets' indexes in the [`MemoryStore`](super::MemoryStore): a confirmed index
//! and one per later pending block, like a price; balances of such an asset are shares,
//! converted on read with the index of the same side.

use alloy_primitives::U256;

use super::Inner;
use crate::model::{AssetId, AssetIndex, BalanceView, BlockNumber, IndexUpdate};

/// One asset's index: confirmed, and after each pending block that wrote one.
#[derive(Debug, Default)]
pub(super) struct IndexState {
    confirmed: Option<AssetIndex>,
    /// `(block, index after it)`, ascending by block.
    pending: Vec<(BlockNumber, AssetIndex)>,
}

impl IndexState {
    /// The index after block `at`.
    pub(super) fn at(&self, at: BlockNumber) -> Option<AssetIndex> {
        self.pending
            .iter()
            .rev()
            .find(|(n, _)| *n <= at)
            .map(|(_, i)| *i)
            .or(self.confirmed)
    }

    /// The index pending block `number` wrote, if any.
    pub(super) fn written_at(&self, number: BlockNumber) -> Option<AssetIndex> {
        self.pending
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, i)| *i)
    }

    fn pending(&self) -> Option<AssetIndex> {
        self.pending.last().map(|(_, i)| *i).or(self.confirmed)
    }
}

/// `shares` as a balance under `index` (unchanged without one; saturating, which a valid
/// UFragments index never needs).
fn convert(index: Option<AssetIndex>, shares: U256) -> U256 {
    index.map_or(shares, |i| i.balance(shares).unwrap_or(U256::MAX))
}

impl Inner {
    /// A stored view of `asset` (shares for a rebasing asset) as balances: the confirmed
    /// side with the confirmed index, the pending side with the pending one.
    pub(super) fn to_balances(&self, asset: &AssetId, view: BalanceView) -> BalanceView {
        match self.indexes.get(asset) {
            None => view,
            Some(state) => BalanceView {
                confirmed: convert(state.confirmed, view.confirmed),
                pending: convert(state.pending(), view.pending),
            },
        }
    }

    /// Records block `number`'s index rows; the assets to remember with the block.
    pub(super) fn append_indexes(
        &mut self,
        number: BlockNumber,
        updates: &[IndexUpdate],
    ) -> Vec<AssetId> {
        for u in updates {
            self.indexes
                .entry(u.asset)
                .or_default()
                .pending
                .push((number, u.index));
        }
        updates.iter().map(|u| u.asset).collect()
    }

    /// Drops block `number`'s index rows.
    pub(super) fn revert_indexes(&mut self, number: BlockNumber, assets: &[AssetId]) {
        for asset in assets {
            if let Some(state) = self.indexes.get_mut(asset) {
                state.pending.retain(|(n, _)| *n != number);
                if state.confirmed.is_none() && state.pending.is_empty() {
                    self.indexes.remove(asset);
                }
            }
        }
    }

    /// Confirms the index rows at or below `tip` of `assets`.
    pub(super) fn finalize_indexes(&mut self, tip: BlockNumber, assets: &[AssetId]) {
        for asset in assets {
            if let Some(state) = self.indexes.get_mut(asset) {
                let upto = state.pending.partition_point(|(n, _)| *n <= tip);
                if upto > 0 {
                    state.confirmed = Some(state.pending[upto - 1].1);
                    state.pending.drain(..upto);
                }
            }
        }
    }
}
