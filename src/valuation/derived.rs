//! Values of assets priced through a vault rate ([`PriceSource::Derived`]): ERC-4626
//! shares are first converted to underlying units, `shares × rate / 10^share_decimals`
//! (floor, exact in 512 bits, as the vault's own `convertToAssets` rounds down), then
//! valued like an underlying balance: `units × answer × factor_bps /
//! 10^(underlying_decimals + feed_decimals + 4)`, rounded once as every value is.

use alloy_primitives::{I256, U256, U512};
use rust_decimal::Decimal;

use super::{VALUE_DECIMALS, Valuator, exact};
use crate::error::ValuationError;
use crate::model::{Asset, PriceSource, UserId};
use crate::model::{Price, RateUpdate};

/// Underlying units of `shares` at `rate` (underlying units per `10^share_decimals`
/// shares), rounded down; `None` if they exceed `U256`.
pub fn shares_to_units(shares: U256, rate: U256, share_decimals: u8) -> Option<U256> {
    let scale = exact::pow10(u32::from(share_decimals))?;
    let units = U512::from(shares) * U512::from(rate) / scale;
    (units <= U512::from(U256::MAX)).then(|| U256::from_limbs_slice(&units.as_limbs()[..4]))
}

impl Valuator {
    /// The value of `shares` of the derived asset `asset` (its source must be
    /// [`PriceSource::Derived`]) at `rate` and the underlying's `price`: the shares'
    /// underlying units ([`shares_to_units`]) × price × `asset`'s factor, exact and
    /// rounded once at [`VALUE_DECIMALS`] places like [`value`](Self::value).
    ///
    /// [`ValuationError::UnknownAsset`] if `asset` is not derived in this registry or its
    /// underlying is not registered; otherwise the errors of [`value`](Self::value).
    pub fn value_derived(
        &self,
        user: UserId,
        asset: &Asset,
        shares: U256,
        rate: &RateUpdate,
        price: &Price,
    ) -> Result<Decimal, ValuationError> {
        let PriceSource::Derived { underlying } = self.assets().price_source(&asset.id) else {
            return Err(ValuationError::UnknownAsset {
                user,
                asset: asset.id,
            });
        };
        let underlying = self
            .assets()
            .get(&underlying)
            .ok_or(ValuationError::UnknownAsset {
                user,
                asset: underlying,
            })?;
        if price.answer <= I256::ZERO {
            return Err(ValuationError::NonPositiveAnswer {
                user,
                asset: asset.id,
                answer: price.answer,
            });
        }
        let overflow = ValuationError::Overflow {
            user,
            asset: asset.id,
            balance: shares,
            answer: price.answer,
            decimals: price.decimals,
        };
        let units = shares_to_units(shares, rate.rate, asset.decimals).ok_or(overflow.clone())?;
        let exponent = u32::from(underlying.decimals) + u32::from(price.decimals) + 4;
        exact::numerator(units, price.answer.into_raw(), asset.collateral_factor_bps)
            .and_then(|n| exact::to_decimal(n, exponent, VALUE_DECIMALS))
            .ok_or(overflow)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use alloy_primitives::Address;

    use super::*;
    use crate::model::AssetRegistry;

    #[test]
    fn shares_convert_with_floor_then_value_like_the_underlying() {
        let (usdc, vault) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let reg = AssetRegistry::new([
            Asset::new(usdc, "USDC", 6, 10_000),
            Asset::new(vault, "vUSDC", 8, 5_000),
        ])
        .unwrap()
        .with_price_source(vault, PriceSource::Derived { underlying: usdc })
        .unwrap();
        let v = Valuator::new(Arc::new(reg), u64::MAX);
        // 1 share (1e8 units) = 1.05 USDC: 3 units of a share are 31.5e-3 → 0 USDC units.
        assert_eq!(
            shares_to_units(U256::from(3), U256::from(1_050_000), 8),
            Some(U256::ZERO)
        );
        assert_eq!(
            shares_to_units(U256::from(150_000_000u64), U256::from(1_050_000), 8),
            Some(U256::from(1_575_000))
        );
        let rate = RateUpdate {
            asset: vault,
            rate: U256::from(1_050_000),
            block: 1,
        };
        let price = Price {
            asset: usdc,
            answer: I256::try_from(99_990_000).unwrap(),
            decimals: 8,
            round_id: U256::from(1),
            updated_at: 0,
            block: 1,
        };
        let vault_asset = v.assets().get(&vault).unwrap().clone();
        let value = v
            .value_derived(
                Address::ZERO,
                &vault_asset,
                U256::from(150_000_000u64),
                &rate,
                &price,
            )
            .unwrap();
        // 1.575 USDC × 0.9999 × 50 %.
        assert_eq!(value, Decimal::from_str("0.787421250000000000").unwrap());
        let usdc_asset = v.assets().get(&usdc).unwrap().clone();
        assert!(matches!(
            v.value_derived(Address::ZERO, &usdc_asset, U256::ONE, &rate, &price),
            Err(ValuationError::UnknownAsset { .. })
        ));
        assert_eq!(shares_to_units(U256::MAX, U256::MAX, 0), None);
    }
}
