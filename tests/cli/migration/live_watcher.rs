//! A backfill concurrent with a live watcher that sees reorgs, on a `MigratingStore` that
//! dual-writes a differently shaped legacy table; every balance equals the replay oracle.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;

use reorg_collateral::migration::{
    AddressEncoding, AmountColumns, Backfill, BackfillConfig, History, LegacyLog, MigratingStore,
    Phase, StatusColumn, VerifyMode, verify,
};
use reorg_collateral::model::{AssetRegistry, BalanceKey, Effect};
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::AssertSqlSafe;
use support::pg::fresh_pool;

/// Every balance the oracle knows, read through the migrating store, equals the oracle's.
async fn check(
    label: &str,
    script: &ScriptedChain,
    finalized: Option<u64>,
    migrating: &MigratingStore,
) {
    let oracle = replay(&script.chain.canonical(), finalized);
    let keys: BTreeSet<BalanceKey> = oracle
        .pending
        .keys()
        .chain(oracle.confirmed.keys())
        .copied()
        .collect();
    for key in keys {
        assert_eq!(
            migrating.balance(key).await.expect("balance"),
            oracle.balance(&key),
            "{label}: {key:?}"
        );
    }
}

/// A legacy table shaped differently from the original design: raw-byte addresses, kind
/// codes with absolute "set" events, its own column names.
pub(super) fn kind_mapped(table: &str) -> LegacyLog {
    LegacyLog {
        table: table.to_owned(),
        block_number: "blk".into(),
        log_index: Some("logi".into()),
        tx_hash: Some("tx".into()),
        user: "holder".into(),
        asset: "token".into(),
        encoding: AddressEncoding::Bytea,
        amount: AmountColumns::Kind {
            kind: "op".into(),
            amount: "qty".into(),
            credit: 10,
            debit: 20,
            set: 30,
        },
        status: Some(StatusColumn {
            column: "state".into(),
            confirmed: "final".into(),
            pending: "unconfirmed".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_concurrent_with_a_live_watcher_through_reorgs_verifies_clean() {
    let pool = fresh_pool().await;
    let legacy = kind_mapped("ledger");
    sqlx::query(
        "CREATE TABLE ledger (blk BIGINT NOT NULL, logi BIGINT NOT NULL, tx BYTEA, holder BYTEA NOT NULL,
         token BYTEA NOT NULL, op SMALLINT NOT NULL, qty NUMERIC NOT NULL, state TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create ledger");
    sqlx::query("CREATE INDEX ledger_blk ON ledger (blk)")
        .execute(&pool)
        .await
        .expect("index ledger");

    // The legacy era: blocks up to H, written to the ledger by "the old system".
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("assets");
    let users = (0..25).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(11, 1, users, assets);
    for _ in 0..40 {
        script.step(12);
    }
    // Reorgs are at most 2 deep: blocks 5 below the head never change again.
    let high_water = script.chain.head_number() - 5;
    let mut legacy_rows = 0;
    for block in script.chain.canonical() {
        if block.header.number > high_water {
            break;
        }
        for event in &block.events {
            for (key, effect) in event.effects() {
                let (op, qty) = match effect {
                    Effect::Credit(a) => (10i16, a),
                    Effect::Debit(a) => (20, a),
                    Effect::Set(a) | Effect::Reconcile(a) => (30, a),
                };
                sqlx::query(
                    "INSERT INTO ledger VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, 'final')",
                )
                .bind(block.header.number as i64)
                .bind(event.log.log_index as i64)
                .bind(event.log.tx_hash.as_slice())
                .bind(key.user.as_slice())
                .bind(key.asset.as_slice())
                .bind(op)
                .bind(qty.to_string())
                .execute(&pool)
                .await
                .expect("legacy row");
                legacy_rows += 1;
            }
        }
    }
    assert!(legacy_rows > 300);

    // The new system: dual-write into the ledger, watcher from H + 1 on a MigratingStore.
    let history = History::Legacy(legacy.clone());
    let backfill = Backfill::new(pool.clone(), history.clone()).with_config(BackfillConfig {
        chunk_rows: 25,
        merge_keys: 4,
    });
    let state = backfill.start(Some(high_water)).await.expect("start");
    assert_eq!(state.rows_total, legacy_rows);
    let store = PostgresStore::new(pool.clone())
        .with_legacy_log(legacy.clone())
        .expect("mapping");
    store.register_assets(&registry).await.expect("register");
    let migrating = Arc::new(
        MigratingStore::new(store.clone(), history.clone())
            .await
            .expect("migrating store"),
    );
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 3));
    config.start_block = high_water + 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), migrating.clone())
        .await
        .expect("watcher");

    // Phase 1: the watcher alone; every balance comes out right through the fallback.
    for _ in 0..15 {
        script.step(12);
        watcher.sync().await.expect("sync");
    }
    check(
        "before the backfill",
        &script,
        watcher.window().finalized_number(),
        &migrating,
    )
    .await;

    // Phase 2: backfill and watcher at once; the watcher sees reorgs meanwhile.
    let runner = backfill.clone();
    let backfilling = tokio::spawn(async move { runner.run(|_| {}).await });
    let mut reorgs = 0;
    for _ in 0..40 {
        script.step(12);
        reorgs += watcher.sync().await.expect("sync").reverted;
        tokio::task::yield_now().await;
    }
    let done = backfilling.await.expect("join").expect("backfill");
    assert_eq!(done.phase, Phase::Done);
    assert!(reorgs > 0, "the watcher saw reorgs");
    for _ in 0..5 {
        script.step(12);
        watcher.sync().await.expect("sync");
    }
    check(
        "after the backfill",
        &script,
        watcher.window().finalized_number(),
        &migrating,
    )
    .await;

    // The inner store alone (no fallback) holds every balance now.
    let finalized = watcher.window().finalized_number();
    let oracle = replay(&script.chain.canonical(), finalized);
    for key in oracle.pending.keys().chain(oracle.confirmed.keys()) {
        assert_eq!(
            store.balance(*key).await.expect("balance"),
            oracle.balance(key),
            "{key:?}"
        );
    }
    let report = verify(&pool, &history, VerifyMode::Full, 5)
        .await
        .expect("verify");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.height, finalized);

    // Dual-write: the ledger holds exactly the canonical chain's effects, reverted forks
    // deleted, finalized ones marked final.
    let mut effects_final = 0i64;
    let mut effects_pending = 0i64;
    for block in script.chain.canonical() {
        let n = block
            .events
            .iter()
            .map(|e| e.effects().count() as i64)
            .sum::<i64>();
        if finalized.is_some_and(|f| block.header.number <= f) {
            effects_final += n;
        } else {
            effects_pending += n;
        }
    }
    let count = |state: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
                "SELECT count(*) FROM ledger WHERE state = '{state}'"
            )))
            .fetch_one(&pool)
            .await
            .expect("count ledger")
        }
    };
    assert_eq!(count("final").await, effects_final);
    assert_eq!(count("unconfirmed").await, effects_pending);
}
