//! History reads on a store filled by the migration backfill: a block below the
//! high-water is refused naming it (the backfill writes no log rows there), and every
//! finalized block above it folds from the backfilled balances to the replay oracle's.

use crate::support;

use std::sync::Arc;

use reorg_collateral::error::Error;
use reorg_collateral::migration::{Backfill, History, Phase};
use reorg_collateral::model::{AssetRegistry, Effect};
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use reorg_collateral::traits::{HistoryError, LogReader};
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::pg::fresh_pool;

#[tokio::test]
async fn collateral_at_block_refuses_below_the_backfill_high_water_and_folds_above_it() {
    let pool = fresh_pool().await;
    sqlx::query(
        "CREATE TABLE ledger (blk BIGINT NOT NULL, logi BIGINT NOT NULL, tx BYTEA, holder BYTEA NOT NULL,
         token BYTEA NOT NULL, op SMALLINT NOT NULL, qty NUMERIC NOT NULL, state TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create ledger");
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("assets");
    let users: Vec<_> = (0..8).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(5, 1, users.clone(), assets);
    for _ in 0..20 {
        script.step(8);
    }
    let high_water = script.chain.head_number() - 5;
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
            }
        }
    }
    let history = History::Legacy(super::live_watcher::kind_mapped("ledger"));
    let backfill = Backfill::new(pool.clone(), history);
    backfill.start(Some(high_water)).await.expect("start");
    assert_eq!(backfill.run(|_| {}).await.expect("run").phase, Phase::Done);

    let store = PostgresStore::new(pool.clone());
    store.register_assets(&registry).await.expect("register");
    store.create_history_indexes().await.expect("history index");
    let store = Arc::new(store);
    let mut config = WatcherConfig::new(EngineConfig::new(registry.clone(), 3));
    config.start_block = high_water + 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await
        .expect("watcher");
    for _ in 0..20 {
        script.step(8);
        watcher.sync().await.expect("sync");
    }
    let fin = watcher.window().finalized_number().expect("finalized");
    let reader = CollateralReader::new(store.clone(), Valuator::new(Arc::new(registry), 3_600));
    let below = reader.collateral_at_block(users[0], high_water - 1).await;
    assert!(
        matches!(
            below,
            Err(Error::History(HistoryError::NotInLog { block, high_water: h }))
                if block == high_water - 1 && h == high_water
        ),
        "{below:?}"
    );
    let canonical = script.chain.canonical();
    for n in high_water + 1..=fin {
        let cut: Vec<_> = canonical
            .iter()
            .take_while(|b| b.header.number <= n)
            .cloned()
            .collect();
        let oracle = replay(&cut, Some(n));
        for user in &users {
            let got = store.history_at(*user, n).await.expect("history_at");
            let got: Vec<_> = got
                .balances
                .into_iter()
                .filter(|(_, b)| !b.is_zero())
                .collect();
            let want: Vec<_> = oracle
                .confirmed
                .iter()
                .filter(|(k, _)| k.user == *user)
                .map(|(k, b)| (k.asset, *b))
                .collect();
            assert_eq!(got, want, "{user} after #{n}");
        }
    }
}
