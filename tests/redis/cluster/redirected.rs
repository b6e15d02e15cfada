//! A write pipelined per node with a stale slot map: the blocks of the slots that moved are
//! refused with `MOVED` inside their transactions and retried alone, and the write is whole.

use std::collections::BTreeSet;

use alloy_primitives::Address;
use reorg_collateral::traits::CollateralCache;

use super::cluster_cache;
use super::consistency::{block, entry};
use crate::support::redis_cluster::PrivateRedisCluster;

/// 600 users written at block 1; `redis-cli --cluster reshard` then moves 1,000 slots
/// (some of them the users') from one master to another behind the cache's back, so the
/// slot map the cache grouped its block-1 write by is stale. The block-2 write succeeds
/// and every user reads at block 2, in a consistent snapshot as of block 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_resharding_retries_the_moved_slots_and_is_whole() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let cache = cluster_cache(&cluster, "cluster_moved").await;
    let users: Vec<Address> = (1..=600u16)
        .map(|i| {
            let mut b = [0u8; 20];
            b[..2].copy_from_slice(&i.to_be_bytes());
            Address::from(b)
        })
        .collect();
    let write = |n: u64| {
        let entries: Vec<_> = users.iter().map(|&u| entry(u, n)).collect();
        let cache = &cache;
        async move { cache.write(&entries, Some(block(n))).await }
    };
    write(1).await.expect("block 1");
    let slots: BTreeSet<u16> = users
        .iter()
        .map(|u| cluster.keyslot(&cache.key(u)))
        .collect();
    let owners = |cluster: &PrivateRedisCluster| -> Vec<u16> {
        slots.iter().map(|&s| cluster.master_of(s)).collect()
    };
    let before = owners(&cluster);

    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "{masters:?}");
    tokio::task::block_in_place(|| {
        cluster.reshard(masters[0], masters[1], 1_000);
        cluster.wait_ok();
    });
    let after = owners(&cluster);
    assert!(
        before.iter().zip(&after).any(|(b, a)| b != a),
        "the resharding moved some of the users' slots"
    );

    write(2).await.expect("block 2, after the resharding");
    let read = cache.snapshot(&users).await.unwrap();
    assert!(
        read.consistent && read.behind.is_empty(),
        "{:?}",
        read.behind
    );
    assert_eq!(read.watermark, Some(block(2)));
    for (user, e) in users.iter().zip(&read.entries) {
        assert_eq!(e.as_ref().map(|e| e.block), Some(2), "{user}");
    }
}
