//! The per-balance and per-price state of the [`MemoryStore`](super::MemoryStore): a base
//! value plus one value per later pending block, and what each pending block wrote.

use alloy_primitives::U256;
use smallvec::SmallVec;

use crate::model::{AssetId, BalanceKey, BalanceView, BlockHeader, BlockNumber, Price};

/// One balance: a base value and the value after each later block that touched it.
///
/// Finality is applied lazily: entries at or below the finalized height still in
/// `entries` are already confirmed; they are folded into `base` the next time the
/// balance is written, so finalizing a block costs O(1) per block, not per balance.
#[derive(Debug, Default)]
pub(super) struct KeyState {
    /// Balance after every block at or below some finalized height.
    pub(super) base: U256,
    /// `(block, balance after block)`, ascending by block; inline for the common case.
    pub(super) entries: SmallVec<[(BlockNumber, U256); 2]>,
}

impl KeyState {
    /// Folds entries at or below `finalized` into `base`.
    pub(super) fn compact(&mut self, finalized: Option<BlockNumber>) {
        let Some(fin) = finalized else { return };
        let upto = self.entries.partition_point(|(n, _)| *n <= fin);
        if upto > 0 {
            self.base = self.entries[upto - 1].1;
            self.entries.drain(..upto);
        }
    }

    /// The balance after block `at`.
    pub(super) fn at(&self, at: BlockNumber) -> U256 {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| *n <= at)
            .map_or(self.base, |(_, v)| *v)
    }

    pub(super) fn view(&self, finalized: Option<BlockNumber>) -> BalanceView {
        BalanceView {
            confirmed: finalized.map_or(self.base, |f| self.at(f)),
            pending: self.entries.last().map_or(self.base, |(_, v)| *v),
        }
    }
}

/// A user's balances, sorted by asset.
#[derive(Debug, Default)]
pub(super) struct UserState {
    pub(super) assets: SmallVec<[(AssetId, KeyState); 1]>,
}

#[derive(Debug, Default)]
pub(super) struct PriceState {
    pub(super) confirmed: Option<Price>,
    /// Accepted pending prices, ascending by block.
    pub(super) pending: Vec<Price>,
}

impl PriceState {
    pub(super) fn at(&self, at: BlockNumber) -> Option<Price> {
        self.pending
            .iter()
            .rev()
            .find(|p| p.block <= at)
            .copied()
            .or(self.confirmed)
    }
}

/// What a pending block wrote, so it can be reverted or finalized without a scan.
#[derive(Debug)]
pub(super) struct PendingBlock {
    pub(super) header: BlockHeader,
    pub(super) keys: Vec<BalanceKey>,
    pub(super) price_assets: Vec<AssetId>,
    /// Assets whose rate the block wrote.
    pub(super) rate_assets: Vec<AssetId>,
    /// Index of the block's entry in the log.
    pub(super) log: usize,
    /// Rebasing assets the block wrote an index row for.
    pub(super) index_assets: Vec<AssetId>,
    /// Those it rebased.
    pub(super) rebased: Vec<AssetId>,
}
