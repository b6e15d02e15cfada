//! Conversions between alloy types and what Postgres stores (BYTEA, NUMERIC as text).

use alloy_primitives::{Address, B256, U256};

use crate::error::StoreError;

pub(super) const BACKEND: &str = "postgres";

/// Maps a sqlx error to a [`StoreError::Backend`] naming the operation.
pub(super) fn db(operation: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let operation = operation.into();
    move |source| StoreError::Backend {
        backend: BACKEND,
        operation,
        source: Box::new(source),
    }
}

/// A `NUMERIC(78,0)` read back as text.
pub(super) fn u256(text: &str, column: &'static str) -> Result<U256, StoreError> {
    text.parse::<U256>().map_err(|_| out_of_range(column, text))
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

fn out_of_range(column: &'static str, value: &str) -> StoreError {
    StoreError::OutOfRange {
        backend: BACKEND,
        column,
        value: value.to_owned(),
    }
}
