//! Faults against Postgres: a writer process killed at arbitrary points, connections
//! dropped mid-ingest, readers hammering the store while the writer ingests, bad input.
//! Each must end in exactly the state of an uninterrupted run, with no partial block.

use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::{LogStatus, PriceFeed};

mod bad_input;
mod concurrent_readers;
mod dropped_connections;
mod killed_writer;
mod standby;
mod terminated_writer;

const STEPS: usize = 80;
const EVENTS: usize = 25;
const USERS: usize = 30;

/// Everything observable in a store, for comparing two runs.
async fn dump(store: &PostgresStore) -> String {
    let mut out = format!("{:?}\n", store.window().await.unwrap());
    for i in 0..USERS {
        out += &format!(
            "{:?}\n",
            store
                .user_balances(ScriptedChain::demo_user(i))
                .await
                .unwrap()
        );
    }
    for a in ScriptedChain::demo_assets() {
        out += &format!("{:?}\n", store.price(a.id).await.unwrap());
    }
    let log = store.log(0..=u64::MAX).await.unwrap();
    let canonical: Vec<_> = log
        .iter()
        .filter(|r| r.status != LogStatus::Reverted)
        .collect();
    out += &format!("{canonical:?}\n");
    out
}
