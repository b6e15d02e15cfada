//! Valuation: `balance / 10^token_decimals × price / 10^feed_decimals × factor_bps / 10_000`.
//!
//! Exact, with one rounding:
//! - each per-asset value is the exact ratio `raw × answer × factor_bps /
//!   10^(token_decimals + feed_decimals + 4)` computed with 512-bit integers, rounded
//!   **once**, half to even, at [`VALUE_DECIMALS`] places, then held in a `Decimal`. A value
//!   of `10^10` units of account or more has more significant digits than a `Decimal`'s
//!   96-bit mantissa holds (about 28); it is rounded once, half to even, at the most places
//!   that fit instead (a $3 trillion position keeps 16), never rounded twice;
//! - a total is the exact sum of its rounded per-asset values while that sum has at most 28
//!   significant digits (always, below about 7.9 × 10^10); above that it is that exact sum
//!   rounded once, half to even, at the most places that fit.
//!
//! A value that cannot be held at all (its integer part exceeds a `Decimal`, about 7.9 ×
//! 10^28, or a total would) is never wrapped, clamped or an error for the whole user: that
//! asset is reported [`PriceStatus::Unrepresentable`] with no value, contributes nothing to
//! the total, and the valuation is not complete. [`Valuator::value`] reports it as a
//! [`ValuationError::Overflow`].

use std::sync::Arc;

use alloy_primitives::{I256, U256, U512};
use rust_decimal::Decimal;

use crate::error::ValuationError;
use crate::model::{
    Asset, AssetId, AssetRegistry, AssetState, AssetStateView, AssetValuation, BalanceView,
    BlockNumber, Collateral, Price, PriceStatus, PriceView, Quarantine, RateUpdate, RateView,
    UserId, Valuation,
};

mod arithmetic;
mod derived;
mod exact;
mod sum;

pub use arithmetic::{Arithmetic, Rounding};
pub use derived::shares_to_units;
pub use sum::ExactSum;

/// Decimal places kept in each per-asset value.
pub const VALUE_DECIMALS: u32 = 18;

/// Computes collateral from balances and prices. Pure; cheap to clone.
#[derive(Clone, Debug)]
pub struct Valuator {
    assets: Arc<AssetRegistry>,
    max_price_age: u64,
}

impl Valuator {
    /// A valuator for `assets`, flagging prices older than `max_price_age` seconds as stale.
    pub fn new(assets: Arc<AssetRegistry>, max_price_age: u64) -> Self {
        Self {
            assets,
            max_price_age,
        }
    }

    /// The tracked assets.
    pub fn assets(&self) -> &AssetRegistry {
        &self.assets
    }

    /// `balance × price × factor` of one asset, exact and rounded once, half to even, at
    /// [`VALUE_DECIMALS`] places (fewer above `10^10`, see the [module](self) docs).
    ///
    /// A non-positive answer is [`ValuationError::NonPositiveAnswer`]; a value that does not
    /// fit a `Decimal` is [`ValuationError::Overflow`].
    pub fn value(
        &self,
        user: UserId,
        asset: &Asset,
        balance: U256,
        price: &Price,
    ) -> Result<Decimal, ValuationError> {
        if price.answer <= I256::ZERO {
            return Err(ValuationError::NonPositiveAnswer {
                user,
                asset: asset.id,
                answer: price.answer,
            });
        }
        let exponent = u32::from(asset.decimals) + u32::from(price.decimals) + 4;
        exact::numerator(
            balance,
            price.answer.into_raw(),
            asset.collateral_factor_bps,
        )
        .and_then(|n| exact::to_decimal(n, exponent, VALUE_DECIMALS))
        .ok_or(ValuationError::Overflow {
            user,
            asset: asset.id,
            balance,
            answer: price.answer,
            decimals: price.decimals,
        })
    }

