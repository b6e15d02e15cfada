//! The migration toolkit against a real Postgres: backfill of a 1,000,000-event legacy log,
//! a backfill killed half-way (a SIGKILLed CLI process, aborted tasks) resuming to the same
//! result, and a backfill concurrent with a live watcher that sees reorgs, dual-writing a
//! legacy table, ending with `verify` clean and every balance equal to the replay oracle.
//! `subcommands` (a sibling) covers the CLI's help, usage and `rebuild-cache`.

use crate::support;

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use reorg_collateral::migration::{History, ReadPath, SwitchableReads};
use sqlx::PgPool;
use support::legacy::{self, address};

mod backfill;
mod history;
mod live_watcher;
mod rebasing;
mod resume;

/// Fills the original design's log shape with `rows` confirmed rows over 10,000 users and
/// 3 assets (a key's events alternate a credit of 1000 + g % 7 and a debit of 500, so no
/// balance goes negative), plus pending and reverted rows the backfill must ignore.
/// Returns the expected balance of each key, computed here in Rust.
async fn legacy_log(pool: &PgPool, rows: u64) -> BTreeMap<(Address, Address), U256> {
    legacy::create_table(pool, "legacy_log").await;
    legacy::fill_confirmed(pool, rows).await;
    // Rows that are not confirmed history: a pending block above and a reverted one.
    sqlx::query(
        "INSERT INTO legacy_log VALUES
         ($1, 0, '0x' || lpad(to_hex(1), 40, '0'), '0x' || lpad(to_hex(160), 40, '0'), 999999, 'pending'),
         (3, 999, '0x' || lpad(to_hex(2), 40, '0'), '0x' || lpad(to_hex(161), 40, '0'), 777777, 'reverted')",
    )
    .bind((rows / 200 + 1) as i64)
    .execute(pool)
    .await
    .expect("add non-confirmed rows");
    sqlx::query("CREATE INDEX legacy_log_block ON legacy_log (block_number)")
        .execute(pool)
        .await
        .expect("index legacy_log");
    let mut expected: BTreeMap<(Address, Address), U256> = BTreeMap::new();
    for g in 0..rows {
        let key = (address(g % 10_000), address(160 + g % 3));
        let b = expected.entry(key).or_default();
        if (g / 30_000) % 2 == 0 {
            *b += U256::from(1000 + g % 7);
        } else {
            *b -= U256::from(500);
        }
    }
    expected.retain(|_, v| !v.is_zero());
    expected
}

async fn all_current(pool: &PgPool) -> BTreeMap<(Address, Address), U256> {
    let reads = SwitchableReads::new(pool.clone(), History::CrateLog)
        .await
        .expect("reads");
    reads.set_path(ReadPath::CurrentState);
    reads
        .all_confirmed_balances()
        .await
        .expect("read current state")
        .into_iter()
        .map(|(u, a, v)| ((u, a), v))
        .collect()
}
