//! The per-chain field of a user's hash in the multi-chain layout
//! ([`RedisChainCache`](super::RedisChainCache)): field `c<chain id>`, value the entry one
//! chain's single-chain layout stores as a whole hash, folded into one string:
//! `<totals>;0x<asset>=<value>;…` (the totals and each asset's value exactly as the
//! single-chain fields `~total` and `0x<asset>` hold them; neither contains `;` or `=`).

use redis::Value;

use super::BACKEND;
use super::layout::{
    ASSET_FIELD_LEN, Decoder, MAX_TOTAL_LEN, MAX_VALUE_LEN, TOTAL, push_asset_field,
    push_asset_value, push_total,
};
use crate::chains::ChainId;
use crate::error::CacheError;
use crate::model::{CachedCollateral, UserId};

/// The field of `chain` in a user's hash: `c<chain id>` (decimal).
pub(super) fn field(chain: ChainId) -> String {
    format!("c{}", chain.0)
}

/// The chain a field names (`None`: not a `c<chain id>` field).
pub(super) fn chain_of(field: &[u8]) -> Option<ChainId> {
    numbered(field, b"c")
}

/// The field of the generation of `chain`'s entry in the cluster's multi-chain layout:
/// `g<chain id>` (decimal).
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
pub(super) fn generation_field(chain: ChainId) -> String {
    format!("g{}", chain.0)
}

/// The chain a generation field names (`None`: not a `g<chain id>` field).
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
pub(super) fn chain_of_generation(field: &[u8]) -> Option<ChainId> {
    numbered(field, b"g")
}

/// The chain id after `tag` in `field` (`None`: not `<tag><decimal>`).
fn numbered(field: &[u8], tag: &[u8]) -> Option<ChainId> {
    let digits = field.strip_prefix(tag)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().map(ChainId)
}

/// The field's value for `entry`.
pub(super) fn encode(entry: &CachedCollateral) -> String {
    let mut out = String::with_capacity(
        MAX_TOTAL_LEN + (2 + ASSET_FIELD_LEN + MAX_VALUE_LEN) * entry.assets.len(),
    );
    push_total(entry, &mut out);
    for (asset, value) in &entry.assets {
        out.push(';');
        push_asset_field(asset, &mut out);
        out.push('=');
        push_asset_value(value, &mut out);
    }
    out
}

/// Parses a field's value (`None`: the field is absent), or [`CacheError::Corrupt`] naming
/// `user` and the chain.
pub(super) fn decode(
    user: UserId,
    chain: ChainId,
    value: &[u8],
) -> Result<Option<CachedCollateral>, CacheError> {
    let corrupt = |detail: String| CacheError::Corrupt {
        backend: BACKEND,
        user,
        detail: format!("field {} ({chain}): {detail}", field(chain)),
    };
    let mut parts = value.split(|b| *b == b';');
    let totals = parts.next().unwrap_or_default();
    let mut decoder = Decoder::new(user);
    let named = |e: CacheError| match e {
        CacheError::Corrupt { detail, .. } => corrupt(detail),
        other => other,
    };
    decoder.field(TOTAL.as_bytes(), totals).map_err(named)?;
    for part in parts {
        let Some(at) = part.iter().position(|b| *b == b'=') else {
            return Err(corrupt(format!(
                "asset part {:?} is not 0x<asset>=<value>",
                String::from_utf8_lossy(part)
            )));
        };
        decoder.field(&part[..at], &part[at + 1..]).map_err(named)?;
    }
    decoder.finish().map_err(named)
}

/// Parses an `HGET` reply of `chain`'s field.
pub(super) fn decode_reply(
    user: UserId,
    chain: ChainId,
    reply: &Value,
) -> Result<Option<CachedCollateral>, CacheError> {
    match reply {
        Value::Nil => Ok(None),
        Value::BulkString(b) => decode(user, chain, b),
        Value::SimpleString(s) => decode(user, chain, s.as_bytes()),
        other => Err(CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail: format!("field {}: reply {other:?} is not a string", field(chain)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::{Address, B256};
    use rust_decimal::Decimal;

    use super::*;
    use crate::model::{CachedAsset, QuarantinedSides, Unrepresentable};

    fn entry(assets: usize) -> CachedCollateral {
        let mut map = BTreeMap::new();
        for i in 0..assets {
            map.insert(
                Address::repeat_byte(0xa0 + i as u8),
                CachedAsset {
                    confirmed: Some(Decimal::new(10_105, 1)),
                    pending: (i % 2 == 0).then(|| Decimal::new(-3, 2)),
                    unrepresentable: Unrepresentable::default(),
                    quarantined: QuarantinedSides {
                        confirmed: None,
                        pending: (i == 1).then_some(7),
                    },
                },
            );
        }
        CachedCollateral {
            user: Address::repeat_byte(0xb0),
            block: 42,
            hash: B256::repeat_byte(0x11),
            finalized: Some(30),
            confirmed: Decimal::new(10_105, 1),
            pending: Decimal::new(99, 0),
            assets: map,
            complete: true,
        }
    }

    #[test]
    fn round_trips_with_and_without_assets() {
        for n in [0, 1, 3] {
            let e = entry(n);
            let text = encode(&e);
            assert_eq!(text.matches(';').count(), n);
            let back = decode(e.user, ChainId(8453), text.as_bytes()).unwrap();
            assert_eq!(back, Some(e));
        }
    }

    #[test]
    fn fields_name_their_chain() {
        assert_eq!(field(ChainId(8453)), "c8453");
        assert_eq!(chain_of(b"c8453"), Some(ChainId(8453)));
        assert_eq!(chain_of(b"c"), None);
        assert_eq!(chain_of(b"~total"), None);
        assert_eq!(chain_of(b"0xab"), None);
        assert_eq!(generation_field(ChainId(10)), "g10");
        assert_eq!(chain_of_generation(b"g10"), Some(ChainId(10)));
        assert_eq!(chain_of_generation(b"c10"), None);
        assert_eq!(chain_of(b"g10"), None);
    }

    #[test]
    fn malformed_values_are_corrupt_naming_the_chain() {
        let user = Address::repeat_byte(0xb0);
        for bad in [
            &b"garbage"[..],
            b"42|0x11",
            &encode(&entry(1)).replace('=', ":").into_bytes(),
        ] {
            let err = decode(user, ChainId(10), bad).unwrap_err();
            assert!(
                matches!(&err, CacheError::Corrupt { detail, .. } if detail.contains("c10 (chain 10)")),
                "{err}"
            );
        }
    }
}