    /// A user's collateral from their balances (`(asset, view)` pairs) and the matching
    /// prices (same order), at time `now` (seconds; the head block's timestamp).
    /// Zero balances contribute nothing and are left out of the breakdown. With no rates,
    /// an asset priced through a vault rate is [`PriceStatus::Missing`]: see
    /// [`collateral_with_rates`](Self::collateral_with_rates).
    ///
    /// Total over values: an asset whose value cannot be represented (see the
    /// [module](self) docs) is flagged [`PriceStatus::Unrepresentable`] and the others are
    /// valued. The only error is an asset missing from the registry
    /// ([`ValuationError::UnknownAsset`]), a caller's mistake.
    pub fn collateral(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
        balances: &[(AssetId, BalanceView)],
        prices: &[PriceView],
    ) -> Result<Collateral, ValuationError> {
        self.collateral_full(user, block, now, balances, prices, &[], &[])
    }

    /// [`collateral`](Self::collateral) with the quarantined assets of `states`: on the
    /// side an asset is quarantined, it is flagged [`PriceStatus::Quarantined`] and
    /// contributes nothing to the total (like a missing price).
    pub fn collateral_with_states(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
        balances: &[(AssetId, BalanceView)],
        prices: &[PriceView],
        states: &[AssetStateView],
    ) -> Result<Collateral, ValuationError> {
        self.collateral_full(user, block, now, balances, prices, &[], states)
    }

    /// [`collateral`](Self::collateral) with vault rates: `prices[i]` is the price of the
    /// asset's price key ([`AssetRegistry::price_key`]: its own, its `SameAs` feed's, or its
    /// underlying's) and `rates[i]` its rate (read for assets priced
    /// [`PriceSource::Derived`](crate::model::PriceSource::Derived), ignored for the others;
    /// a missing entry is no rate). The confirmed side uses the confirmed price and rate,
    /// the pending side the pending ones.
    pub fn collateral_with_rates(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
        balances: &[(AssetId, BalanceView)],
        prices: &[PriceView],
        rates: &[RateView],
    ) -> Result<Collateral, ValuationError> {
        self.collateral_full(user, block, now, balances, prices, rates, &[])
    }

    /// [`collateral`](Self::collateral) with both vault rates (as in
    /// [`collateral_with_rates`](Self::collateral_with_rates)) and quarantined assets (as in
    /// [`collateral_with_states`](Self::collateral_with_states)): what the readers value with.
    #[allow(clippy::too_many_arguments)]
    pub fn collateral_full(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
        balances: &[(AssetId, BalanceView)],
        prices: &[PriceView],
        rates: &[RateView],
        states: &[AssetStateView],
    ) -> Result<Collateral, ValuationError> {
        let mut confirmed = Side::default();
        let mut pending = Side::default();
        for (i, ((asset_id, view), price)) in balances.iter().zip(prices).enumerate() {
            let asset = self
                .assets
                .get(asset_id)
                .ok_or(ValuationError::UnknownAsset {
                    user,
                    asset: *asset_id,
                })?;
            let rate = rates.get(i).copied().unwrap_or_default();
            let state = states.iter().find(|s| s.asset == *asset_id);
            let quarantine =
                |side: fn(&AssetStateView) -> &AssetState| state.and_then(|s| side(s).quarantine());
            if !quarantined(
                &mut confirmed,
                asset,
                view.confirmed,
                price.confirmed,
                quarantine(|s| &s.confirmed),
            ) {
                let c = (price.confirmed, rate.confirmed);
                self.add(&mut confirmed, user, asset, view.confirmed, c, now);
            }
            if !quarantined(
                &mut pending,
                asset,
                view.pending,
                price.pending,
                quarantine(|s| &s.pending),
            ) {
                let p = (price.pending, rate.pending);
                self.add(&mut pending, user, asset, view.pending, p, now);
            }
        }
        Ok(Collateral {
            user,
            block,
            confirmed: confirmed.finish(),
            pending: pending.finish(),
        })
    }

