//! [`ExactSum`]: values added exactly, as one side of a valuation adds its assets' values.

use alloy_primitives::U512;
use rust_decimal::Decimal;

use super::{VALUE_DECIMALS, exact};

/// An exact sum of non-negative values of at most [`VALUE_DECIMALS`] places (per-asset
/// values, or valuation totals), rounded once when read: `Decimal` addition rounds as soon
/// as a sum passes 28 significant digits, this does not. Used to add totals across chains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExactSum {
    /// The sum, scaled by `10^VALUE_DECIMALS`.
    scaled: U512,
}

impl ExactSum {
    /// The largest sum whose total fits a `Decimal` with no places: `(2^96 - 1) × 10^18`.
    fn limit() -> U512 {
        U512::from((1u128 << 96) - 1) * U512::from(10u64.pow(VALUE_DECIMALS))
    }

    /// Adds `value` if the total stays representable and `value` is a non-negative value
    /// of at most [`VALUE_DECIMALS`] places; `false` (and nothing added) otherwise.
    pub fn try_add(&mut self, value: Decimal) -> bool {
        let sum = exact::to_scaled(value, VALUE_DECIMALS).and_then(|v| self.scaled.checked_add(v));
        match sum {
            Some(sum) if sum <= Self::limit() => {
                self.scaled = sum;
                true
            }
            _ => false,
        }
    }

    /// The sum, at [`VALUE_DECIMALS`] places (fewer, rounded half to even, once it has
    /// more than 28 significant digits).
    pub fn total(&self) -> Decimal {
        // The sum is at most `limit()`, so its total always fits.
        exact::to_decimal(self.scaled, VALUE_DECIMALS, VALUE_DECIMALS).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_without_rounding_and_refuses_what_does_not_fit() {
        let a: Decimal = "10946967786537289.874415213697".parse().unwrap();
        let b: Decimal = "0.000000000000000001".parse().unwrap();
        let mut s = ExactSum::default();
        assert!(s.try_add(a) && s.try_add(b) && s.try_add(b));
        // Decimal addition rounds the two 1e-18 away; the exact sum keeps them until read.
        assert_eq!(a + b + b, a);
        assert!(s.try_add(Decimal::from_i128_with_scale(999_999_999_999_998, 18)));
        assert_eq!(
            s.total(),
            "10946967786537289.874415213698".parse::<Decimal>().unwrap()
        );
        assert!(!s.try_add(Decimal::MAX), "a sum past the limit is refused");
        assert!(
            !s.try_add(Decimal::NEGATIVE_ONE),
            "a negative value is refused"
        );
        assert!(
            !s.try_add("0.0000000000000000001".parse().unwrap()),
            "19 places"
        );
    }
}
