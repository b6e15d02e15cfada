//! The store's wire contract: what one step writes.

use std::collections::BTreeSet;

use alloy_primitives::U256;

use super::{
    AssetId, AssetState, BalanceKey, Block, BlockHeader, BlockNumber, IndexUpdate, LogId, Price,
    PriceRejection, RateUpdate, UserId,
};

/// What one new block writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockChanges {
    /// The block, with its raw events for the log.
    pub block: Block,
    /// Each balance the block touches and its value *after* the block, ordered by key.
    pub balances: Vec<(BalanceKey, U256)>,
    /// The last accepted price per asset in this block, ordered by asset.
    pub prices: Vec<Price>,
    /// Oracle updates that were not used, and why.
    pub rejected_prices: Vec<(LogId, PriceRejection)>,
    /// The index after the block of each rebasing asset the block touches (moved shares
    /// of or rebased), ordered by asset.
    pub indexes: Vec<IndexUpdate>,
    /// Assets whose [`AssetState`] the block changes (a quarantine, or a resume back to
    /// [`AssetState::Active`]), ordered by asset, each at most once: its state after the
    /// block.
    pub asset_states: Vec<(AssetId, AssetState)>,
    /// The accepted vault rates of this block, ordered by asset (one per asset).
    pub rates: Vec<RateUpdate>,
}

/// Everything one step writes, applied by [`StoreWriter::apply`](crate::traits::StoreWriter::apply)
/// atomically: revert, then append, then finalize.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changeset {
    /// Unconfirmed blocks to roll back, ascending (all above the fork point).
    pub revert: Vec<BlockHeader>,
    /// New blocks, ascending, extending the fork point (or the head).
    pub blocks: Vec<BlockChanges>,
    /// The block that becomes the finalized tip, if finality advances.
    pub finalize: Option<BlockHeader>,
}

impl Changeset {
    /// Whether the changeset changes nothing.
    pub fn is_empty(&self) -> bool {
        self.revert.is_empty() && self.blocks.is_empty() && self.finalize.is_none()
    }

    /// The head after the changeset, if it appends blocks.
    pub fn new_head(&self) -> Option<&BlockHeader> {
        self.blocks.last().map(|b| &b.block.header)
    }

    /// The height the finalized tip moves to, if it moves.
    pub fn finalize_number(&self) -> Option<BlockNumber> {
        self.finalize.map(|h| h.number)
    }

    /// Users whose balances the new blocks touch.
    pub fn new_users(&self) -> BTreeSet<UserId> {
        self.blocks
            .iter()
            .flat_map(|b| b.balances.iter().map(|(k, _)| k.user))
            .collect()
    }

    /// Assets the new blocks carry accepted prices or rates for.
    pub fn new_price_assets(&self) -> BTreeSet<AssetId> {
        self.blocks
            .iter()
            .flat_map(|b| {
                let rates = b.rates.iter().map(|r| r.asset);
                b.prices.iter().map(|p| p.asset).chain(rates)
            })
            .collect()
    }

    /// Assets the new blocks rebase: every holder's balance may have changed, like after a
    /// price change.
    pub fn new_rebased_assets(&self) -> BTreeSet<AssetId> {
        self.blocks
            .iter()
            .flat_map(|b| b.indexes.iter().filter(|i| i.rebased).map(|i| i.asset))
            .collect()
    }

    /// Assets whose state (quarantine or resume) the new blocks change.
    pub fn new_state_assets(&self) -> BTreeSet<AssetId> {
        self.blocks
            .iter()
            .flat_map(|b| b.asset_states.iter().map(|(a, _)| *a))
            .collect()
    }

    /// Number of balance events in the new blocks.
    pub fn event_count(&self) -> usize {
        self.blocks.iter().map(|b| b.block.events.len()).sum()
    }
}
