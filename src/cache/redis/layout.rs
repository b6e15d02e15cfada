//! The Redis layout of one user's entry: key, hash fields and values, written and parsed
//! without `Display` (see [`RedisCollateralCache`](super::RedisCollateralCache) for the
//! layout itself).

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use redis::Value;
use rust_decimal::Decimal;

use super::BACKEND;
use crate::error::CacheError;
use crate::model::{
    BlockNumber, BlockRef, CachedAsset, CachedCollateral, StateRef, Unrepresentable, UserId,
};

/// Hash field of the totals: `block|0x<hash>|finalized|confirmed|pending|complete`.
pub(super) const TOTAL: &str = "~total";

/// Length of an asset field, `0x` and 40 hex digits.
pub(super) const ASSET_FIELD_LEN: usize = 42;

/// Upper bound of an asset value's length: two decimals (sign, 29 digits, point) and `|`.
pub(super) const MAX_VALUE_LEN: usize = 2 * 31 + 1;

/// Upper bound of the totals' length: a block number, a hash, a finalized height, two
/// decimals, a flag and five `|`.
pub(super) const MAX_TOTAL_LEN: usize = 20 + 66 + 20 + 2 * 31 + 1 + 5;

/// Appends `address` as lower-case hex without `0x` (`Display` would compute an EIP-55
/// checksum, a keccak, per address).
pub(super) fn push_hex(address: &Address, out: &mut String) {
    let mut hex = [0u8; 40];
    if alloy_primitives::hex::encode_to_slice(address, &mut hex).is_ok() {
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }
}

/// Appends `hash` as `0x` and 64 lower-case hex digits.
fn push_hash(hash: &B256, out: &mut String) {
    let mut hex = [0u8; 64];
    if alloy_primitives::hex::encode_to_slice(hash, &mut hex).is_ok() {
        out.push_str("0x");
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }
}

/// Appends a state: `number|0x<hash>|finalized` (`-` when nothing is finalized), the form
/// of the watermark and of the head of an entry's totals.
pub(super) fn push_state(state: &StateRef, out: &mut String) {
    push_u64(state.head.number, out);
    out.push('|');
    push_hash(&state.head.hash, out);
    out.push('|');
    match state.finalized {
        Some(f) => push_u64(f, out),
        None => out.push('-'),
    }
}

/// Why a stored state does not parse.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BadState {
    /// `number|hash`: the layout before the finalized height was part of the state.
    OldLayout,
    /// Anything else.
    Malformed(&'static str),
}

/// Parses `number|0x<hash>|finalized` from `parts`.
fn parse_state<'a>(parts: &mut impl Iterator<Item = &'a str>) -> Result<StateRef, BadState> {
    let number: BlockNumber = parts
        .next()
        .ok_or(BadState::Malformed("no block"))?
        .parse()
        .map_err(|_| BadState::Malformed("block is not a number"))?;
    let hash = parts.next().ok_or(BadState::Malformed("no hash"))?;
    let hash: B256 = match hash.strip_prefix("0x") {
        Some(_) => hash
            .parse()
            .map_err(|_| BadState::Malformed("hash is not 0x and 64 hex digits"))?,
        // The second part of an older entry is its confirmed total.
        None => return Err(BadState::OldLayout),
    };
    let finalized = match parts.next().ok_or(BadState::OldLayout)? {
        "-" => None,
        f => Some(
            f.parse()
                .map_err(|_| BadState::Malformed("finalized is not a number"))?,
        ),
    };
    Ok(StateRef {
        head: BlockRef { number, hash },
        finalized,
    })
}

/// Parses a watermark, `number|0x<hash>|finalized`.
pub(super) fn parse_watermark(raw: &str) -> Result<StateRef, BadState> {
    let mut parts = raw.split('|');
    let state = parse_state(&mut parts)?;
    if parts.next().is_some() {
        return Err(BadState::Malformed("extra parts"));
    }
    Ok(state)
}

