//! Unit tests of the valuator: rounding, statuses, totals.

use alloy_primitives::Address;

use super::*;

fn price(answer: u64, decimals: u8, updated_at: u64) -> Price {
    Price {
        asset: Address::repeat_byte(1),
        answer: I256::try_from(answer).unwrap(),
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
    // The largest value a `Decimal` holds still values.
    let max = U256::from((1u128 << 96) - 1);
    assert_eq!(
        v.value(Address::ZERO, &asset, max, &price(1, 0, 0))
            .unwrap(),
        Decimal::MAX
    );
    assert!(
        v.value(Address::ZERO, &asset, max + U256::from(1), &price(1, 0, 0))
            .is_err()
    );
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
fn a_price_from_the_future_is_not_fresh_forever() {
    let (v, asset) = valuator(0, 10_000);
    let balances = [(
        asset.id,
        BalanceView {
            confirmed: U256::from(5),
            pending: U256::from(5),
        },
    )];
    let now = 1_000_000;
    for (updated_at, stale) in [
        (u64::MAX, true),
        (1 << 63, true),
        (now + 3601, true),
        (now + 3600, false),
        (now + 5, false),
        (now - 3600, false),
        (now - 3601, true),
    ] {
        let prices = [PriceView {
            confirmed: Some(price(2, 0, updated_at)),
            pending: Some(price(2, 0, updated_at)),
        }];
        let c = v
            .collateral(Address::ZERO, 9, now, &balances, &prices)
            .unwrap();
        let flagged = c.pending.stale_prices().count() == 1;
        assert_eq!(flagged, stale, "updated_at {updated_at} at {now}");
        assert_eq!(c.pending.total, Decimal::from(10), "still used");
    }
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
fn balances_beyond_28_decimals_are_exact() {
    // 199 raw units of a 30-decimal token at $1 = 1.99e-28: rounded once, to 0 at 18
    // places; 7 tokens + 6e-19 tokens round half to even at the 18th place.
    let (v, asset) = valuator(30, 10_000);
    let p = price(1, 0, 0);
    assert_eq!(
        v.value(Address::ZERO, &asset, U256::from(199), &p).unwrap(),
        Decimal::ZERO
    );
    let raw = U256::from(10u64).pow(U256::from(30)) * U256::from(7)
        + U256::from(10u64).pow(U256::from(11)) * U256::from(6);
    assert_eq!(
        v.value(Address::ZERO, &asset, raw, &p).unwrap(),
        "7.000000000000000001".parse::<Decimal>().unwrap()
    );
}

/// Issue 12, item 5: the intermediate product was rounded at 28 places first, giving
/// ...656; the exact value 18,765,949.148425842641893656500... rounds to ...657.
#[test]
fn values_are_rounded_once_from_the_exact_ratio() {
    let (v, asset) = valuator(18, 8_001);
    let raw = "7674667007942785691119".parse::<U256>().unwrap();
    let value = v
        .value(Address::ZERO, &asset, raw, &price(305_609_410_782, 8, 0))
        .unwrap();
    assert_eq!(
        value,
        "18765949.148425842641893657".parse::<Decimal>().unwrap()
    );
}

/// Issue 12, item 2: Alice's unrepresentable value is flagged in her valuation, not an
/// error; Bob's valuation of the same asset is unaffected.
#[test]
fn an_unrepresentable_value_is_flagged_not_an_error() {
    let (v, asset) = valuator(0, 10_000);
    let one_dollar = PriceView {
        confirmed: Some(price(100_000_000, 8, 0)),
        pending: Some(price(100_000_000, 8, 0)),
    };
    let holding = |units: U256| {
        [(
            asset.id,
            BalanceView {
                confirmed: units,
                pending: units,
            },
        )]
    };
    let alice = v
        .collateral(
            Address::repeat_byte(0xA1),
            1,
            0,
            &holding(U256::from(10u64).pow(U256::from(30))),
            &[one_dollar],
        )
        .unwrap();
    for side in [&alice.confirmed, &alice.pending] {
        assert_eq!(side.total, Decimal::ZERO);
        assert_eq!(side.assets[0].status, PriceStatus::Unrepresentable);
        assert_eq!(side.assets[0].value, None);
        assert_eq!(side.unrepresentable().collect::<Vec<_>>(), vec![asset.id]);
        assert!(!side.is_complete());
    }
    let bob = v
        .collateral(
            Address::repeat_byte(0xB0),
            1,
            0,
            &holding(U256::from(10)),
            &[one_dollar],
        )
        .unwrap();
    assert_eq!(bob.pending.total, Decimal::from(10));
    assert_eq!(bob.confirmed.assets[0].value, Some(Decimal::from(10)));
    assert!(bob.pending.is_complete());
}

/// Two values that fit but whose sum does not: the second is flagged, the total is the
/// first's value.
#[test]
fn a_total_that_would_not_fit_flags_the_asset_that_overflows_it() {
    let a = Asset::new(Address::repeat_byte(1), "A", 0, 10_000);
    let b = Asset::new(Address::repeat_byte(2), "B", 0, 10_000);
    let v = Valuator::new(
        Arc::new(AssetRegistry::new([a.clone(), b.clone()]).unwrap()),
        3600,
    );
    let half = U256::from(5u64) * U256::from(10u64).pow(U256::from(28));
    let view = BalanceView {
        confirmed: half,
        pending: U256::from(1),
    };
    let p = PriceView {
        confirmed: Some(price(1, 0, 0)),
        pending: Some(price(1, 0, 0)),
    };
    let c = v
        .collateral(Address::ZERO, 1, 0, &[(a.id, view), (b.id, view)], &[p, p])
        .unwrap();
    assert_eq!(
        c.confirmed.total,
        "50000000000000000000000000000".parse::<Decimal>().unwrap()
    );
    assert_eq!(c.confirmed.assets[1].status, PriceStatus::Unrepresentable);
    assert_eq!(
        c.confirmed.unrepresentable().collect::<Vec<_>>(),
        vec![b.id]
    );
    assert_eq!(c.pending.total, Decimal::from(2));
    assert!(c.pending.is_complete());
}

#[test]
fn non_positive_answers_are_not_valued() {
    let (v, asset) = valuator(0, 10_000);
    let mut p = price(1, 0, 0);
    p.answer = I256::MINUS_ONE;
    assert!(matches!(
        v.value(Address::ZERO, &asset, U256::from(3), &p),
        Err(ValuationError::NonPositiveAnswer { .. })
    ));
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
