//! The valuator against an independent exact computation: schoolbook decimal-digit
//! arithmetic (no `U512`, no `Decimal` arithmetic), rounded half to even by hand.

use alloy_primitives::{Address, I256, U256};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::model::MAX_PRICE_DECIMALS;

/// Little-endian decimal digits of a non-negative decimal string.
fn digits(text: &str) -> Vec<u8> {
    text.bytes().rev().map(|b| b - b'0').collect()
}

/// The product of two little-endian digit vectors.
fn mul(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u32; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += u32::from(*x) * u32::from(*y);
        }
        // Carry after each row so no cell exceeds 9 + 9 · 9 · len.
        let mut carry = 0;
        for cell in out.iter_mut() {
            let v = *cell + carry;
            *cell = v % 10;
            carry = v / 10;
        }
    }
    out.into_iter().map(|d| d as u8).collect()
}

/// `n / 10^exponent` rounded half to even at `places` places: the integer part's and the
/// kept fraction's digits, most significant first, as one digit string (the mantissa).
fn round_half_even(n: &[u8], exponent: usize, places: usize) -> Vec<u8> {
    // Most significant first, padded so there is at least one integer digit.
    let mut msf: Vec<u8> = n.iter().rev().copied().collect();
    while msf.len() <= exponent {
        msf.insert(0, 0);
    }
    if places >= exponent {
        msf.extend(std::iter::repeat_n(0, places - exponent));
        return msf;
    }
    let cut = msf.len() - (exponent - places);
    let (kept, rest) = msf.split_at(cut);
    let mut kept = kept.to_vec();
    let half = rest[0] == 5 && rest[1..].iter().all(|d| *d == 0);
    let above = rest[0] > 5 || (rest[0] == 5 && !half);
    let odd = kept.last().is_some_and(|d| d % 2 == 1);
    if above || (half && odd) {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    kept
}

/// The mantissa's value if it fits 96 bits.
fn fits(mantissa: &[u8]) -> Option<u128> {
    let text: String = mantissa.iter().map(|d| char::from(b'0' + d)).collect();
    let text = text.trim_start_matches('0');
    let m = if text.is_empty() {
        0
    } else {
        text.parse::<u128>().ok()?
    };
    (m < 1u128 << 96).then_some(m)
}

/// A price of `asset` at block 1, round 1.
fn price(asset: AssetId, answer: u128, feed: u8) -> Price {
    Price {
        asset,
        answer: I256::try_from(answer).unwrap(),
        decimals: feed,
        round_id: U256::from(1),
        updated_at: 0,
        block: 1,
    }
}

/// The expected value: rounded once at 18 places, or at the most places that fit.
fn expected(raw: U256, decimals: u8, answer: u128, feed: u8, bps: u16) -> Option<Decimal> {
    let n = mul(
        &mul(&digits(&raw.to_string()), &digits(&answer.to_string())),
        &digits(&bps.to_string()),
    );
    let exponent = usize::from(decimals) + usize::from(feed) + 4;
    (0..=18u32).rev().find_map(|places| {
        let m = fits(&round_half_even(&n, exponent, places as usize))?;
        Some(Decimal::from_i128_with_scale(m as i128, places))
    })
}

fn raw_amount() -> impl Strategy<Value = U256> {
    prop_oneof![
        any::<u64>().prop_map(U256::from),
        any::<u128>().prop_map(U256::from),
        (any::<u128>(), 0u32..40)
            .prop_map(|(m, e)| U256::from(m).saturating_mul(U256::from(10u8).pow(U256::from(e)))),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn values_equal_the_exact_ratio_rounded_once(
        raw in raw_amount(),
        decimals in 0u8..40,
        answer in 1u128..(1u128 << 96),
        feed in 0u8..=MAX_PRICE_DECIMALS,
        bps in 0u16..=10_000,
    ) {
        let asset = Asset::new(Address::repeat_byte(1), "TKN", decimals, bps);
        let v = Valuator::new(Arc::new(AssetRegistry::new([asset.clone()]).unwrap()), 0);
        let price = Price {
            asset: asset.id,
            answer: I256::try_from(answer).unwrap(),
            decimals: feed,
            round_id: U256::from(1),
            updated_at: 0,
            block: 1,
        };
        let got = v.value(Address::ZERO, &asset, raw, &price).ok();
        let want = expected(raw, decimals, answer, feed, bps);
        prop_assert_eq!(got, want);
        if let Some(got) = got {
            // Not just equal in value: rounded at the same place.
            prop_assert_eq!(got.scale(), want.map(|w| w.scale()).unwrap_or_default());
        }
    }
}

/// A total with more than 28 significant digits is the exact sum of its values rounded
/// once, half to even (…856703 here, checked with exact rationals), not `Decimal`
/// addition's result (…856702).
#[test]
fn large_totals_are_rounded_once() {
    let holdings: [(u64, u8, u128, u8, u16); 4] = [
        (460_957_599_308, 6, 6_919_625_204_597, 2, 4_397),
        (101_247_400_486, 8, 4_005_268_521_392, 0, 1_355),
        (8_407_141_135, 0, 985_247_796_564, 0, 9_565),
        (85_921_879_196, 4, 2_879_876_337_768, 9, 8_505),
    ];
    let assets: Vec<Asset> = holdings
        .iter()
        .enumerate()
        .map(|(i, (_, d, _, _, bps))| Asset::new(Address::repeat_byte(i as u8 + 1), "T", *d, *bps))
        .collect();
    let v = Valuator::new(
        Arc::new(AssetRegistry::new(assets.clone()).unwrap()),
        u64::MAX,
    );
    let (balances, prices): (Vec<_>, Vec<_>) = holdings
        .iter()
        .zip(&assets)
        .map(|((raw, _, answer, feed, _), a)| {
            let p = price(a.id, *answer, *feed);
            let raw = U256::from(*raw);
            (
                (
                    a.id,
                    BalanceView {
                        confirmed: raw,
                        pending: raw,
                    },
                ),
                PriceView {
                    confirmed: Some(p),
                    pending: Some(p),
                },
            )
        })
        .unzip();
    let c = v
        .collateral(Address::ZERO, 1, 0, &balances, &prices)
        .unwrap();
    assert_eq!(
        c.pending.total,
        "7922816251452151430176.856703".parse::<Decimal>().unwrap()
    );
    let naive = c
        .pending
        .assets
        .iter()
        .filter_map(|a| a.value)
        .fold(Decimal::ZERO, |s, v| s + v);
    assert_eq!(
        naive,
        "7922816251452151430176.856702".parse::<Decimal>().unwrap()
    );
}

#[test]
fn the_reference_rounds_half_to_even() {
    // 2.5 → 2, 3.5 → 4, 2.51 → 3, 9.5 → 10, 0.05 at one place → 0.0.
    assert_eq!(round_half_even(&digits("25"), 1, 0), vec![2]);
    assert_eq!(round_half_even(&digits("35"), 1, 0), vec![4]);
    assert_eq!(round_half_even(&digits("251"), 2, 0), vec![3]);
    assert_eq!(round_half_even(&digits("95"), 1, 0), vec![1, 0]);
    assert_eq!(round_half_even(&digits("5"), 2, 1), vec![0, 0]);
    assert_eq!(mul(&digits("999"), &digits("999")), digits("998001"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A total is the exact sum of its per-asset values, each equal to the independent
    /// computation. Values stay below 10^9 here, so the sum needs no rounding and `Decimal`
    /// addition is exact (see `large_totals_are_rounded_once` for larger ones).
    #[test]
    fn totals_are_exact_sums(
        holdings in proptest::collection::vec(
            (0u64..100_000_000_000_000, 12u8..24, 1u128..10_000_000_000_000, 6u8..=12, 0u16..=10_000),
            1..6,
        ),
    ) {
        let assets: Vec<Asset> = holdings
            .iter()
            .enumerate()
            .map(|(i, (_, decimals, _, _, bps))| {
                Asset::new(Address::repeat_byte(i as u8 + 1), "T", *decimals, *bps)
            })
            .collect();
        let v = Valuator::new(Arc::new(AssetRegistry::new(assets.clone()).unwrap()), u64::MAX);
        let balances: Vec<_> = holdings
            .iter()
            .zip(&assets)
            .map(|((raw, ..), a)| {
                (a.id, BalanceView { confirmed: U256::from(*raw), pending: U256::from(*raw) })
            })
            .collect();
        let prices: Vec<_> = holdings
            .iter()
            .zip(&assets)
            .map(|((_, _, answer, feed, _), a)| {
                let p = price(a.id, *answer, *feed);
                PriceView { confirmed: Some(p), pending: Some(p) }
            })
            .collect();
        let c = v.collateral(Address::ZERO, 1, 0, &balances, &prices).unwrap();
        let mut sum = Decimal::ZERO;
        for (a, (raw, decimals, answer, feed, bps)) in c.pending.assets.iter().zip(&holdings) {
            let want = expected(U256::from(*raw), *decimals, *answer, *feed, *bps);
            prop_assert_eq!(a.value, want);
            sum += a.value.unwrap_or_default();
        }
        prop_assert_eq!(c.pending.total, sum);
        prop_assert_eq!(&c.pending, &c.confirmed);
    }
}
