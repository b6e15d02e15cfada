//! Atomic reads: a reader never sees half of a put, of one user's entry or across users.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::Address;
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{CachedAsset, CachedCollateral};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;
use support::redis::{fresh_cache, redis_url};

/// A reader (on its own connection) never sees half of a put: totals always equal the sum
/// of the asset values it reads with them, while a writer rewrites the entry concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_atomic_per_put() {
    let cache = Arc::new(fresh_cache("atomic").await);
    let user = Address::repeat_byte(7);
    let entry = |n: i64| {
        let assets: std::collections::BTreeMap<_, _> = (1..=3u8)
            .map(|a| {
                (
                    Address::repeat_byte(a),
                    CachedAsset {
                        confirmed: Some(Decimal::from(n * i64::from(a))),
                        pending: Some(Decimal::from(n)),
                        unrepresentable: Default::default(),
                        quarantined: Default::default(),
                    },
                )
            })
            .collect();
        CachedCollateral {
            user,
            block: n as u64,
            hash: alloy_primitives::B256::ZERO,
            finalized: None,
            confirmed: Decimal::from(n * 6),
            pending: Decimal::from(n * 3),
            assets,
            complete: true,
        }
    };
    cache.put(&[entry(1)]).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let cache = RedisCollateralCache::connect(&redis_url(), cache.prefix())
            .await
            .unwrap();
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let e = cache.get(user).await.unwrap().expect("entry present");
                let sum: Decimal = e.assets.values().filter_map(|a| a.confirmed).sum();
                assert_eq!(sum, e.confirmed, "torn read at block {}", e.block);
                assert_eq!(
                    Decimal::from(e.block * 6),
                    e.confirmed,
                    "totals from another put"
                );
                reads += 1;
            }
            reads
        })
    };
    for n in 2..400 {
        cache.put(&[entry(n)]).await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 10);
}

/// A put of many users is one atomic step across users too: a reader on another connection
/// that reads the first and the last user of the batch in one `get_many` (one
/// `MULTI`/`EXEC` of `HGETALL`s) always sees them at the same block. The batch (~300 kB)
/// spans many of the server's socket reads, so a plain pipeline would be seen half-applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_user_put_is_atomic_across_users() {
    let cache = Arc::new(fresh_cache("atomic_users").await);
    let users: Vec<Address> = (1..=2_000u16)
        .map(|i| Address::left_padding_from(&i.to_be_bytes()))
        .collect();
    let batch = |n: u64| -> Vec<CachedCollateral> {
        users
            .iter()
            .map(|&user| CachedCollateral {
                user,
                block: n,
                hash: alloy_primitives::B256::ZERO,
                finalized: None,
                confirmed: Decimal::from(n),
                pending: Decimal::from(n),
                assets: std::collections::BTreeMap::new(),
                complete: true,
            })
            .collect()
    };
    cache.put(&batch(1)).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let cache = RedisCollateralCache::connect(&redis_url(), cache.prefix())
            .await
            .unwrap();
        let (pair, done) = ([users[0], users[1_999]], done.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let read = cache.get_many(&pair).await.unwrap();
                let [Some(a), Some(b)] = &read[..] else {
                    panic!("missing entries: {read:?}");
                };
                assert_eq!(a.block, b.block, "a reader saw half of a put");
                reads += 1;
            }
            reads
        })
    };
    for n in 2..100 {
        cache.put(&batch(n)).await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 10);
    cache.clear().await.unwrap();
}
