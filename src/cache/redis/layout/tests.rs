//! Round trips and corruption of the entry layout; printing as `Display` does.

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// The fields `put` writes for `e`, as `HGETALL` returns them in RESP2.
fn encode(e: &CachedCollateral) -> Value {
    let mut total = String::new();
    push_total(e, &mut total);
    let mut items = vec![bulk(TOTAL), bulk(&total)];
    for (asset, v) in &e.assets {
        let (mut field, mut value) = (String::new(), String::new());
        push_asset_field(asset, &mut field);
        push_asset_value(v, &mut value);
        items.extend([bulk(&field), bulk(&value)]);
    }
    Value::Array(items)
}

fn entry() -> CachedCollateral {
    let user = Address::repeat_byte(0xB0);
    CachedCollateral {
        user,
        block: u64::MAX,
        hash: B256::repeat_byte(0xCD),
        finalized: Some(u64::MAX - 1),
        confirmed: Decimal::new(-12_345, 28),
        pending: Decimal::MAX,
        assets: [
            (
                Address::repeat_byte(0xA1),
                CachedAsset {
                    confirmed: None,
                    pending: Some(Decimal::MIN),
                    unrepresentable: Unrepresentable::default(),
                    quarantined: Default::default(),
                },
            ),
            (
                Address::repeat_byte(2),
                CachedAsset {
                    confirmed: Some(Decimal::new(1_001, 3)),
                    pending: None,
                    unrepresentable: Unrepresentable {
                        confirmed: false,
                        pending: true,
                    },
                    quarantined: Default::default(),
                },
            ),
            (
                Address::repeat_byte(3),
                CachedAsset {
                    confirmed: None,
                    pending: None,
                    unrepresentable: Unrepresentable {
                        confirmed: true,
                        pending: false,
                    },
                    quarantined: crate::model::QuarantinedSides {
                        confirmed: None,
                        pending: Some(77),
                    },
                },
            ),
        ]
        .into(),
        complete: false,
    }
}

/// Entries round-trip through the fields, in RESP2 (flat array) and RESP3 (map) form;
/// an empty hash is no entry.
#[test]
fn entries_round_trip() {
    let e = entry();
    let reply = encode(&e);
    assert_eq!(decode_hash(e.user, &reply).unwrap(), Some(e.clone()));
    let Value::Array(items) = reply else {
        unreachable!()
    };
    let map = Value::Map(
        items
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
    );
    assert_eq!(decode_hash(e.user, &map).unwrap(), Some(e.clone()));
    assert_eq!(decode_hash(e.user, &Value::Array(vec![])).unwrap(), None);
    assert_eq!(decode_hash(e.user, &Value::Map(vec![])).unwrap(), None);
}

/// A field that is missing, unknown or does not parse is `Corrupt`, naming the user.
#[test]
fn corrupt_hashes_are_reported() {
    let e = entry();
    let Value::Array(good) = encode(&e) else {
        unreachable!()
    };
    let asset = format!("0x{}", "a1".repeat(20));
    let with = |field: &str, value: &str| {
        let mut items = good.clone();
        let at = items.iter().position(|v| *v == bulk(field)).unwrap();
        items[at + 1] = bulk(value);
        Value::Array(items)
    };
    let without = |field: &str| {
        let mut items = good.clone();
        let at = items.iter().position(|v| *v == bulk(field)).unwrap();
        items.drain(at..at + 2);
        Value::Array(items)
    };
    let extra = |field: &str, value: &str| {
        let mut items = good.clone();
        items.extend([bulk(field), bulk(value)]);
        Value::Array(items)
    };
    let hash = format!("0x{}", "cd".repeat(32));
    let cases = [
        // The older layout, without the head's hash and the finalized height: never current.
        with(TOTAL, "7|1|1|1"),
        with(TOTAL, &format!("x|{hash}|-|1|1|1")),
        with(TOTAL, &format!("-1|{hash}|-|1|1|1")),
        with(TOTAL, "7|0x12|-|1|1|1"),
        with(TOTAL, &format!("7|{hash}|x|1|1|1")),
        with(TOTAL, &format!("7|{hash}|-|1|1|yes")),
        with(TOTAL, &format!("7|{hash}|-|-|1|1")),
        with(TOTAL, &format!("7|{hash}|-|1|1e5|1")),
        with(TOTAL, &format!("7|{hash}|-|1|1")),
        with(TOTAL, &format!("7|{hash}|-|1|1|1|1")),
        with(&asset, "1"),
        with(&asset, "1|x"),
        with(&asset, "1|2|3"),
        with(&asset, "!!|1"),
        with(&asset, "1|?"),
        without(TOTAL),
        extra("~other", "1"),
        extra("zz", "1|1"),
        extra(&format!("0x{}", "A1".repeat(20)), "1|1"),
        extra(&format!("0x{}", "a1".repeat(19)), "1|1"),
        Value::Array(vec![bulk(TOTAL)]),
        Value::Array(vec![bulk(TOTAL), Value::Int(7)]),
        Value::Array(vec![bulk(&asset), bulk("1|1")]),
        Value::Int(3),
    ];
    for reply in cases {
        match decode_hash(e.user, &reply) {
            Err(CacheError::Corrupt { user, .. }) => assert_eq!(user, e.user),
            other => panic!("{reply:?} read as {other:?}"),
        }
    }
}

