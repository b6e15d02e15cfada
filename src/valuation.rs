//! Valuation: `balance / 10^token_decimals × price / 10^feed_decimals × factor_bps / 10_000`.
//!
//! Exact with `rust_decimal` up to its 28 significant digits. Rounding rules:
//! - a token with more than 28 decimals has its balance truncated to 28 decimal places;
//! - products are computed by `rust_decimal`, which rounds half to even only when the exact
//!   product needs more than 28 decimal places or more than its 96-bit mantissa (about 28
//!   significant digits); each per-asset value is then rounded to [`VALUE_DECIMALS`]
//!   places, half to even;
//! - totals are exact sums of the rounded per-asset values.
//!
//! In practice: a per-asset value keeps all [`VALUE_DECIMALS`] places while it is below
//! about 7.9 × 10^10 (a $3 trillion position keeps 16 places), and when token decimals +
//! feed decimals + 4 exceed 28 (an 18-decimal token with an 8-decimal feed) the product is
//! rounded at 28 places first, so the last kept place can be off by one unit (double
//! rounding: at most 10^-18 of a unit of account).
//!
//! A value whose integer part does not fit a `Decimal` (about 7.9 × 10^28) is a
//! [`ValuationError::Overflow`], never a wrap or a clamp.

use std::sync::Arc;

use alloy_primitives::U256;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::ValuationError;
use crate::model::{
    Asset, AssetId, AssetRegistry, AssetValuation, BalanceView, BlockNumber, Collateral, Price,
    PriceStatus, PriceView, UserId, Valuation,
};

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

    /// `balance × price × factor` of one asset, rounded to [`VALUE_DECIMALS`] places.
    pub fn value(
        &self,
        user: UserId,
        asset: &Asset,
        balance: U256,
        price: &Price,
    ) -> Result<Decimal, ValuationError> {
        let overflow = || ValuationError::Overflow {
            user,
            asset: asset.id,
            balance,
            answer: price.answer,
            decimals: price.decimals,
        };
        let tokens = token_amount(balance, asset.decimals).ok_or_else(overflow)?;
        let px = price.to_decimal().ok_or_else(overflow)?;
        let factor = Decimal::new(i64::from(asset.collateral_factor_bps), 4);
        let value = tokens
            .checked_mul(px)
            .and_then(|v| v.checked_mul(factor))
            .ok_or_else(overflow)?;
        Ok(value.round_dp_with_strategy(VALUE_DECIMALS, RoundingStrategy::MidpointNearestEven))
    }

    /// A user's collateral from their balances (`(asset, view)` pairs) and the matching
    /// prices (same order), at time `now` (seconds; the head block's timestamp).
    /// Zero balances contribute nothing and are left out of the breakdown.
    pub fn collateral(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
        balances: &[(AssetId, BalanceView)],
        prices: &[PriceView],
    ) -> Result<Collateral, ValuationError> {
        let mut confirmed = Valuation::default();
        let mut pending = Valuation::default();
        for ((asset_id, view), price) in balances.iter().zip(prices) {
            let asset = self
                .assets
                .get(asset_id)
                .ok_or(ValuationError::UnknownAsset {
                    user,
                    asset: *asset_id,
                })?;
            self.add(
                &mut confirmed,
                user,
                asset,
                view.confirmed,
                price.confirmed,
                now,
            )?;
            self.add(&mut pending, user, asset, view.pending, price.pending, now)?;
        }
        Ok(Collateral {
            user,
            block,
            confirmed,
            pending,
        })
    }

    fn add(
        &self,
        side: &mut Valuation,
        user: UserId,
        asset: &Asset,
        balance: U256,
        price: Option<Price>,
        now: u64,
    ) -> Result<(), ValuationError> {
        if balance.is_zero() {
            return Ok(());
        }
        let (value, status) = match &price {
            None => (None, PriceStatus::Missing),
            Some(p) => {
                let value = self.value(user, asset, balance, p)?;
                let age = now.saturating_sub(p.updated_at);
                let status = if age > self.max_price_age {
                    PriceStatus::Stale { age }
                } else {
                    PriceStatus::Fresh
                };
                (Some(value), status)
            }
        };
        if let Some(v) = value {
            side.total = side.total.checked_add(v).ok_or(ValuationError::Overflow {
                user,
                asset: asset.id,
                balance,
                answer: price.map(|p| p.answer).unwrap_or_default(),
                decimals: price.map(|p| p.decimals).unwrap_or_default(),
            })?;
        }
        side.assets.push(AssetValuation {
            asset: asset.id,
            balance,
            price,
            value,
            status,
        });
        Ok(())
    }
}

