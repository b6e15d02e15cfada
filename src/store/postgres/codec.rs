//! Conversions between alloy types and what Postgres stores (BYTEA, NUMERIC as text).

use alloy_primitives::{Address, B256, I256, U256};

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo};
use sqlx::{Encode, Postgres, Type};

use crate::error::StoreError;

pub(super) const BACKEND: &str = "postgres";

/// Maps a sqlx error to a [`StoreError`] naming the operation: a lock or statement timeout
/// typed, anything else [`StoreError::Backend`].
pub(super) fn db(operation: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let operation = operation.into();
    move |source| super::classify(operation, source)
}

/// A `NUMERIC(78,0)` read back as text.
pub(super) fn u256(text: &str, column: &'static str) -> Result<U256, StoreError> {
    text.parse::<U256>().map_err(|_| out_of_range(column, text))
}

/// A signed `NUMERIC(78,0)` (an oracle answer) read back as text.
pub(super) fn i256(text: &str, column: &'static str) -> Result<I256, StoreError> {
    I256::from_dec_str(text).map_err(|_| out_of_range(column, text))
}

pub(super) fn address(bytes: &[u8], column: &'static str) -> Result<Address, StoreError> {
    Address::try_from(bytes).map_err(|_| out_of_range(column, &format!("{bytes:?}")))
}

pub(super) fn b256(bytes: &[u8], column: &'static str) -> Result<B256, StoreError> {
    B256::try_from(bytes).map_err(|_| out_of_range(column, &format!("{bytes:?}")))
}

pub(super) fn number(value: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| out_of_range(column, &value.to_string()))
}

/// A block number as stored (`BIGINT`); heights beyond `i64::MAX` do not exist on any chain.
pub(super) fn bigint(value: u64, column: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| out_of_range(column, &value.to_string()))
}

/// A timestamp (a block's, a price's `updated_at`) as stored in its `BIGINT` column: the
/// `u64`'s bits, so every value round-trips exactly ([`timestamp`] reads it back). Values
/// up to `i64::MAX` read the same in SQL; a hostile or broken source's value from 2^63 on
/// reads negative there, where it used to be refused and halt ingestion on this backend
/// only.
pub(super) fn timestamp_bits(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

/// A timestamp stored by [`timestamp_bits`].
pub(super) fn timestamp(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn out_of_range(column: &'static str, value: &str) -> StoreError {
    StoreError::OutOfRange {
        backend: BACKEND,
        column,
        value: value.to_owned(),
    }
}

/// Rows for `COPY … FROM STDIN (FORMAT binary)`: values go in their wire form (raw BYTEA,
/// big-endian integers, NUMERIC as base-10000 digits), so neither side formats, escapes or
/// parses text.
pub(super) struct CopyBinary {
    buf: Vec<u8>,
}

impl CopyBinary {
    /// An empty payload: the signature, no flags, no header extension.
    pub(super) fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        Self { buf }
    }

    /// Starts a row of `fields` columns (as many as the `COPY` statement lists).
    pub(super) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub(super) fn bytea(&mut self, value: &[u8]) {
        // Addresses and hashes: 20 or 32 bytes.
        self.buf
            .extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(value);
    }

    pub(super) fn int8(&mut self, value: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(super) fn int2(&mut self, value: i16) {
        self.buf.extend_from_slice(&2i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// A non-negative integer as NUMERIC: digit count, weight (power of 10000 of the first
    /// digit), sign, display scale, then the base-10000 digits, most significant first
    /// (at most 20 for a `U256`), trailing zero digits left out.
    pub(super) fn numeric(&mut self, value: &U256) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        numeric_body(&mut self.buf, value);
        let len = (self.buf.len() - start - 4) as i32;
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// The payload, with its trailer.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// A `U256` bound as `NUMERIC` in binary form: no decimal text on either side.
#[derive(Clone, Copy, Debug)]
pub(super) struct Numeric(pub(super) U256);

impl Type<Postgres> for Numeric {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1700))
    }
}

impl PgHasArrayType for Numeric {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1231))
    }
}

impl Encode<'_, Postgres> for Numeric {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        numeric_body(buf, &self.0);
        Ok(IsNull::No)
    }

    fn size_hint(&self) -> usize {
        8 + 2 * 20
    }
}

