//! The Redis collateral cache: conformance against the replay oracle (here), atomic reads,
//! flush / outage fallback, the stored layout and its upgrade, pub/sub.

use crate::support;

use std::sync::Arc;

use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance_tests};
use support::redis::fresh_cache;

mod atomicity;
mod chains;
mod fallback;
mod flushall;
mod layout;
mod pubsub;

async fn backends(tag: &str) -> Backends {
    let store = Arc::new(MemoryStore::new());
    Backends::new(store).with_cache(Arc::new(fresh_cache(tag).await))
}

// The conformance suite with the Redis cache under test (memory store): one test per
// scenario, each under its own key prefix.
conformance_tests!(async || backends("conf").await, random_walks: 1..=3, steps: 50);
