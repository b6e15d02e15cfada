use alloy_primitives::U256;

use crate::model::{AssetId, AssetIndex, AssetState, BalanceKey, Price};

/// Balances, prices and indexes at a transition's base height, read from the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseState {
    /// Balance of each key the transition touches (absent means zero).
    pub balances: Vec<(BalanceKey, U256)>,
    /// Latest price of each asset the transition prices (absent means none).
    pub prices: Vec<(AssetId, Price)>,
    /// Index of each rebasing asset the transition's events name (absent means the asset
    /// is not rebasing, or not yet).
    pub indexes: Vec<(AssetId, AssetIndex)>,
    /// The state of each asset at the base height that is not
    /// [`AssetState::Active`] (absent means active): a quarantined asset's events are
    /// skipped until a resume.
    pub asset_states: Vec<(AssetId, AssetState)>,
}
