//! The asset states (quarantines) of the [`MemoryStore`](super::MemoryStore): like prices,
//! a confirmed state plus one state per pending block that changed it.

use alloy_primitives::map::HashMap;

use crate::model::{AssetId, AssetState, AssetStateView, BlockChanges, BlockNumber};

/// One asset's state: after the finalized tip, and after each pending block that changed
/// it (ascending).
#[derive(Debug, Default)]
pub(super) struct StateLog {
    confirmed: AssetState,
    pending: Vec<(BlockNumber, AssetState)>,
}

impl StateLog {
    /// The state after block `at`.
    fn at(&self, at: BlockNumber) -> &AssetState {
        self.pending
            .iter()
            .rev()
            .find(|(n, _)| *n <= at)
            .map_or(&self.confirmed, |(_, s)| s)
    }

    fn pending(&self) -> &AssetState {
        self.pending.last().map_or(&self.confirmed, |(_, s)| s)
    }
}

/// Every asset whose state ever changed; few (a quarantine is rare), so a revert or a
/// finalization visits them all.
#[derive(Debug, Default)]
pub(super) struct AssetStates(HashMap<AssetId, StateLog>);

impl AssetStates {
    /// Records the states `block` changes.
    pub(super) fn append(&mut self, block: &BlockChanges) {
        let number = block.block.header.number;
        for (asset, state) in &block.asset_states {
            let log = self.0.entry(*asset).or_default();
            log.pending.retain(|(n, _)| *n < number);
            log.pending.push((number, state.clone()));
        }
    }

    /// The states pending block `number` changed, ordered by asset.
    pub(super) fn changed_at(&self, number: BlockNumber) -> Vec<(AssetId, AssetState)> {
        let mut out: Vec<_> = self
            .0
            .iter()
            .filter_map(|(a, log)| {
                log.pending
                    .iter()
                    .find(|(n, _)| *n == number)
                    .map(|(_, s)| (*a, s.clone()))
            })
            .collect();
        out.sort_unstable_by_key(|(a, _)| *a);
        out
    }

    /// Drops what pending block `number` changed.
    pub(super) fn revert(&mut self, number: BlockNumber) {
        for log in self.0.values_mut() {
            log.pending.retain(|(n, _)| *n != number);
        }
    }

    /// Confirms what the blocks at or below `tip` changed.
    pub(super) fn finalize(&mut self, tip: BlockNumber) {
        for log in self.0.values_mut() {
            let upto = log.pending.partition_point(|(n, _)| *n <= tip);
            if upto > 0 {
                log.confirmed = log.pending[upto - 1].1.clone();
                log.pending.drain(..upto);
            }
        }
        self.0
            .retain(|_, log| log.confirmed.is_quarantined() || !log.pending.is_empty());
    }

    /// Each asset's state after block `at`.
    pub(super) fn at(&self, assets: &[AssetId], at: BlockNumber) -> Vec<AssetState> {
        assets
            .iter()
            .map(|a| self.0.get(a).map(|l| l.at(at).clone()).unwrap_or_default())
            .collect()
    }

    /// Every asset not active on either side, ordered by asset.
    pub(super) fn views(&self) -> Vec<AssetStateView> {
        let mut out: Vec<AssetStateView> = self
            .0
            .iter()
            .map(|(asset, log)| AssetStateView {
                asset: *asset,
                confirmed: log.confirmed.clone(),
                pending: log.pending().clone(),
            })
            .filter(|v| v.confirmed.is_quarantined() || v.pending.is_quarantined())
            .collect();
        out.sort_unstable_by_key(|v| v.asset);
        out
    }
}
