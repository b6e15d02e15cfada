//! Several chains in one database, one schema each (the `chains` catalog, migration 0017):
//! upgrading a filled single-chain store, and three chains' writers and readers at once.

mod load;
mod one_statement;
mod upgrade;

use std::collections::BTreeMap;
use std::sync::Arc;

use reorg_collateral::model::{AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::{ScriptedChain, SimulatedOnChain};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::replay;
use reorg_collateral::{EngineConfig, WatcherConfig};
use sqlx::{AssertSqlSafe, PgPool};

/// Users of every script.
pub const USERS: usize = 5;
/// Depth at which the watchers confirm.
pub const DEPTH: u64 = 3;

/// A script of `seed` over the demo users and assets, starting at block 1.
pub fn script(seed: u64) -> ScriptedChain {
    ScriptedChain::new(
        seed,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        ScriptedChain::demo_assets(),
    )
}

/// The source of `script` reporting chain `id`.
pub fn source(script: &ScriptedChain, id: Option<u64>) -> Arc<dyn BlockSource> {
    Arc::new(SimulatedOnChain::new(script.chain.clone(), id))
}

/// The watchers' configuration: the demo assets, confirmed at [`DEPTH`], from block 1.
pub fn config() -> WatcherConfig {
    let assets = AssetRegistry::new(ScriptedChain::demo_assets()).expect("demo assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, DEPTH));
    config.start_block = 1;
    config
}

/// Asserts that `store` holds what the replay oracle of `script`'s chain says, at the
/// store's finalized height: every balance of every demo user and asset, and every price.
pub async fn assert_oracle(store: &PostgresStore, script: &ScriptedChain, what: &str) {
    let finalized = store.window().await.expect("window").finalized_number();
    let expected = replay(&script.chain.canonical(), finalized);
    for i in 0..USERS {
        for asset in ScriptedChain::demo_assets() {
            let key = BalanceKey {
                user: ScriptedChain::demo_user(i),
                asset: asset.id,
            };
            assert_eq!(
                store.balance(key).await.expect("balance"),
                expected.balance(&key),
                "{what}: balance {key:?}"
            );
        }
    }
    for asset in ScriptedChain::demo_assets() {
        assert_eq!(
            store.price(asset.id).await.expect("price"),
            expected.price(&asset.id),
            "{what}: price of {}",
            asset.symbol
        );
    }
}

/// The tables of the pool's schema (the migration table left out).
pub async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND table_name <> '_sqlx_migrations'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("list tables")
}

/// Every row of each of `tables`, as JSON text, sorted.
pub async fn dump(pool: &PgPool, tables: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT to_jsonb(t)::text FROM ONLY \"{table}\" t ORDER BY 1"
        )))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("read {table}: {e}"));
        out.insert(table.clone(), rows);
    }
    out
}