/// Appends `d` in plain decimal notation with all `d.scale()` fraction digits (what
/// `Display` prints, with less work: one `u128` division at most, then `u64` digits).
pub(super) fn push_decimal(d: Decimal, out: &mut String) {
    const TEN19: u128 = 10_000_000_000_000_000_000;
    let mut digits = [b'0'; 40];
    let mut start = digits.len();
    let mut write_u64 = |mut n: u64, pad: bool, start: &mut usize| {
        let end = *start;
        while n > 0 {
            *start -= 1;
            digits[*start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        if pad {
            *start = end - 19; // the digits array starts as '0's
        }
    };
    let mantissa = d.mantissa().unsigned_abs();
    let (high, low) = (mantissa / TEN19, mantissa % TEN19);
    // Both halves fit in a u64: a mantissa is below 2^96 < 10^29.
    write_u64(low as u64, high > 0, &mut start);
    write_u64(high as u64, false, &mut start);
    let scale = d.scale() as usize;
    // At least one integer digit, and every fraction digit (leading zeros included).
    start = start.min(digits.len() - scale - 1);
    if d.is_sign_negative() && mantissa > 0 {
        out.push('-');
    }
    let text = std::str::from_utf8(&digits[start..]).unwrap_or_default();
    let (int, frac) = text.split_at(text.len() - scale);
    out.push_str(int);
    if scale > 0 {
        out.push('.');
        out.push_str(frac);
    }
}

/// Appends an asset's field name: `0x` and the lower-case hex address.
pub(super) fn push_asset_field(asset: &Address, out: &mut String) {
    out.push_str("0x");
    push_hex(asset, out);
}

/// Appends an asset's value: `confirmed|pending`, each a decimal, `-` for a value without
/// a price, `!` for an unrepresentable one or `q<block>` for a quarantined asset.
pub(super) fn push_asset_value(value: &CachedAsset, out: &mut String) {
    let (u, q) = (value.unrepresentable, value.quarantined);
    push_value(value.confirmed, u.confirmed, q.confirmed, out);
    out.push('|');
    push_value(value.pending, u.pending, q.pending, out);
}

fn push_value(
    value: Option<Decimal>,
    unrepresentable: bool,
    quarantined: Option<u64>,
    out: &mut String,
) {
    match (value, quarantined) {
        (Some(v), _) => push_decimal(v, out),
        (None, Some(block)) => {
            out.push('q');
            out.push_str(&block.to_string());
        }
        (None, None) if unrepresentable => out.push('!'),
        (None, None) => out.push('-'),
    }
}

/// Appends the totals' value: `block|0x<hash>|finalized|confirmed|pending|complete` (the
/// state the entry reflects; `1` if every price behind the entry was present and fresh,
/// else `0`).
pub(super) fn push_total(e: &CachedCollateral, out: &mut String) {
    push_state(&e.state(), out);
    out.push('|');
    push_decimal(e.confirmed, out);
    out.push('|');
    push_decimal(e.pending, out);
    out.push_str(if e.complete { "|1" } else { "|0" });
}

/// Appends `n` in decimal.
fn push_u64(n: u64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// Parses a `HGETALL` reply (a flat array in RESP2, a map in RESP3): `None` for an empty
/// hash (no entry), else the entry, or [`CacheError::Corrupt`] naming `user` when a field
/// is missing, unknown or does not parse.
pub(super) fn decode_hash(
    user: UserId,
    reply: &Value,
) -> Result<Option<CachedCollateral>, CacheError> {
    let corrupt = |detail: String| CacheError::Corrupt {
        backend: BACKEND,
        user,
        detail,
    };
    let mut decoder = Decoder::new(user);
    match reply {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(corrupt(format!("HGETALL returned {} items", items.len())));
            }
            for pair in items.chunks_exact(2) {
                decoder.field(bytes(user, &pair[0])?, bytes(user, &pair[1])?)?;
            }
        }
        Value::Map(pairs) => {
            for (field, value) in pairs {
                decoder.field(bytes(user, field)?, bytes(user, value)?)?;
            }
        }
        Value::Nil => {}
        other => return Err(corrupt(format!("HGETALL returned {other:?}"))),
    }
    decoder.finish()
}

fn bytes(user: UserId, value: &Value) -> Result<&[u8], CacheError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail: format!("hash item {other:?} is not a string"),
        }),
    }
}

/// Collects one hash's fields into an entry (also the fields of a per-chain entry, see
/// [`chain_field`](super::chain_field)).
pub(super) struct Decoder {
    user: UserId,
    fields: usize,
    total: Option<(StateRef, Decimal, Decimal, bool)>,
    assets: BTreeMap<Address, CachedAsset>,
}

impl Decoder {
    pub(super) fn new(user: UserId) -> Self {
        Self {
            user,
            fields: 0,
            total: None,
            assets: BTreeMap::new(),
        }
    }

    fn corrupt(&self, detail: String) -> CacheError {
        CacheError::Corrupt {
            backend: BACKEND,
            user: self.user,
            detail,
        }
    }

