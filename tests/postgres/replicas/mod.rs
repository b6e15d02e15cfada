//! `PostgresReplica` against a real streaming replica (a private primary and a
//! `pg_basebackup -R` standby, `support::pg_replica`): answers are whole, advancing,
//! labelled states of the primary; writes, a schema behind and lag beyond the bound are
//! refused with typed errors.

use crate::support;

use std::sync::Arc;

use reorg_collateral::model::AssetRegistry;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

mod ingest;
mod refusals;

/// Users of the scripted chain.
const USERS: usize = 12;
/// Events per scripted step.
const EVENTS: usize = 10;

/// A store in a fresh schema of `primary_url` (migrated) with a watcher over a scripted
/// chain, synced once; the schema's name.
async fn primary(
    primary_url: &str,
    seed: u64,
) -> (Arc<PostgresStore>, ScriptedChain, Watcher, String) {
    let schema = support::pg::unique_schema_name();
    let store = Arc::new(
        PostgresStore::connect_in_schema(primary_url, &schema)
            .await
            .expect("connect to the private primary"),
    );
    let assets = ScriptedChain::demo_assets();
    let mut script = ScriptedChain::new(
        seed,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        assets.clone(),
    );
    script.step(EVENTS);
    let mut config = WatcherConfig::new(EngineConfig::new(AssetRegistry::new(assets).unwrap(), 6));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await
        .unwrap();
    watcher.sync().await.unwrap();
    (store, script, watcher, schema)
}