    fn add(
        &self,
        side: &mut Side,
        user: UserId,
        asset: &Asset,
        balance: U256,
        (price, rate): (Option<Price>, Option<RateUpdate>),
        now: u64,
    ) {
        if balance.is_zero() {
            return;
        }
        let derived = self.assets.is_derived(&asset.id);
        let rate = rate.filter(|_| derived);
        let (value, status) = match (&price, derived, &rate) {
            (None, _, _) | (_, true, None) => (None, PriceStatus::Missing),
            (Some(p), _, _) => match rate
                .as_ref()
                .map_or_else(
                    || self.value(user, asset, balance, p),
                    |r| self.value_derived(user, asset, balance, r, p),
                )
                .ok()
                .filter(|v| side.try_add(*v))
            {
                None => (None, PriceStatus::Unrepresentable),
                Some(value) => {
                    // The distance either way: a price stamped in the future (a broken
                    // or hostile feed) is fresh only within the maximum age of now, not
                    // forever.
                    let age = now.abs_diff(p.updated_at);
                    let status = if age > self.max_price_age {
                        PriceStatus::Stale { age }
                    } else {
                        PriceStatus::Fresh
                    };
                    (Some(value), status)
                }
            },
        };
        side.valuation.assets.push(AssetValuation {
            asset: asset.id,
            balance,
            price,
            value,
            status,
            rate,
        });
    }
}

/// Pushes a quarantined asset's entry (no value, nothing added to the sum) and says so;
/// `false` if it is not quarantined on this side.
fn quarantined(
    side: &mut Side,
    asset: &Asset,
    balance: U256,
    price: Option<Price>,
    quarantine: Option<&Quarantine>,
) -> bool {
    let Some(q) = quarantine else { return false };
    if !balance.is_zero() {
        side.valuation.assets.push(AssetValuation {
            asset: asset.id,
            balance,
            price,
            value: None,
            status: PriceStatus::Quarantined {
                block: q.block,
                log: q.log,
            },
            rate: None,
        });
    }
    true
}

/// One side of a valuation being built: the breakdown and the exact sum of its values,
/// scaled by `10^VALUE_DECIMALS`.
#[derive(Default)]
struct Side {
    valuation: Valuation,
    sum: U512,
}

impl Side {
    /// The largest sum whose total fits a `Decimal` with no places: `(2^96 - 1) × 10^18`.
    fn limit() -> U512 {
        U512::from((1u128 << 96) - 1) * U512::from(10u64.pow(VALUE_DECIMALS))
    }

    /// Adds `value` to the sum if the total stays representable; `false` (and nothing
    /// added) otherwise.
    fn try_add(&mut self, value: Decimal) -> bool {
        let sum = exact::to_scaled(value, VALUE_DECIMALS).and_then(|v| self.sum.checked_add(v));
        match sum {
            Some(sum) if sum <= Self::limit() => {
                self.sum = sum;
                true
            }
            _ => false,
        }
    }

    fn finish(mut self) -> Valuation {
        // The sum is at most `limit()`, so its total always fits.
        self.valuation.total =
            exact::to_decimal(self.sum, VALUE_DECIMALS, VALUE_DECIMALS).unwrap_or_default();
        self.valuation
    }
}

/// Aave-style health factor: `collateral_after_factors / debt`; `None` when there is no debt
/// (`debt <= 0`) or the quotient does not fit a `Decimal`. Below `1` a position is
/// liquidatable. Pass the collateral `total` of a [`Valuation`] (factors already applied,
/// like Aave's liquidation threshold) and the debt in the same unit of account; the
/// quotient is rounded by `rust_decimal` to at most 28 decimal places.
pub fn health_factor(collateral: Decimal, debt: Decimal) -> Option<Decimal> {
    if debt <= Decimal::ZERO {
        return None;
    }
    collateral.checked_div(debt)
}

/// Margin still available for new exposure: `collateral_after_factors - debt` (negative
/// when under-collateralized). Exact.
///
/// # Panics
///
/// If the difference exceeds the `Decimal` range (about 7.9 × 10^28), which takes a
/// negative `debt` of that order; a non-negative debt never panics.
pub fn available_margin(collateral: Decimal, debt: Decimal) -> Decimal {
    collateral - debt
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
