//! Exact fixed-point arithmetic behind a valuation: a non-negative integer over a power of
//! ten, rounded once, half to even, into a `Decimal`.

use std::sync::OnceLock;

use alloy_primitives::{U256, U512};
use rust_decimal::Decimal;

/// The largest power of ten a `U512` holds (`10^154 < 2^512 < 10^155`).
const MAX_POW10: usize = 154;

/// The largest `Decimal` mantissa, `2^96 - 1`.
const MAX_MANTISSA: u128 = (1u128 << 96) - 1;

/// `10^k`, or `None` when it does not fit a `U512`.
pub(super) fn pow10(k: u32) -> Option<U512> {
    static TABLE: OnceLock<Vec<U512>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let ten = U512::from(10u8);
        std::iter::successors(Some(U512::from(1u8)), |p| p.checked_mul(ten))
            .take(MAX_POW10 + 1)
            .collect()
    });
    table.get(usize::try_from(k).ok()?).copied()
}

/// `raw × answer × factor_bps`: the numerator of a value whose denominator is
/// `10^(token decimals + feed decimals + 4)`; `None` if it exceeds a `U512`.
pub(super) fn numerator(raw: U256, answer: U256, factor_bps: u16) -> Option<U512> {
    U512::from(raw)
        .checked_mul(U512::from(answer))?
        .checked_mul(U512::from(factor_bps))
}

/// `n / d` rounded half to even.
fn div_half_even(n: U512, d: U512) -> U512 {
    let (q, r) = n.div_rem(d);
    // `r < d <= 10^154`, so doubling it cannot overflow.
    let twice = r << 1;
    if twice > d || (twice == d && q.bit(0)) {
        q + U512::from(1u8)
    } else {
        q
    }
}

/// `n / 10^exponent × 10^places` rounded half to even; `None` if it exceeds a `U512`.
fn scaled(n: U512, exponent: u32, places: u32) -> Option<U512> {
    if places >= exponent {
        return n.checked_mul(pow10(places - exponent)?);
    }
    match pow10(exponent - places) {
        Some(d) => Some(div_half_even(n, d)),
        // `10^155 / 2` exceeds every `U512`: the quotient rounds to zero.
        None => Some(U512::ZERO),
    }
}

/// `n / 10^exponent` as a `Decimal`, rounded once, half to even, at `max_places` decimal
/// places, or at the most places below that whose mantissa fits the 96 bits of a `Decimal`
/// (about 28 significant digits). `None` if even the integer part does not fit.
///
/// Each candidate is rounded from the exact quotient, never from a rounded one, so there
/// is no double rounding.
pub(super) fn to_decimal(n: U512, exponent: u32, max_places: u32) -> Option<Decimal> {
    for places in (0..=max_places).rev() {
        let Some(q) = scaled(n, exponent, places) else {
            continue;
        };
        if let Ok(m) = u128::try_from(q)
            && m <= MAX_MANTISSA
        {
            return Decimal::try_from_i128_with_scale(i128::try_from(m).ok()?, places).ok();
        }
    }
    None
}

/// A non-negative `Decimal` with at most `places` decimal places, times `10^places`,
/// exactly; `None` for a negative value or one with more places.
pub(super) fn to_scaled(d: Decimal, places: u32) -> Option<U512> {
    if d.is_sign_negative() && !d.is_zero() {
        return None;
    }
    let shift = places.checked_sub(d.scale())?;
    U512::from(d.mantissa().unsigned_abs()).checked_mul(pow10(shift)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_once() {
        let n = |v: u64| U512::from(v);
        // 0.5 → 0, 1.5 → 2, 2.5 → 2, 2.51 → 3 at no places.
        assert_eq!(to_decimal(n(5), 1, 0), Some(Decimal::ZERO));
        assert_eq!(to_decimal(n(15), 1, 0), Some(Decimal::from(2)));
        assert_eq!(to_decimal(n(25), 1, 0), Some(Decimal::from(2)));
        assert_eq!(to_decimal(n(251), 2, 0), Some(Decimal::from(3)));
        // More places than the exponent: exact.
        assert_eq!(to_decimal(n(25), 1, 18), Some(Decimal::new(25, 1)));
        // A denominator beyond U512: zero.
        assert_eq!(to_decimal(U512::MAX, 200, 18), Some(Decimal::ZERO));
    }

    #[test]
    fn keeps_the_places_the_mantissa_allows() {
        // 2^96 - 1 fits with no places; 2^96 does not fit at all.
        let max = U512::from(MAX_MANTISSA);
        assert_eq!(
            to_decimal(max, 0, 18),
            Some(Decimal::from_i128_with_scale(MAX_MANTISSA as i128, 0))
        );
        assert_eq!(to_decimal(max + U512::from(1u8), 0, 18), None);
        // 10^20 + 5e-9 needs 30 digits: 8 places kept (29 digits), the 5 rounded to even.
        let n = U512::from(10u8).pow(U512::from(29u8)) + U512::from(5u8);
        let d = to_decimal(n, 9, 18).unwrap();
        assert_eq!(
            d,
            "100000000000000000000.00000000".parse::<Decimal>().unwrap()
        );
        assert_eq!(d.scale(), 8);
        assert_eq!(
            to_scaled(d, 18),
            Some(U512::from(10u8).pow(U512::from(38u8)))
        );
    }
}