/// A `NUMERIC` read in binary form (a `U256` column such as a balance): digit count,
/// weight, sign, display scale, base-10000 digits. Anything that is not a non-negative
/// integer below 2^256 is [`StoreError::OutOfRange`].
pub(super) fn numeric_u256(field: &[u8], column: &'static str) -> Result<U256, StoreError> {
    let bad = || out_of_range(column, &format!("NUMERIC {field:?}"));
    let word = |i: usize| -> Result<i16, StoreError> {
        let b = field.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (n, weight, sign) = (word(0)?, word(1)?, word(2)?);
    if sign != 0 || n < 0 || field.len() != 8 + 2 * n as usize {
        return Err(bad());
    }
    if n == 0 {
        return Ok(U256::ZERO);
    }
    // Digits beyond the units (weight < n - 1) would be a fraction.
    if weight < n - 1 || weight >= 20 {
        return Err(bad());
    }
    let mut value = U256::ZERO;
    let base = U256::from(10_000u64);
    for i in 0..=weight as usize {
        let digit = if i < n as usize { word(4 + i)? } else { 0 };
        if !(0..10_000).contains(&digit) {
            return Err(bad());
        }
        value = value
            .checked_mul(base)
            .and_then(|v| v.checked_add(U256::from(digit as u64)))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

/// A non-negative integer in `NUMERIC`'s binary form: digit count, weight (power of 10000
/// of the first digit), sign, display scale, then the base-10000 digits, most significant
/// first (at most 20 for a `U256`), trailing zero digits left out.
fn numeric_body(buf: &mut Vec<u8>, value: &U256) {
    let mut digits = [0i16; 20];
    let mut len = 0;
    for chunk in value.to_base_le(10_000_000_000_000_000) {
        let mut chunk = chunk;
        for _ in 0..4 {
            digits[len] = (chunk % 10_000) as i16;
            chunk /= 10_000;
            len += 1;
        }
    }
    // Little-endian digits: drop the leading zeros of the number (the top of the array).
    while len > 0 && digits[len - 1] == 0 {
        len -= 1;
    }
    let weight = len as i16 - 1;
    let mut low = 0;
    while low < len && digits[low] == 0 {
        low += 1;
    }
    let n = (len - low) as i16;
    buf.extend_from_slice(&n.to_be_bytes());
    buf.extend_from_slice(&(if n == 0 { 0 } else { weight }).to_be_bytes());
    buf.extend_from_slice(&0u16.to_be_bytes()); // positive
    buf.extend_from_slice(&0u16.to_be_bytes()); // scale 0
    for d in digits[low..len].iter().rev() {
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes what [`CopyBinary::numeric`] wrote back to decimal.
    fn numeric_text(field: &[u8]) -> String {
        let word = |i: usize| i16::from_be_bytes([field[4 + 2 * i], field[5 + 2 * i]]);
        let len = i32::from_be_bytes(field[..4].try_into().unwrap()) as usize;
        let (n, weight, sign, scale) = (word(0) as usize, word(1), word(2), word(3));
        assert_eq!(len, 8 + 2 * n);
        assert_eq!((sign, scale), (0, 0));
        if n == 0 {
            return "0".into();
        }
        let digits: Vec<i16> = (0..n).map(|i| word(4 + i)).collect();
        assert!(digits.iter().all(|d| (0..10_000).contains(d)));
        assert_ne!(digits[0], 0);
        assert_ne!(digits[n - 1], 0);
        let mut text = digits[0].to_string();
        for i in 1..=weight as usize {
            text.push_str(&format!("{:04}", digits.get(i).copied().unwrap_or(0)));
        }
        text
    }

    #[test]
    fn numeric_out_of_range_is_refused() {
        let field =
            |words: &[i16]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
        // 1.5 (a fraction), -1, 10000^20 (past 2^256), a digit of 10000.
        for bad in [
            field(&[2, 0, 0, 1, 1, 5000]),
            field(&[1, 0, 0x4000, 0, 1]),
            field(&[1, 20, 0, 0, 1]),
            field(&[1, 0, 0, 0, 10_000]),
        ] {
            assert!(numeric_u256(&bad, "x").is_err(), "{bad:?}");
        }
        // 2^256 itself: 20 digits that overflow.
        let past: U256 = U256::MAX;
        let mut copy = CopyBinary::new();
        let start = copy.buf.len();
        copy.numeric(&past);
        let mut body = copy.buf[start + 4..].to_vec();
        let last = body.len() - 2;
        let d = i16::from_be_bytes([body[last], body[last + 1]]) + 1;
        body[last..].copy_from_slice(&d.to_be_bytes());
        assert!(numeric_u256(&body, "x").is_err());
    }

    #[test]
    fn numeric_digits_round_trip() {
        let mut values = vec![
            U256::ZERO,
            U256::from(1),
            U256::from(9_999),
            U256::from(10_000),
            U256::from(10_001),
            U256::from(100_000_000u64),
            U256::from(1_000_000_000_000_000_000u128),
            U256::from(10_000_000_000_000_000u64),
            U256::MAX,
            U256::MAX - U256::from(1),
        ];
        let mut x = U256::from(0x9E37_79B9_7F4A_7C15u64);
        for _ in 0..200 {
            x = x.wrapping_mul(U256::from(6_364_136_223_846_793_005u64)) + U256::from(1);
            values.push(x >> (x.as_limbs()[0] % 256) as usize);
        }
        for v in values {
            let mut copy = CopyBinary::new();
            let start = copy.buf.len();
            copy.numeric(&v);
            assert_eq!(numeric_text(&copy.buf[start..]), v.to_string(), "{v}");
            assert_eq!(numeric_u256(&copy.buf[start + 4..], "x").unwrap(), v);
        }
    }
}
