//! A resume request stays in the store until the block carrying its resume commits: a
//! watcher that fails between reading it and writing that block, and is then dropped (a
//! crash), leaves it for the next watcher, which writes the resume and removes it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::{Address, U256};
use reorg_collateral::model::{Asset, AssetRegistry, ResumeRequest};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::{AssetStateReader, StoreWriter};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::flaky::Flaky;

const A: Address = Address::repeat_byte(0xA1);
const USER: Address = Address::repeat_byte(0x01);

async fn quarantined_at_head(store: &MemoryStore) -> Vec<Address> {
    let states = store.asset_states().await.expect("asset states");
    states
        .iter()
        .filter(|v| v.pending.is_quarantined())
        .map(|v| v.asset)
        .collect()
}

#[tokio::test]
async fn a_resume_request_survives_a_failure_between_reading_and_writing() {
    let assets = AssetRegistry::new([Asset::new(A, "A", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let source = Arc::new(Flaky::new(chain.clone()));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config.clone(), source.clone(), store.clone())
        .await
        .expect("watcher");
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
    });
    chain.mine(|blk| {
        blk.withdraw(A, USER, U256::from(6));
    });
    watcher.sync().await.expect("a quarantine is not a stall");
    assert_eq!(quarantined_at_head(&store).await, vec![A]);

    let request = ResumeRequest {
        asset: A,
        at_block: None,
    };
    store.request_resume(request);
    chain.mine(|_| {});
    // The sync reads the request, then the source's head fails: nothing is written.
    source.failing.store(true, Ordering::SeqCst);
    watcher
        .sync()
        .await
        .expect_err("the source's head fails after the requests are read");
    drop(watcher);
    assert_eq!(
        store.resume_requests().await.expect("requests"),
        vec![request],
        "read, not removed"
    );
    assert_eq!(quarantined_at_head(&store).await, vec![A]);

    source.failing.store(false, Ordering::SeqCst);
    let mut watcher = Watcher::new(config, source, store.clone())
        .await
        .expect("watcher after the crash");
    let report = watcher.sync().await.expect("sync");
    let head = chain.head_number();
    assert_eq!(
        report
            .resumed
            .iter()
            .map(|(a, b)| (*a, b.number))
            .collect::<Vec<_>>(),
        vec![(A, head)]
    );
    assert!(quarantined_at_head(&store).await.is_empty());
    assert!(
        store.resume_requests().await.expect("requests").is_empty(),
        "removed once the resume committed"
    );
    // Not read again: the next block carries no resume.
    chain.mine(|_| {});
    assert!(watcher.sync().await.expect("sync").resumed.is_empty());
}

#[tokio::test]
async fn a_resume_request_of_an_active_or_unknown_asset_is_removed_when_read() {
    let assets = AssetRegistry::new([Asset::new(A, "A", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let chain = Arc::new(SimulatedChain::new(1));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await
        .expect("watcher");
    store.request_resume(ResumeRequest {
        asset: A,
        at_block: None,
    });
    store.request_resume(ResumeRequest {
        asset: Address::repeat_byte(0xEE),
        at_block: Some(7),
    });
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
    });
    let report = watcher.sync().await.expect("sync");
    assert!(report.resumed.is_empty());
    assert!(store.resume_requests().await.expect("requests").is_empty());
}