/// `raw / 10^decimals` as a `Decimal`, or `None` if the whole part does not fit.
fn token_amount(raw: U256, decimals: u8) -> Option<Decimal> {
    let unit = U256::from(10u8).checked_pow(U256::from(decimals))?;
    let (whole, frac) = raw.div_rem(unit);
    let whole = Decimal::try_from_i128_with_scale(i128::try_from(whole).ok()?, 0).ok()?;
    let max_scale = 28u32;
    let (frac, scale) = if u32::from(decimals) > max_scale {
        let cut = U256::from(10u8).pow(U256::from(u32::from(decimals) - max_scale));
        (frac / cut, max_scale)
    } else {
        (frac, u32::from(decimals))
    };
    let frac = Decimal::try_from_i128_with_scale(i128::try_from(frac).ok()?, scale).ok()?;
    whole.checked_add(frac)
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
mod tests {
    use alloy_primitives::Address;

    use super::*;

    fn price(answer: u64, decimals: u8, updated_at: u64) -> Price {
        Price {
            asset: Address::repeat_byte(1),
            answer: U256::from(answer),
            decimals,
            round_id: U256::from(1),
            updated_at,
            block: 1,
        }
    }

    fn valuator(decimals: u8, bps: u16) -> (Valuator, Asset) {
        let asset = Asset::new(Address::repeat_byte(1), "TKN", decimals, bps);
        let reg = AssetRegistry::new([asset.clone()]).unwrap();
        (Valuator::new(Arc::new(reg), 3600), asset)
    }

    #[test]
    fn values_usdc_at_one_dollar_with_80_percent_factor() {
        let (v, asset) = valuator(6, 8_000);
        // 1,234.567891 USDC at $1.00000000 (8 feed decimals), factor 80 %.
        let value = v
            .value(
                Address::ZERO,
                &asset,
                U256::from(1_234_567_891u64),
                &price(100_000_000, 8, 0),
            )
            .unwrap();
        assert_eq!(value, "987.6543128".parse::<Decimal>().unwrap());
    }

    #[test]
    fn values_eighteen_decimal_tokens_exactly() {
        let (v, asset) = valuator(18, 10_000);
        // 2.5 ETH at $3,000.12345678.
        let raw = U256::from(25u64) * U256::from(10u64).pow(U256::from(17u64));
        let value = v
            .value(Address::ZERO, &asset, raw, &price(300_012_345_678, 8, 0))
            .unwrap();
        assert_eq!(value, "7500.30864195".parse::<Decimal>().unwrap());
    }

    #[test]
    fn huge_balance_is_a_typed_overflow() {
        let (v, asset) = valuator(0, 10_000);
        let err = v
            .value(Address::ZERO, &asset, U256::MAX, &price(1, 0, 0))
            .unwrap_err();
        assert!(matches!(err, ValuationError::Overflow { balance, .. } if balance == U256::MAX));
    }

    #[test]
    fn missing_and_stale_prices_are_reported() {
        let (v, asset) = valuator(0, 10_000);
        let balances = [(
            asset.id,
            BalanceView {
                confirmed: U256::from(5),
                pending: U256::from(7),
            },
        )];
        let prices = [PriceView {
            confirmed: None,
            pending: Some(price(2, 0, 100)),
        }];
        let c = v
            .collateral(Address::ZERO, 9, 100 + 3601, &balances, &prices)
            .unwrap();
        assert_eq!(c.confirmed.total, Decimal::ZERO);
        assert_eq!(
            c.confirmed.missing_prices().collect::<Vec<_>>(),
            vec![asset.id]
        );
        assert_eq!(c.pending.total, Decimal::from(14));
        assert_eq!(c.pending.stale_prices().collect::<Vec<_>>(), vec![asset.id]);
        assert!(!c.pending.is_complete());
    }

    #[test]
    fn health_factor_and_margin() {
        assert_eq!(
            health_factor(Decimal::from(150), Decimal::from(100)),
            Some(Decimal::new(15, 1))
        );
        assert_eq!(health_factor(Decimal::from(150), Decimal::ZERO), None);
        assert_eq!(
            available_margin(Decimal::from(150), Decimal::from(200)),
            Decimal::from(-50)
        );
    }

    #[test]
    fn values_round_half_to_even_at_value_decimals() {
        let (v, asset) = valuator(18, 10_000);
        // 1 wei of an 18-decimal token at $1.5 / $2.5 / $3.5: exact values 1.5e-18, 2.5e-18,
        // 3.5e-18 sit exactly half-way between two kept places.
        let value = |answer| {
            v.value(Address::ZERO, &asset, U256::from(1), &price(answer, 1, 0))
                .unwrap()
        };
        assert_eq!(value(15), Decimal::new(2, 18));
        assert_eq!(value(25), Decimal::new(2, 18));
        assert_eq!(value(35), Decimal::new(4, 18));
    }

    #[test]
    fn balances_beyond_28_decimals_are_truncated() {
        // 199 raw units of a 30-decimal token = 1.99e-28, truncated (not rounded) to 1e-28.
        assert_eq!(token_amount(U256::from(199), 30), Some(Decimal::new(1, 28)));
        // The whole part is kept exactly.
        let raw = U256::from(10u64).pow(U256::from(30)) * U256::from(7) + U256::from(199);
        assert_eq!(
            token_amount(raw, 30),
            Some("7.0000000000000000000000000001".parse().unwrap())
        );
    }

    #[test]
    fn large_positions_keep_28_significant_digits() {
        let (v, asset) = valuator(18, 10_000);
        // 1,000,000,000 tokens + 123 wei at $3,000.12345678: the exact value is
        // 3,000,123,456,780.00000000000036901518518394; a $3 trillion value keeps 16
        // decimal places (rounded half to even), not 18.
        let raw = U256::from(10u64).pow(U256::from(27)) + U256::from(123);
        let value = v
            .value(Address::ZERO, &asset, raw, &price(300_012_345_678, 8, 0))
            .unwrap();
        assert_eq!(value, "3000123456780.000000000000369".parse().unwrap());
    }

    #[test]
    fn factor_is_in_basis_points() {
        // 1 bps of 10,000 tokens at $1 is $1; 0 bps is worth nothing.
        for (bps, expected) in [(1, Decimal::ONE), (0, Decimal::ZERO)] {
            let (v, asset) = valuator(0, bps);
            let value = v
                .value(Address::ZERO, &asset, U256::from(10_000), &price(1, 0, 0))
                .unwrap();
            assert_eq!(value, expected, "{bps} bps");
        }
    }

    #[test]
    fn stale_means_older_than_max_age_and_zero_balances_are_left_out() {
        let (v, asset) = valuator(0, 10_000);
        let other = Address::repeat_byte(2);
        let (fresh_at, stale_at) = (100 + 3600, 100 + 3601);
        let balances = [(
            asset.id,
            BalanceView {
                confirmed: U256::from(5),
                pending: U256::ZERO,
            },
        )];
        let prices = [PriceView {
            confirmed: Some(price(2, 0, 100)),
            pending: Some(price(2, 0, 100)),
        }];
        let at = |now| {
            v.collateral(Address::ZERO, 9, now, &balances, &prices)
                .unwrap()
        };
        let c = at(fresh_at);
        assert_eq!(c.confirmed.total, Decimal::from(10));
        assert_eq!(
            c.confirmed.assets[0].status,
            PriceStatus::Fresh,
            "age == max age"
        );
        assert!(c.confirmed.is_complete());
        assert!(c.pending.assets.is_empty(), "zero balance left out");
        assert_eq!(c.pending.total, Decimal::ZERO);
        assert_eq!(
            at(stale_at).confirmed.assets[0].status,
            PriceStatus::Stale { age: 3601 }
        );

        let unknown = [(other, balances[0].1)];
        assert!(matches!(
            v.collateral(Address::ZERO, 9, fresh_at, &unknown, &prices),
            Err(ValuationError::UnknownAsset { asset, .. }) if asset == other
        ));
    }

    #[test]
    fn health_factor_below_one_is_liquidatable_and_negative_debt_is_none() {
        let hf = health_factor(Decimal::from(90), Decimal::from(100)).unwrap();
        assert_eq!(hf, Decimal::new(9, 1));
        assert!(hf < Decimal::ONE);
        assert_eq!(health_factor(Decimal::from(90), Decimal::from(-1)), None);
        assert_eq!(
            health_factor(Decimal::ONE, Decimal::from(3)),
            Some("0.3333333333333333333333333333".parse().unwrap()),
            "rounded to 28 places"
        );
        assert_eq!(
            available_margin(Decimal::new(12345, 2), Decimal::new(2345, 2)),
            Decimal::from(100)
        );
    }
}
