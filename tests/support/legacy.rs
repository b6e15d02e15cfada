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

/// Fills `legacy_log` (see [`create_table`]) with `rows` confirmed rows, 200 to a block,
/// over 10,000 users and 3 assets (row `g`: user `g % 10000`, asset `160 + g % 3`); the
/// rows alternate in runs of 30,000 between credits of `1000 + g % 7` and debits of 500,
/// so no balance goes negative. The caller computes what it expects on its own.
pub async fn fill_confirmed(pool: &PgPool, rows: u64) {
    sqlx::query(
        "INSERT INTO legacy_log
         SELECT g / 200, g % 200, '0x' || lpad(to_hex(g % 10000), 40, '0'),
                '0x' || lpad(to_hex(160 + g % 3), 40, '0'),
                CASE WHEN (g / 30000) % 2 = 0 THEN 1000 + g % 7 ELSE -500 END, 'confirmed'
         FROM generate_series(0, $1 - 1) AS g",
    )
    .bind(rows as i64)
    .execute(pool)
    .await
    .expect("fill legacy_log");
}
