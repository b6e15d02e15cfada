//! A write replaces each user's entry whole, as `UNLINK` + `HSET` would: the fields of
//! assets a user no longer holds go, a key of another type (an older layout) is replaced, and
//! an entry with hundreds of fields is written whole.

use std::collections::BTreeMap;

use alloy_primitives::Address;
use reorg_collateral::model::{CachedAsset, CachedCollateral};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;

use super::cluster_cache;
use super::consistency::{block, entry};
use crate::support::redis_cluster::PrivateRedisCluster;

/// `entry(user, n)` with `assets` assets (asset `k` is the address ending in `k`).
fn with_assets(user: Address, n: u64, assets: u16) -> CachedCollateral {
    let value = Decimal::from(n);
    let map: BTreeMap<_, _> = (1..=assets)
        .map(|k| {
            let mut a = [0u8; 20];
            a[18..].copy_from_slice(&k.to_be_bytes());
            let asset = CachedAsset {
                confirmed: Some(value),
                pending: Some(value),
                unrepresentable: Default::default(),
                quarantined: Default::default(),
            };
            (Address::from(a), asset)
        })
        .collect();
    CachedCollateral {
        confirmed: value * Decimal::from(assets),
        pending: value * Decimal::from(assets),
        assets: map,
        ..entry(user, n)
    }
}

/// Block 1 writes `a` with 2 assets and `c` with 600 (1,202 field arguments); `b`'s key is then a plain string, as a key of another
/// layout. Block 2 writes `a` with one asset, `b` with two and `c` with 300: each reads
/// back as exactly the new entry (`HLEN`: `~gen`, `~total` and one field per asset), and
/// the snapshot of the three is consistent as of block 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_replaces_each_entry_whole() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let cache = cluster_cache(&cluster, "cluster_replaced").await;
    let (a, b, c) = (
        Address::repeat_byte(0x31),
        Address::repeat_byte(0x32),
        Address::repeat_byte(0x33),
    );
    cache
        .write(
            &[with_assets(a, 1, 2), with_assets(c, 1, 600)],
            Some(block(1)),
        )
        .await
        .unwrap();
    let mut conn = cache.connection();
    let () = redis::AsyncCommands::set(&mut conn, cache.key(&b), "an older layout")
        .await
        .unwrap();

    let second = [
        with_assets(a, 2, 1),
        with_assets(b, 2, 2),
        with_assets(c, 2, 300),
    ];
    cache.write(&second, Some(block(2))).await.unwrap();
    for e in &second {
        assert_eq!(
            cache.get(e.user).await.unwrap().as_ref(),
            Some(e),
            "{}",
            e.user
        );
        let len: usize = redis::AsyncCommands::hlen(&mut conn, cache.key(&e.user))
            .await
            .unwrap();
        assert_eq!(len, 2 + e.assets.len(), "{}: no field of before", e.user);
    }
    let read = cache.snapshot(&[a, b, c]).await.unwrap();
    assert!(read.consistent && read.behind.is_empty(), "{read:?}");
    assert_eq!(read.watermark, Some(block(2)));
}
