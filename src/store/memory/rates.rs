//! Vault rates in the [`MemoryStore`]: per asset a confirmed rate and the pending ones,
//! ascending by block, written, reverted and finalized with their blocks like prices.

use async_trait::async_trait;

use super::{Inner, MemoryStore};
use crate::error::StoreError;
use crate::model::{AssetId, BlockChanges, BlockNumber, RateUpdate, RateView};
use crate::traits::RateFeed;

/// One vault's rates.
#[derive(Debug, Default)]
pub(super) struct RateState {
    confirmed: Option<RateUpdate>,
    /// Pending rates, ascending by block.
    pending: Vec<RateUpdate>,
}

impl RateState {
    /// The rate pending block `number` carried, if any.
    pub(super) fn written_at(&self, number: BlockNumber) -> Option<RateUpdate> {
        self.pending.iter().find(|r| r.block == number).copied()
    }

    fn view(&self) -> RateView {
        RateView {
            confirmed: self.confirmed,
            pending: self.pending.last().copied().or(self.confirmed),
        }
    }
}

impl Inner {
    /// Stores a new block's rates as pending; returns the assets it wrote, for its
    /// pending-block record.
    pub(super) fn append_rates(&mut self, changes: &BlockChanges) -> Vec<AssetId> {
        for rate in &changes.rates {
            self.rates
                .entry(rate.asset)
                .or_default()
                .pending
                .push(*rate);
        }
        changes.rates.iter().map(|r| r.asset).collect()
    }

    /// Drops the rates block `number` wrote.
    pub(super) fn revert_rates(&mut self, number: BlockNumber, assets: &[AssetId]) {
        for asset in assets {
            if let Some(state) = self.rates.get_mut(asset) {
                state.pending.retain(|r| r.block != number);
            }
        }
    }

    /// Confirms the latest pending rate at or below `tip` of each asset.
    pub(super) fn finalize_rates(&mut self, tip: BlockNumber, assets: &[AssetId]) {
        for asset in assets {
            if let Some(state) = self.rates.get_mut(asset) {
                let upto = state.pending.partition_point(|r| r.block <= tip);
                if upto > 0 {
                    state.confirmed = Some(state.pending[upto - 1]);
                    state.pending.drain(..upto);
                }
            }
        }
    }
}

#[async_trait]
impl RateFeed for MemoryStore {
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError> {
        let inner = self.read();
        Ok(assets
            .iter()
            .map(|a| inner.rates.get(a).map(RateState::view).unwrap_or_default())
            .collect())
    }
}
