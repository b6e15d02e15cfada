//! The watermark under sustained load: the refresh never empties its queue, yet the
//! watermark advances, and what it claims holds (a watcher restarted from it refreshes
//! what it misses and the cache then equals the store).

use std::sync::Arc;

use alloy_primitives::{I256, U256};

use super::Backends;
use crate::testing::harness::Harness;
use crate::testing::recorder::RecordingStore;

/// Users each block touches.
const TOUCHED: usize = 12;

/// Blocks of 12 deposits each, one user per chunk refreshed, ingested one by one without
/// waiting for the refresh (the store yields on every call, so the refresher runs in
/// between, slower than the writer): the watermark must name a state above the start
/// while work is still queued; a restart from it then heals the cache completely.
pub async fn watermark_advances_under_sustained_load(backends: Backends) {
    let (backends, cache) = backends.with_some_cache();
    let mut backends = backends;
    backends.store = Arc::new(RecordingStore::new(backends.store.clone()));
    let mut h = Harness::with_config(backends, 1_000, 60, |c| c.refresh_chunk = 1).await;
    let asset = h.assets[0].id;
    let start = h.chain.mine(|b| {
        b.price(asset, I256::try_from(100_000_000i64).expect("answer"), 8);
    });
    h.sync().await;
    let start = start.header.number;
    assert_eq!(
        cache
            .watermark()
            .await
            .expect("watermark")
            .map(|m| m.head.number),
        Some(start)
    );
    let mut advanced = None;
    for i in 0..40usize {
        let users: Vec<_> = (0..TOUCHED)
            .map(|k| h.users[(i * 7 + k) % h.users.len()])
            .collect();
        let block = h.chain.mine(|b| {
            for user in &users {
                b.deposit(asset, *user, U256::from(1_000 + i as u64));
            }
        });
        h.watcher.ingest(block).await.expect("ingest");
        h.note_head();
        let mark = cache.watermark().await.expect("watermark");
        if mark.is_some_and(|m| m.head.number > start) && h.watcher.stale_cache_entries() > 0 {
            advanced = mark;
        }
    }
    let advanced = advanced.expect("the watermark advanced while work was queued");
    assert!(advanced.head.number > start, "{advanced}");

    // What the watermark claims holds: a watcher restarted from it (the refresh of the
    // old one abandoned) refreshes only what changed since, and the cache is then whole.
    h.restart().await;
    h.sync().await;
    h.check().await;
    assert!(h.watcher.verify_cache().await.expect("verify").is_empty());
}
