//! Conformance scenarios of the real-time path: the source's head moving back without a
//! new block, finality advancing on its own, and a cache that missed a commit (a writer
//! killed between its store commit and its cache write) healed after a restart.

use std::sync::Arc;

use alloy_primitives::{I256, U256};

use super::Backends;
use crate::model::BalanceKey;
use crate::reader::{FallbackReason, ReadSource};
use crate::testing::harness::Harness;
use crate::traits::BlockSource;
use crate::watcher::Watcher;

/// Block 1 mints 100 to Alice, block 2 moves 40 to Bob; the source then drops block 2 and
/// mines nothing (an `evm_revert`, a fail-over to a node one block behind). The source is
/// the truth: after the next sync Bob holds nothing and Alice 100, in the store, the
/// collateral and the cache.
pub async fn head_moves_back_without_a_new_block(backends: Backends) {
    let mut h = Harness::new(backends, 10).await;
    let (asset, alice, bob) = (h.assets[0].id, h.users[0], h.users[1]);
    h.chain.mine(|b| {
        b.price(asset, I256::try_from(100_000_000i64).expect("answer"), 8);
        b.deposit(asset, alice, U256::from(100));
    });
    h.chain.mine(|b| {
        b.transfer(asset, alice, bob, U256::from(40));
    });
    h.sync().await;
    h.check().await;
    let key = |user| BalanceKey { user, asset };
    assert_eq!(
        h.backends
            .store
            .balance(key(bob))
            .await
            .expect("balance")
            .pending,
        U256::from(40)
    );

    h.chain.reorg(1);
    let report = h.sync().await;
    assert_eq!((report.reverted, report.applied), (1, 0), "{report:?}");
    h.check().await;
    let store = &h.backends.store;
    assert_eq!(
        store.balance(key(bob)).await.expect("balance").pending,
        U256::ZERO
    );
    assert_eq!(
        store.balance(key(alice)).await.expect("balance").pending,
        U256::from(100)
    );
    let head = h.chain.head_number();
    assert_eq!(h.watcher.window().head().map(|b| b.number), Some(head));
    // Nothing goes back below what is final: the next block builds on the shorter chain.
    h.chain.mine(|b| {
        b.deposit(asset, bob, U256::from(7));
    });
    h.sync().await;
    h.check().await;
}

/// Finality follows the source even when a sync has nothing new to write: a `finalized`
/// tag that moves after the blocks were delivered finalizes them.
pub async fn finality_advances_without_writes(backends: Backends) {
    let mut h = Harness::new(backends, 50).await;
    let asset = h.assets[0].id;
    for i in 0..6u64 {
        let user = h.users[i as usize % h.users.len()];
        let block = h.chain.mine(|b| {
            b.deposit(asset, user, U256::from(10 + i));
        });
        h.watcher.ingest(block).await.expect("ingest");
    }
    assert_eq!(
        h.watcher.window().finalized_number(),
        None,
        "50 confirmations"
    );
    let tag = h.chain.head_number() - 2;
    h.chain.set_finalized(Some(tag));
    h.set_tag(tag);
    let report = h.sync().await;
    assert_eq!(report.applied, 0, "nothing new to write");
    assert_eq!(h.watcher.window().finalized_number(), Some(tag));
    h.check().await;
}

/// A writer commits a block to the store and dies before its cache write: the cache's
/// watermark stays behind. A reader compares it with the store's head and reads the store
/// meanwhile (never the outdated entry as current); the next watcher reconciles at start,
/// after which the cache answers again and equals the store.
pub async fn cache_behind_after_a_killed_writer(backends: Backends) {
    let (backends, cache) = backends.with_some_cache();
    let mut h = Harness::new(backends, 10).await;
    let (asset, alice) = (h.assets[0].id, h.users[0]);
    h.chain.mine(|b| {
        b.price(asset, I256::try_from(100_000_000i64).expect("answer"), 8);
        b.deposit(asset, alice, U256::from(5_000_000u64));
    });
    h.sync().await;
    let reader = h.watcher.reader().clone();
    assert_eq!(
        reader.cached(alice).await.expect("read").source,
        ReadSource::Cache
    );

    // The writer that dies after its commit: the same store, no cache attached.
    let source: Arc<dyn BlockSource> = h.chain.clone();
    let mut blind = Watcher::new(h.config.clone(), source, h.backends.store.clone())
        .await
        .expect("watcher");
    h.chain.mine(|b| {
        b.deposit(asset, alice, U256::from(1_000_000u64));
    });
    blind.sync().await.expect("sync");
    drop(blind);
    let read = reader.cached(alice).await.expect("read");
    assert!(
        matches!(
            read.source,
            ReadSource::Store(FallbackReason::CacheBehind { .. })
        ),
        "{:?}",
        read.source
    );
    let truth = reader.collateral(alice).await.expect("collateral");
    assert_eq!(
        read.entry.pending, truth.pending.total,
        "served from the store"
    );
    let stale = cache.get(alice).await.expect("get").expect("entry");
    assert_ne!(
        stale.pending, truth.pending.total,
        "the cache missed the commit"
    );

    h.restart().await;
    h.sync().await;
    h.check().await;
    assert!(h.watcher.verify_cache().await.expect("verify").is_empty());
    let read = reader.cached(alice).await.expect("read");
    assert_eq!(read.source, ReadSource::Cache);
    assert_eq!(read.entry.pending, truth.pending.total);
}

/// The cache's watermark is current at a head; a writer without a cache then finalizes the
/// blocks at and below it (the `finalized` tag) and adds one, and stops. The restarted
/// watcher must refresh whose confirmed side those finalized blocks changed, not only the
/// users of the blocks above the watermark: after its refresh the cache equals the store
/// and serves Alice's confirmed collateral as the store has it.
pub async fn restart_refreshes_what_was_finalized_since_the_watermark(backends: Backends) {
    let (backends, cache) = backends.with_some_cache();
    let mut h = Harness::new(backends, 1_000).await;
    let (asset, alice, bob) = (h.assets[0].id, h.users[0], h.users[1]);
    h.chain.mine(|b| {
        b.price(asset, I256::try_from(100_000_000i64).expect("answer"), 8);
        b.deposit(asset, alice, U256::from(5_000_000u64));
    });
    h.sync().await;
    let reader = h.watcher.reader().clone();
    let before = reader.cached(alice).await.expect("read");
    assert_eq!(before.source, ReadSource::Cache);
    assert!(before.entry.confirmed.is_zero(), "nothing final yet");

    let source: Arc<dyn BlockSource> = h.chain.clone();
    let mut blind = Watcher::new(h.config.clone(), source, h.backends.store.clone())
        .await
        .expect("watcher");
    let tag = h.chain.head_number();
    h.chain.mine(|b| {
        b.deposit(asset, bob, U256::from(1_000_000u64));
    });
    h.chain.set_finalized(Some(tag));
    h.set_tag(tag);
    blind.sync().await.expect("sync");
    h.note_head();
    drop(blind);

    h.restart().await;
    h.sync().await;
    h.check().await;
    assert!(h.watcher.verify_cache().await.expect("verify").is_empty());
    let truth = reader.collateral(alice).await.expect("collateral");
    assert!(!truth.confirmed.total.is_zero(), "Alice's deposit is final");
    let read = reader.cached(alice).await.expect("read");
    assert_eq!(read.source, ReadSource::Cache);
    assert_eq!(read.entry.confirmed, truth.confirmed.total);
    let entry = cache.get(alice).await.expect("get").expect("entry");
    assert_eq!(entry.confirmed, truth.confirmed.total);
}
