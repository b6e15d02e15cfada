use std::collections::BTreeMap;

use alloy_primitives::{B256, U256};
use rust_decimal::Decimal;

use super::{AssetId, BlockNumber, BlockRef, LogId, Price, StateRef, UserId};

/// A user's balance of one asset, confirmed and pending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BalanceView {
    /// Fold of canonical blocks up to the finalized height.
    pub confirmed: U256,
    /// Fold of all canonical blocks, including unconfirmed ones.
    pub pending: U256,
}

/// Whether a usable price backed a valuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PriceStatus {
    /// The price is younger than the configured maximum age.
    Fresh,
    /// The price is older than the configured maximum age, or stamped further than that
    /// ahead of the valuation time (a feed's clock or a hostile `updatedAt`); it is still
    /// used, and flagged.
    Stale {
        /// Seconds between the price's `updated_at` and the valuation time (either way).
        age: u64,
    },
    /// No price is known; the asset contributes nothing to the total and is flagged.
    Missing,
    /// A price is known but the value cannot be held by a `Decimal` (its integer part, or
    /// the total with it, exceeds about 7.9 × 10^28), or the answer is not positive; the
    /// asset contributes nothing to the total and is flagged, like a missing price.
    Unrepresentable,
    /// The asset is quarantined on this side (a log of it could not be applied, see
    /// [`Quarantine`](super::Quarantine)): its balance is unreliable, it contributes nothing
    /// to the total and is flagged, like a missing price.
    Quarantined {
        /// The block of the faulting log.
        block: BlockRef,
        /// The faulting log.
        log: LogId,
    },
}

/// One asset's contribution to a user's collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AssetValuation {
    /// The asset.
    pub asset: AssetId,
    /// The raw balance (token's smallest unit).
    pub balance: U256,
    /// The price used, if any.
    pub price: Option<Price>,
    /// `balance × price × factor`, or `None` when the price is missing or the value is
    /// unrepresentable.
    pub value: Option<Decimal>,
    /// Whether the price was fresh, stale or missing, or the value unrepresentable.
    pub status: PriceStatus,
    /// The vault rate used, for an asset priced through one
    /// ([`PriceSource::Derived`](super::PriceSource::Derived)); `None` otherwise. `price`
    /// is then the underlying's price.
    pub rate: Option<super::RateUpdate>,
}

/// A user's collateral on one side (confirmed or pending).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Valuation {
    /// Σ `value` over assets with a value.
    pub total: Decimal,
    /// Per-asset breakdown, ordered by asset.
    pub assets: Vec<AssetValuation>,
}

impl Valuation {
    /// Assets that have a balance but no price.
    pub fn missing_prices(&self) -> impl Iterator<Item = AssetId> + '_ {
        self.assets
            .iter()
            .filter(|a| a.status == PriceStatus::Missing)
            .map(|a| a.asset)
    }

    /// Assets valued with a price older than the maximum age.
    pub fn stale_prices(&self) -> impl Iterator<Item = AssetId> + '_ {
        self.assets
            .iter()
            .filter(|a| matches!(a.status, PriceStatus::Stale { .. }))
            .map(|a| a.asset)
    }

    /// Assets with a price whose value cannot be represented (see
    /// [`PriceStatus::Unrepresentable`]).
    pub fn unrepresentable(&self) -> impl Iterator<Item = AssetId> + '_ {
        self.assets
            .iter()
            .filter(|a| a.status == PriceStatus::Unrepresentable)
            .map(|a| a.asset)
    }

    /// Assets quarantined on this side (see [`PriceStatus::Quarantined`]).
    pub fn quarantined(&self) -> impl Iterator<Item = AssetId> + '_ {
        self.assets
            .iter()
            .filter(|a| matches!(a.status, PriceStatus::Quarantined { .. }))
            .map(|a| a.asset)
    }

    /// Whether every asset was valued with a fresh price (a quarantined asset makes it
    /// incomplete).
    pub fn is_complete(&self) -> bool {
        self.assets.iter().all(|a| a.status == PriceStatus::Fresh)
    }
}

/// A user's collateral: `Σ balance × price × collateral_factor`, confirmed and pending apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Collateral {
    /// The user.
    pub user: UserId,
    /// Head block the valuation reflects.
    pub block: BlockNumber,
    /// Confirmed balances × confirmed prices.
    pub confirmed: Valuation,
    /// Pending balances × pending prices.
    pub pending: Valuation,
}

