//! `verify` of a rebasing asset: the table holds its shares, the log the token amounts its
//! events named. Through a backfill (pre-rebase history) and a watcher that rebases it,
//! `verify` compares shares with shares: clean, and a corrupted share balance is reported.

use crate::support;

use std::sync::Arc;

use alloy_primitives::U256;
use reorg_collateral::migration::{
    Backfill, History, LegacyLog, MigratingStore, Phase, VerifyMode, verify,
};
use reorg_collateral::model::{Asset, AssetIndex, AssetRegistry, BalanceChange, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::legacy::{self, address};
use support::pg::fresh_pool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebasing_asset_through_backfill_verifies_as_shares() {
    let pool = fresh_pool().await;
    let token = address(160);
    let (alice, bob) = (address(1), address(2));
    // The legacy era (blocks 1..=3): deposits of the token before its first rebase, whose
    // amounts the engine takes as they are (shares without an index).
    legacy::create_table(&pool, "legacy_log").await;
    sqlx::query(
        "INSERT INTO legacy_log VALUES
         (1, 0, $1, $3, 9000, 'confirmed'), (2, 0, $2, $3, 600, 'confirmed'),
         (3, 0, $1, $3, -300, 'confirmed')",
    )
    .bind(legacy::hex_address(1))
    .bind(legacy::hex_address(2))
    .bind(legacy::hex_address(160))
    .execute(&pool)
    .await
    .expect("legacy rows");
    let history = History::Legacy(LegacyLog::original_design("legacy_log"));
    let backfill = Backfill::new(pool.clone(), history.clone());
    backfill.start(Some(3)).await.expect("start");
    assert_eq!(backfill.run(|_| {}).await.expect("run").phase, Phase::Done);

    // The watcher from block 4: the token rebases (3 shares a token, then 2), and moves in
    // token amounts converted at the index in force at each log.
    let registry = AssetRegistry::new([Asset::new(token, "AMPL", 9, 5_000)]).expect("assets");
    let store = PostgresStore::new(pool.clone());
    store.register_assets(&registry).await.expect("register");
    let migrating = Arc::new(
        MigratingStore::new(store.clone(), history.clone())
            .await
            .expect("migrating store"),
    );
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 2));
    config.start_block = 4;
    let chain = Arc::new(SimulatedChain::new(4));
    let mut watcher = Watcher::new(config, chain.clone(), migrating.clone())
        .await
        .expect("watcher");
    let rebase = |den: u64| BalanceChange::Rebase {
        index: AssetIndex {
            num: U256::from(1),
            den: U256::from(den),
        },
    };
    chain.mine(|b| {
        // A deposit before the rebase in the same block: taken as shares as it is.
        b.deposit(token, bob, U256::from(30));
        b.event(token, rebase(3));
        b.deposit(token, alice, U256::from(7));
    });
    chain.mine(|b| {
        b.transfer(token, alice, bob, U256::from(1_000));
    });
    chain.mine(|b| {
        b.event(token, rebase(2));
        b.transfer(token, bob, alice, U256::from(5));
    });
    for _ in 0..3 {
        chain.mine(|_| {});
    }
    watcher.sync().await.expect("sync");
    let fin = watcher.window().finalized_number().expect("finalized");
    assert!(fin >= 7, "every rebase is final: #{fin}");

    // Shares: alice 9000 - 300 + 21 - 3000 + 10 = 5731, bob 600 + 30 + 3000 - 10 = 3620;
    // balances at 2 shares a token.
    for (user, shares) in [(alice, 5731u64), (bob, 3620)] {
        let b = store
            .balance(BalanceKey { user, asset: token })
            .await
            .expect("balance");
        assert_eq!(b.confirmed, U256::from(shares / 2), "{user}");
    }
    let clean = verify(&pool, &history, VerifyMode::Full, 10)
        .await
        .expect("verify");
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(clean.keys_checked, 2, "{clean:?}");
    let sampled = verify(&pool, &history, VerifyMode::Sample(10), 10)
        .await
        .expect("sampled verify");
    assert!(sampled.is_clean(), "{sampled:?}");

    // A real mismatch (one share off) is still reported, in shares.
    sqlx::query(
        "UPDATE user_current_balances SET balance = balance + 1
         WHERE user_address = $1 AND asset = $2 AND block_status = 1",
    )
    .bind(bob.as_slice())
    .bind(token.as_slice())
    .execute(&pool)
    .await
    .expect("corrupt");
    let bad = verify(&pool, &history, VerifyMode::Full, 10)
        .await
        .expect("verify");
    assert_eq!(bad.mismatches, 1, "{bad:?}");
    assert_eq!(bad.samples[0].user, bob);
    assert_eq!(
        (
            bad.samples[0].expected.as_str(),
            bad.samples[0].actual.as_str()
        ),
        ("3620", "3621")
    );
}
