//! The watermark per slot: a write a slot's master acknowledged and then lost (it died
//! before its replica received it) shows as that slot behind, and only that slot.

use alloy_primitives::Address;
use reorg_collateral::traits::CollateralCache;

use super::cluster_cache;
use super::consistency::{block, entry};
use crate::support::redis_cluster::PrivateRedisCluster;

/// Two users in different slots written at blocks 1 and 2; then the first user's slot is
/// put back as it was after block 1 (its entry and its slot mark restored from a `DUMP`
/// taken before block 2), as a replica promoted after its master died without sending it
/// block 2's transaction would hold it. The snapshot names that user behind (and is not
/// consistent), the other user's slot is not, `get_with_watermark` gives the first user's
/// entry no watermark (so a reader reads the store) and the second's the watermark; the
/// next write of the first user heals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_that_lost_a_write_reads_as_behind_and_only_it() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let cache = cluster_cache(&cluster, "cluster_lost").await;
    let (a, b) = (Address::repeat_byte(0x11), Address::repeat_byte(0x22));
    let slot_of = |user: &Address| cluster.keyslot(&cache.key(user));
    let (slot_a, slot_b) = (slot_of(&a), slot_of(&b));
    assert_ne!(slot_a, slot_b, "the two users are in different slots");

    cache
        .write(&[entry(a, 1), entry(b, 1)], Some(block(1)))
        .await
        .unwrap();
    let quiet = cache.snapshot(&[a, b]).await.unwrap();
    assert!(quiet.consistent && quiet.behind.is_empty(), "{quiet:?}");

    // What a replica of `a`'s slot held after block 1.
    let mut conn = cache.connection();
    let (key_a, mark_a) = (cache.key(&a), cache.slot_mark_key(slot_a));
    assert_eq!(cluster.keyslot(&mark_a), slot_a, "the mark is in the slot");
    let mut saved = Vec::new();
    for key in [&key_a, &mark_a] {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        saved.push((key.clone(), dump));
    }

    cache
        .write(&[entry(a, 2), entry(b, 2)], Some(block(2)))
        .await
        .unwrap();
    // Block 2's transaction of `a`'s slot lost, as with a master that died before its
    // replica received it.
    for (key, dump) in &saved {
        let () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(dump.as_slice())
            .arg("REPLACE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let lost = cache.snapshot(&[a, b]).await.unwrap();
    assert_eq!(
        lost.behind,
        vec![a],
        "only the slot that lost the write: {lost:?}"
    );
    assert!(
        !lost.consistent,
        "a snapshot with a slot behind is not consistent"
    );
    assert_eq!(lost.watermark, Some(block(2)));
    assert_eq!(lost.entries[0].as_ref().map(|e| e.block), Some(1));
    assert_eq!(lost.entries[1].as_ref().map(|e| e.block), Some(2));
    assert!(
        cache.snapshot(&[b]).await.unwrap().consistent,
        "b's slot alone is whole"
    );

    let (entry_a, mark) = cache.get_with_watermark(a).await.unwrap();
    assert_eq!(entry_a.map(|e| e.block), Some(1));
    assert_eq!(
        mark, None,
        "the entry of a slot behind is current as of no watermark"
    );
    let (entry_b, mark) = cache.get_with_watermark(b).await.unwrap();
    assert_eq!(entry_b.map(|e| e.block), Some(2));
    assert_eq!(mark, Some(block(2)));

    cache.write(&[entry(a, 3)], Some(block(3))).await.unwrap();
    let healed = cache.snapshot(&[a, b]).await.unwrap();
    assert!(healed.consistent && healed.behind.is_empty(), "{healed:?}");
    assert_eq!(healed.watermark, Some(block(3)));
}