/// Which sides of a [`CachedAsset`] have no value because it cannot be represented
/// ([`PriceStatus::Unrepresentable`]) rather than because the price is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Unrepresentable {
    /// The confirmed value is unrepresentable.
    pub confirmed: bool,
    /// The pending value is unrepresentable.
    pub pending: bool,
}

/// On which sides of a [`CachedAsset`] the asset is quarantined
/// ([`PriceStatus::Quarantined`]): the block of the faulting log, or `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuarantinedSides {
    /// The confirmed side is quarantined since this block.
    pub confirmed: Option<BlockNumber>,
    /// The pending side is quarantined since this block.
    pub pending: Option<BlockNumber>,
}

/// The cached form of one asset's value for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CachedAsset {
    /// Confirmed `balance × price × factor`; `None` when the price is missing or the value
    /// is unrepresentable (then `unrepresentable.confirmed`).
    pub confirmed: Option<Decimal>,
    /// Pending `balance × price × factor`; `None` when the price is missing or the value is
    /// unrepresentable (then `unrepresentable.pending`).
    pub pending: Option<Decimal>,
    /// Which `None` sides are unrepresentable values, not missing prices.
    pub unrepresentable: Unrepresentable,
    /// Which `None` sides are quarantined assets (and since which block), not missing
    /// prices.
    pub quarantined: QuarantinedSides,
}

/// What a [`CollateralCache`](crate::CollateralCache) holds per user:
/// `{asset: balance × price × factor}` plus both totals, stamped with the state of the
/// store it was valued from (head block, its hash, finalized height).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CachedCollateral {
    /// The user.
    pub user: UserId,
    /// Head block the entry reflects.
    pub block: BlockNumber,
    /// Hash of the head block the entry reflects.
    pub hash: B256,
    /// Finalized height of the state the entry reflects: its confirmed side is the fold up
    /// to this height.
    pub finalized: Option<BlockNumber>,
    /// Confirmed total.
    pub confirmed: Decimal,
    /// Pending total.
    pub pending: Decimal,
    /// Per-asset values.
    pub assets: BTreeMap<AssetId, CachedAsset>,
    /// Whether every price behind the entry was present and fresh and every value
    /// representable.
    pub complete: bool,
}

impl CachedCollateral {
    /// The entry of `c`, valued from the store's `state` (whose head is `c.block`; `None`
    /// for a store without blocks: zero hash, nothing finalized).
    pub fn new(c: &Collateral, state: Option<&StateRef>) -> Self {
        let mut assets: BTreeMap<AssetId, CachedAsset> = BTreeMap::new();
        let empty = CachedAsset {
            confirmed: None,
            pending: None,
            unrepresentable: Unrepresentable::default(),
            quarantined: QuarantinedSides::default(),
        };
        let unrepresentable = |a: &AssetValuation| a.status == PriceStatus::Unrepresentable;
        let quarantined = |a: &AssetValuation| match a.status {
            PriceStatus::Quarantined { block, .. } => Some(block.number),
            _ => None,
        };
        for a in &c.confirmed.assets {
            let entry = assets.entry(a.asset).or_insert(empty);
            entry.confirmed = a.value;
            entry.unrepresentable.confirmed = unrepresentable(a);
            entry.quarantined.confirmed = quarantined(a);
        }
        for a in &c.pending.assets {
            let entry = assets.entry(a.asset).or_insert(empty);
            entry.pending = a.value;
            entry.unrepresentable.pending = unrepresentable(a);
            entry.quarantined.pending = quarantined(a);
        }
        Self {
            user: c.user,
            block: c.block,
            hash: state.map_or(B256::ZERO, |s| s.head.hash),
            finalized: state.and_then(|s| s.finalized),
            confirmed: c.confirmed.total,
            pending: c.pending.total,
            assets,
            complete: c.confirmed.is_complete() && c.pending.is_complete(),
        }
    }

    /// The state the entry names.
    pub fn state(&self) -> StateRef {
        StateRef {
            head: super::BlockRef {
                number: self.block,
                hash: self.hash,
            },
            finalized: self.finalized,
        }
    }
}