    fn text<'a>(&self, what: &str, b: &'a [u8]) -> Result<&'a str, CacheError> {
        std::str::from_utf8(b).map_err(|_| self.corrupt(format!("{what} is not UTF-8: {b:?}")))
    }

    pub(super) fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), CacheError> {
        self.fields += 1;
        let name = self.text("field name", name)?;
        let value = self.text(name, value)?;
        if name == TOTAL {
            self.total = Some(self.totals(value)?);
            return Ok(());
        }
        let asset = self.asset(name)?;
        let Some((c, p)) = value.split_once('|') else {
            return Err(self.corrupt(format!(
                "asset {name}: value {value:?} is not confirmed|pending"
            )));
        };
        let (
            (confirmed, c_unrepresentable, c_quarantined),
            (pending, p_unrepresentable, p_quarantined),
        ) = (self.value(c)?, self.value(p)?);
        let value = CachedAsset {
            confirmed,
            pending,
            unrepresentable: Unrepresentable {
                confirmed: c_unrepresentable,
                pending: p_unrepresentable,
            },
            quarantined: crate::model::QuarantinedSides {
                confirmed: c_quarantined,
                pending: p_quarantined,
            },
        };
        self.assets.insert(asset, value);
        Ok(())
    }

    fn totals(&self, value: &str) -> Result<(StateRef, Decimal, Decimal, bool), CacheError> {
        let bad = |what: &str| {
            self.corrupt(format!(
                "{TOTAL} {value:?}: {what} (expected block|0x<hash>|finalized|confirmed|pending|complete)"
            ))
        };
        let mut parts = value.split('|');
        let state = parse_state(&mut parts).map_err(|e| match e {
            BadState::OldLayout => bad(
                "an entry of an older layout, without the head's hash and the finalized \
                 height (never read as current; the next put replaces it)",
            ),
            BadState::Malformed(what) => bad(what),
        })?;
        let mut next = |what: &str| parts.next().ok_or_else(|| bad(what));
        let confirmed = self.decimal(next("no confirmed total")?)?;
        let pending = self.decimal(next("no pending total")?)?;
        let complete = match next("no complete flag")? {
            "0" => false,
            "1" => true,
            _ => return Err(bad("complete is not 0 or 1")),
        };
        if parts.next().is_some() {
            return Err(bad("extra parts"));
        }
        match (confirmed, pending) {
            (Some(c), Some(p)) => Ok((state, c, p, complete)),
            _ => Err(bad("a total is not a number")),
        }
    }

    fn asset(&self, name: &str) -> Result<Address, CacheError> {
        let bad = || self.corrupt(format!("unknown field {name:?}"));
        let hex = name.strip_prefix("0x").ok_or_else(bad)?;
        // Only the lower-case form this module writes: `HGET` is exact.
        if hex.len() != 40 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut raw = [0u8; 20];
        alloy_primitives::hex::decode_to_slice(hex, &mut raw).map_err(|_| bad())?;
        Ok(Address::from(raw))
    }

    /// An asset value, whether it is unrepresentable and the block of its quarantine: a
    /// decimal, `-` (missing price), `!` (unrepresentable) or `q<block>` (quarantined).
    fn value(&self, text: &str) -> Result<(Option<Decimal>, bool, Option<u64>), CacheError> {
        if let Some(block) = text.strip_prefix('q') {
            let block = block
                .parse()
                .map_err(|e| self.corrupt(format!("quarantine {text:?}: {e}")))?;
            return Ok((None, false, Some(block)));
        }
        match text {
            "!" => Ok((None, true, None)),
            _ => Ok((self.decimal(text)?, false, None)),
        }
    }

    fn decimal(&self, text: &str) -> Result<Option<Decimal>, CacheError> {
        if text == "-" {
            return Ok(None);
        }
        Decimal::from_str_exact(text)
            .map(Some)
            .map_err(|e| self.corrupt(format!("value {text:?}: {e}")))
    }

    pub(super) fn finish(self) -> Result<Option<CachedCollateral>, CacheError> {
        if self.fields == 0 {
            return Ok(None);
        }
        let Some((state, confirmed, pending, complete)) = self.total else {
            return Err(self.corrupt(format!("field {TOTAL} missing")));
        };
        Ok(Some(CachedCollateral {
            user: self.user,
            block: state.head.number,
            hash: state.head.hash,
            finalized: state.finalized,
            confirmed,
            pending,
            assets: self.assets,
            complete,
        }))
    }
}

#[cfg(test)]
mod tests;
