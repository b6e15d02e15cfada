//! Concurrent first starts on a schema that does not exist yet: every one of them gets a
//! migrated store (the schema is created once, under a lock), none a raw unique violation.

use reorg_collateral::store::{PostgresConfig, PostgresStore};
use reorg_collateral::{LogReader, StoreWriter};

use crate::support;
use support::pg::{database_url, unique_schema_name};

/// Concurrent connects per new schema, and new schemas.
const STARTS: usize = 12;
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_starts_on_a_new_schema_all_succeed() {
    let url = database_url();
    let config = PostgresConfig {
        max_connections: 1,
        ..PostgresConfig::default()
    };
    for _ in 0..ROUNDS {
        let schema = unique_schema_name();
        // Polled together on one task: their statements interleave on the server.
        let starts = (0..STARTS).map(|_| PostgresStore::connect_with(&url, Some(&schema), &config));
        let mut stores = Vec::new();
        let mut failures = Vec::new();
        for start in futures::future::join_all(starts).await {
            match start {
                Ok(store) => stores.push(store),
                Err(e) => failures.push(e.to_string()),
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {STARTS} first starts on {schema} failed: {failures:#?}",
            failures.len()
        );
        // Each one is a migrated, empty store.
        for store in &stores {
            assert_eq!(store.window().await.expect("window").head(), None);
            assert!(store.log(0..=u64::MAX).await.expect("log").is_empty());
            store.pool().close().await;
        }
    }
}
