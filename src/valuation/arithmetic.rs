//! The arithmetic of one per-asset value, spelled out for
//! [`CollateralReader::explain`](crate::reader::CollateralReader::explain): the same exact
//! computation as [`Valuator::value`](super::Valuator::value), with its terms and its one
//! rounding kept.

use std::fmt;

use alloy_primitives::{I256, U256, U512};
use rust_decimal::Decimal;

use super::{VALUE_DECIMALS, Valuator, exact};
use crate::model::{Asset, Price};

/// Whether the one rounding of a value changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// The exact quotient has no more places than were kept: nothing was rounded.
    Exact,
    /// The exact quotient was rounded once, half to even, at `places` decimal places.
    HalfEven,
}

/// `units × answer × factor_bps / 10^(token_decimals + feed_decimals + 4)`, rounded once,
/// half to even, at `places` decimal places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arithmetic {
    /// The raw balance (token's smallest unit).
    pub units: U256,
    /// The token's decimals.
    pub token_decimals: u8,
    /// The oracle answer used.
    pub answer: I256,
    /// The feed's decimals.
    pub feed_decimals: u8,
    /// The collateral factor in basis points.
    pub factor_bps: u16,
    /// `units × answer × factor_bps`; `None` when the answer is not positive or the
    /// product exceeds 512 bits.
    pub numerator: Option<U512>,
    /// The denominator's power of ten: `token_decimals + feed_decimals + 4`.
    pub exponent: u32,
    /// Decimal places kept (at most [`VALUE_DECIMALS`], fewer for a value of `10^10` or
    /// more); `None` without a value.
    pub places: Option<u32>,
    /// The per-asset value; `None` when it cannot be represented (or the answer is not
    /// positive).
    pub value: Option<Decimal>,
    /// Whether the rounding changed the exact quotient.
    pub rounding: Rounding,
}

impl Valuator {
    /// The arithmetic of `balance × price × factor` for `asset`, as
    /// [`value`](Self::value) computes it.
    pub fn arithmetic(&self, asset: &Asset, balance: U256, price: &Price) -> Arithmetic {
        let exponent = u32::from(asset.decimals) + u32::from(price.decimals) + 4;
        let numerator = (price.answer > I256::ZERO)
            .then(|| {
                exact::numerator(
                    balance,
                    price.answer.into_raw(),
                    asset.collateral_factor_bps,
                )
            })
            .flatten();
        let value = numerator.and_then(|n| exact::to_decimal(n, exponent, VALUE_DECIMALS));
        let places = value.map(|v| v.scale());
        let rounding = match (numerator, places) {
            (Some(n), Some(p)) if p < exponent => match exact::pow10(exponent - p) {
                Some(d) if !(n % d).is_zero() => Rounding::HalfEven,
                None if !n.is_zero() => Rounding::HalfEven,
                _ => Rounding::Exact,
            },
            _ => Rounding::Exact,
        };
        Arithmetic {
            units: balance,
            token_decimals: asset.decimals,
            answer: price.answer,
            feed_decimals: price.decimals,
            factor_bps: asset.collateral_factor_bps,
            numerator,
            exponent,
            places,
            value,
            rounding,
        }
    }
}

impl fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / 10^{} × {} / 10^{} × {} bps / 10^4 = ",
            self.units, self.token_decimals, self.answer, self.feed_decimals, self.factor_bps
        )?;
        match self.numerator {
            Some(n) => write!(f, "{n} / 10^{}", self.exponent)?,
            None => write!(f, "(no numerator)")?,
        }
        match (self.value, self.places) {
            (Some(v), Some(p)) => {
                let how = match self.rounding {
                    Rounding::Exact => "exact".to_string(),
                    Rounding::HalfEven => format!("rounded half to even at {p} places"),
                };
                write!(f, " = {v} ({how})")
            }
            _ => write!(f, " = unrepresentable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alloy_primitives::Address;

    use super::*;
    use crate::model::AssetRegistry;

    fn price(answer: i64, decimals: u8) -> Price {
        Price {
            asset: Address::repeat_byte(1),
            answer: I256::try_from(answer).unwrap(),
            decimals,
            round_id: U256::from(1),
            updated_at: 0,
            block: 1,
        }
    }

    #[test]
    fn spells_out_the_value_and_its_rounding() {
        let asset = Asset::new(Address::repeat_byte(1), "USDC", 6, 9_000);
        let v = Valuator::new(Arc::new(AssetRegistry::new([asset.clone()]).unwrap()), 60);
        // 1.5 USDC × $1 × 90 % = 1.35, exact.
        let a = v.arithmetic(&asset, U256::from(1_500_000), &price(100_000_000, 8));
        assert_eq!(a.value, Some("1.35".parse().unwrap()));
        assert_eq!(a.rounding, Rounding::Exact);
        assert_eq!(
            a.value,
            Some(
                v.value(Address::ZERO, &asset, a.units, &price(100_000_000, 8))
                    .unwrap()
            )
        );
        // 1 unit × 1e-28 × 90 %: below 10^-18, rounded half to even to zero.
        let tiny = v.arithmetic(&asset, U256::from(1), &price(1, 28));
        assert_eq!(tiny.rounding, Rounding::HalfEven);
        assert_eq!(tiny.value, Some(Decimal::ZERO));
        assert!(
            tiny.to_string()
                .contains("rounded half to even at 18 places")
        );
        // A non-positive answer has no value.
        assert_eq!(
            v.arithmetic(&asset, U256::from(1), &price(-1, 8)).value,
            None
        );
    }
}