/// `push_decimal` prints exactly what `Display` prints, around every `u64`/`u128` split.
#[test]
fn decimals_print_as_display_does() {
    let mut cases = vec![
        Decimal::ZERO,
        Decimal::new(0, 5),
        Decimal::MAX,
        Decimal::MIN,
    ];
    for scale in [0, 1, 5, 18, 19, 20, 27, 28] {
        for m in [
            1i128,
            9,
            10,
            123_456_789,
            9_999_999_999_999_999_999,
            10_000_000_000_000_000_000,
            10_000_000_000_000_000_001,
            12_345_678_901_234_567_890_123,
            (1 << 96) - 1,
        ] {
            cases.push(Decimal::from_i128_with_scale(m, scale));
            cases.push(Decimal::from_i128_with_scale(-m, scale));
        }
    }
    for d in cases {
        let mut out = String::new();
        push_decimal(d, &mut out);
        assert_eq!(out, d.to_string(), "{d:?}");
        assert_eq!(out.parse::<Decimal>().unwrap(), d);
        assert!(out.len() <= MAX_VALUE_LEN / 2, "{out}");
        let e = CachedCollateral {
            user: Address::ZERO,
            block: u64::MAX,
            hash: B256::repeat_byte(0xFF),
            finalized: Some(u64::MAX),
            confirmed: d,
            pending: d,
            assets: BTreeMap::new(),
            complete: true,
        };
        let mut total = String::new();
        push_total(&e, &mut total);
        assert!(total.len() <= MAX_TOTAL_LEN, "{total}");
    }
}

#[test]
fn u64_prints_as_display_does() {
    for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX - 1, u64::MAX] {
        let mut out = String::new();
        push_u64(n, &mut out);
        assert_eq!(out, n.to_string());
    }
}

/// Watermarks round-trip; one of the older `number|hash` layout is told apart (read as
/// none, never as current), anything else is malformed.
#[test]
fn watermarks_round_trip_and_the_old_layout_is_told_apart() {
    use crate::model::{BlockRef, StateRef};
    for finalized in [None, Some(0), Some(u64::MAX)] {
        let state = StateRef {
            head: BlockRef {
                number: 42,
                hash: B256::repeat_byte(0xAB),
            },
            finalized,
        };
        let mut text = String::new();
        push_state(&state, &mut text);
        assert_eq!(parse_watermark(&text), Ok(state), "{text}");
    }
    let hash = format!("0x{}", "ab".repeat(32));
    assert_eq!(
        parse_watermark(&format!("42|{hash}")),
        Err(BadState::OldLayout)
    );
    for bad in [
        format!("x|{hash}|1"),
        format!("42|{hash}|x"),
        format!("42|{hash}|1|2"),
        "42|0xzz|1".to_owned(),
        "42".to_owned(),
    ] {
        assert!(
            matches!(parse_watermark(&bad), Err(BadState::Malformed(_))),
            "{bad}"
        );
    }
}
