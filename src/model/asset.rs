use std::collections::HashMap;

use super::{AssetId, FaultPolicy};

/// Collateral factors are in basis points: `10_000` means the full value counts.
pub const BPS_DENOMINATOR: u16 = 10_000;

/// A tracked asset: its token decimals and how much of its value counts as collateral.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The token contract address.
    pub id: AssetId,
    /// A display symbol, e.g. `USDC`.
    pub symbol: String,
    /// The token's decimals (`balance / 10^decimals` whole tokens).
    pub decimals: u8,
    /// Collateral factor in basis points (Aave-style liquidation threshold), `0..=10_000`.
    pub collateral_factor_bps: u16,
    /// What a log that cannot be applied does to this asset (default
    /// [`FaultPolicy::Quarantine`]: the asset alone stops, the rest goes on).
    pub policy: FaultPolicy,
}

impl Asset {
    /// A new asset. A `collateral_factor_bps` above [`BPS_DENOMINATOR`] is rejected by
    /// [`AssetRegistry::new`].
    pub fn new(
        id: AssetId,
        symbol: impl Into<String>,
        decimals: u8,
        collateral_factor_bps: u16,
    ) -> Self {
        Self {
            id,
            symbol: symbol.into(),
            decimals,
            collateral_factor_bps,
            policy: FaultPolicy::default(),
        }
    }

    /// The same asset with another [`FaultPolicy`].
    pub fn with_policy(mut self, policy: FaultPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// The set of assets the engine tracks. Events and prices of other assets are rejected.
#[derive(Clone, Debug, Default)]
pub struct AssetRegistry {
    assets: HashMap<AssetId, Asset>,
    /// Price sources other than [`PriceSource::Own`](super::PriceSource::Own), by asset
    /// (see `price_source.rs`).
    pub(super) sources: HashMap<AssetId, super::PriceSource>,
}

/// Why an asset could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The collateral factor exceeds 100 %.
    #[error("asset {symbol} ({id}): collateral factor {bps} bps exceeds {BPS_DENOMINATOR}")]
    FactorTooLarge {
        /// The asset.
        id: AssetId,
        /// Its symbol.
        symbol: String,
        /// The factor given.
        bps: u16,
    },
    /// The same asset was given twice.
    #[error("asset {id} registered twice")]
    Duplicate {
        /// The asset.
        id: AssetId,
    },
    /// A price source names an asset that is not registered (nothing was changed).
    #[error("asset {asset}: price source names {named}, which is not registered")]
    UnknownPriceSource {
        /// The asset whose source was set.
        asset: AssetId,
        /// The asset the source names.
        named: AssetId,
    },
    /// A price source names an asset whose own price is not its own feed's (`SameAs` of a
    /// `SameAs`, or of / under a derived asset): one level only (nothing was changed).
    #[error("asset {asset}: price source names {named}, whose price is itself derived or borrowed")]
    NestedPriceSource {
        /// The asset whose source was set (or whose source would become nested).
        asset: AssetId,
        /// The asset the source names.
        named: AssetId,
    },
}

impl AssetRegistry {
    /// Builds a registry, checking factors and uniqueness.
    pub fn new(assets: impl IntoIterator<Item = Asset>) -> Result<Self, AssetError> {
        let mut map = HashMap::new();
        for asset in assets {
            if asset.collateral_factor_bps > BPS_DENOMINATOR {
                return Err(AssetError::FactorTooLarge {
                    id: asset.id,
                    symbol: asset.symbol,
                    bps: asset.collateral_factor_bps,
                });
            }
            let id = asset.id;
            if map.insert(id, asset).is_some() {
                return Err(AssetError::Duplicate { id });
            }
        }
        Ok(Self {
            assets: map,
            sources: HashMap::new(),
        })
    }

    /// The asset with this id, if tracked.
    pub fn get(&self, id: &AssetId) -> Option<&Asset> {
        self.assets.get(id)
    }

    /// The fault policy of an asset ([`FaultPolicy::default`] for an untracked one).
    pub fn policy(&self, id: &AssetId) -> FaultPolicy {
        self.assets.get(id).map(|a| a.policy).unwrap_or_default()
    }

    /// Whether the asset is tracked.
    pub fn contains(&self, id: &AssetId) -> bool {
        self.assets.contains_key(id)
    }

    /// All tracked assets, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Asset> {
        self.assets.values()
    }

    /// Number of tracked assets.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// Whether no asset is tracked.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }
}
