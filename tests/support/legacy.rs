//! The legacy log of the migration tests: a table of the original design
//! (`LegacyLog::original_design`), whose addresses are hex text.
#![allow(dead_code)]

use alloy_primitives::Address;
use sqlx::{AssertSqlSafe, PgPool};

/// Address `n` as the legacy log writes it: `0x` and 40 hex digits.
pub fn hex_address(n: u64) -> String {
    format!("0x{n:040x}")
}

/// Address `n`.
pub fn address(n: u64) -> Address {
    hex_address(n).parse().expect("address")
}

/// Creates an empty legacy log table `name` in the pool's schema, with the original
/// design's columns (amounts signed, status as text).
pub async fn create_table(pool: &PgPool, name: &str) {
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {name} (block_number BIGINT NOT NULL, log_index BIGINT NOT NULL,
         user_address TEXT NOT NULL, asset_id TEXT NOT NULL, amount NUMERIC NOT NULL,
         block_status TEXT NOT NULL)"
    )))
    .execute(pool)
    .await
    .unwrap_or_else(|e| panic!("create legacy table {name}: {e}"));
}
