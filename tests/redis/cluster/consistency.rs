//! The weaker contract across users: a write is atomic per user, not across slots, and a
//! snapshot says whether what it read is one state of the cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, B256};
use reorg_collateral::cache::RedisClusterCache;
use reorg_collateral::model::{BlockRef, CachedAsset, CachedCollateral, StateRef};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;

use super::cluster_cache;
use crate::support::redis_cluster::PrivateRedisCluster;

pub(super) fn entry(user: Address, n: u64) -> CachedCollateral {
    let value = Decimal::from(n);
    let assets: BTreeMap<_, _> = (1..=2u8)
        .map(|a| {
            let asset = CachedAsset {
                confirmed: Some(value),
                pending: Some(value),
                unrepresentable: Default::default(),
                quarantined: Default::default(),
            };
            (Address::repeat_byte(a), asset)
        })
        .collect();
    CachedCollateral {
        user,
        block: n,
        hash: block(n).head.hash,
        finalized: None,
        confirmed: value * Decimal::TWO,
        pending: value * Decimal::TWO,
        assets,
        complete: true,
    }
}

pub(super) fn block(n: u64) -> StateRef {
    StateRef {
        head: BlockRef {
            number: n,
            hash: B256::with_last_byte((n % 251) as u8),
        },
        finalized: None,
    }
}

/// While a writer rewrites 300 users (spread over every master) block after block, every
/// user's entry is whole (totals = the sum of its assets), and every snapshot that says it
/// is consistent holds all users at one block, the watermark's; snapshots of a quiet cache
/// are consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_snapshots_are_one_block_and_entries_are_whole() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let cache = Arc::new(cluster_cache(&cluster, "cluster_snap").await);
    let users: Vec<Address> = (1..=300u16)
        .map(|i| {
            let mut b = [0u8; 20];
            b[..2].copy_from_slice(&i.to_be_bytes());
            Address::from(b)
        })
        .collect();
    let write = |n: u64| {
        let entries: Vec<_> = users.iter().map(|&u| entry(u, n)).collect();
        let cache = cache.clone();
        async move { cache.write(&entries, Some(block(n))).await.unwrap() }
    };
    write(1).await;
    let quiet = cache.snapshot(&users).await.unwrap();
    assert!(quiet.consistent, "a quiet cache reads consistently");
    assert_eq!(quiet.watermark, Some(block(1)));

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        // A second handle on the same keys, with connections of its own.
        let reader = RedisClusterCache::connect(&cluster.urls(), cache.prefix())
            .await
            .unwrap();
        let (done, users) = (done.clone(), users.clone());
        tokio::spawn(async move {
            let (mut consistent, mut torn) = (0u32, 0u32);
            while !done.load(Ordering::Relaxed) {
                let snapshot = reader.snapshot(&users).await.unwrap();
                let blocks: Vec<u64> = snapshot
                    .entries
                    .iter()
                    .map(|e| {
                        let e = e.as_ref().expect("every user has an entry");
                        let sum: Decimal = e.assets.values().filter_map(|a| a.confirmed).sum();
                        assert_eq!(sum, e.confirmed, "a torn entry at block {}", e.block);
                        e.block
                    })
                    .collect();
                if snapshot.consistent {
                    let at = snapshot
                        .watermark
                        .expect("a consistent snapshot has a watermark");
                    assert!(
                        blocks.iter().all(|&b| b == at.head.number),
                        "a consistent snapshot mixes blocks {:?} (watermark {})",
                        blocks.iter().min()..=blocks.iter().max(),
                        at.head.number
                    );
                    consistent += 1;
                } else {
                    torn += 1;
                }
            }
            (consistent, torn)
        })
    };
    for n in 2..120 {
        write(n).await;
    }
    done.store(true, Ordering::Relaxed);
    let (consistent, torn) = reader.await.unwrap();
    eprintln!("{consistent} consistent and {torn} inconsistent snapshots");
    let last = cache.snapshot(&users).await.unwrap();
    assert!(last.consistent && last.watermark == Some(block(119)));
    assert!(
        last.entries
            .iter()
            .all(|e| e.as_ref().map(|e| e.block) == Some(119))
    );
}
