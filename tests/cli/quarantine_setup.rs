//! What the `quarantine` command tests share: a watcher of two assets (`A`, `B`) on a
//! simulated chain, writing a Postgres store in a schema of its own.

use std::sync::Arc;

use alloy_primitives::Address;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::AssetStateReader;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::support::pg::{database_url, unique_schema_name};

/// The first asset (the tests quarantine it).
pub const A: Address = Address::repeat_byte(0xA1);
/// The second asset.
pub const B: Address = Address::repeat_byte(0xB2);
/// The one holder.
pub const USER: Address = Address::repeat_byte(0x01);

/// A running watcher and what it writes and follows.
pub struct Running {
    /// The store's schema (what the CLI is pointed at).
    pub schema: String,
    pub store: Arc<PostgresStore>,
    pub chain: Arc<SimulatedChain>,
    pub watcher: Watcher,
}

/// A watcher of `A` and `B` (3 confirmations, from block 1) on a fresh chain, writing a
/// store in a fresh schema.
pub async fn running_watcher() -> Running {
    let schema = unique_schema_name();
    let store = Arc::new(
        PostgresStore::connect_in_schema(&database_url(), &schema)
            .await
            .expect("store"),
    );
    let chain = Arc::new(SimulatedChain::new(1));
    let watcher = watcher_of(&store, &chain).await;
    Running {
        schema,
        store,
        chain,
        watcher,
    }
}

/// Another watcher of the same assets on `store` and `chain` (a restart).
pub async fn watcher_of(store: &Arc<PostgresStore>, chain: &Arc<SimulatedChain>) -> Watcher {
    let assets =
        AssetRegistry::new([Asset::new(A, "A", 6, 9_000), Asset::new(B, "B", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    Watcher::new(config, chain.clone(), store.clone())
        .await
        .expect("watcher")
}

/// The assets quarantined at the head.
pub async fn quarantined_at_head(store: &PostgresStore) -> Vec<Address> {
    let states = store.asset_states().await.expect("asset states");
    states
        .iter()
        .filter(|v| v.pending.is_quarantined())
        .map(|v| v.asset)
        .collect()
}
