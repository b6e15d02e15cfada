//! A watcher on the cluster cache lives through a failover (a master killed, its replica
//! promoted) and a resharding under load, and its cache ends equal to the store.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{I256, U256};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness};

use super::cluster_cache;
use crate::support::redis_cluster::PrivateRedisCluster;

/// Mines one block depositing into every user, and syncs (a failing cache never fails it).
async fn mine_for_all(h: &mut Harness, n: u64) {
    let usdc = h.assets[0].id;
    let users = h.users.clone();
    h.chain.mine(|b| {
        for (i, &user) in users.iter().enumerate() {
            b.deposit(usdc, user, U256::from(1_000 + n * 100 + i as u64));
        }
    });
    h.sync().await;
}

/// Mines until a refresh succeeds after the cluster recovered (bounded: 100 blocks), then
/// checks the cache entry by entry against the store.
async fn heal_and_verify(h: &mut Harness, from: u64) {
    for n in from..from + 100 {
        mine_for_all(h, n).await;
        if h.watcher.refresh_status().failing.is_none() {
            let mismatches = h.watcher.verify_cache().await.expect("verify the cache");
            if mismatches.is_empty() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = h.watcher.refresh_status();
    let mismatches = h.watcher.verify_cache().await.expect("verify the cache");
    panic!(
        "the cache never healed: {status:?}, {} mismatches",
        mismatches.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_a_failover_and_a_resharding() {
    let _turn = super::one_cluster_at_a_time().await;
    let mut cluster = PrivateRedisCluster::start();
    let cache = Arc::new(cluster_cache(&cluster, "cluster_failover").await);
    let store = Arc::new(MemoryStore::new());
    let backends = Backends::new(store).with_cache(cache.clone());
    let mut h = Harness::with_users(backends, 3, 60).await;
    let usdc = h.assets[0].id;
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
    });
    h.sync().await;
    for n in 0..5 {
        mine_for_all(&mut h, n).await;
    }
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());

    // Failover: the master of the first user's slot dies; ingestion goes on meanwhile.
    let key = cache.key(&h.users[0]);
    let slot = cluster_slot(&cluster, &key);
    let victim = cluster.master_of(slot);
    cluster.kill(victim);
    for n in 5..10 {
        mine_for_all(&mut h, n).await;
    }
    // (Whether a write hit the dead master before the promotion depends on timing: said,
    // not asserted.)
    eprintln!(
        "cache errors during the failover: {}",
        h.watcher.refresh_status().cache_errors
    );
    cluster.wait_ok();
    assert_ne!(cluster.master_of(slot), victim, "a replica was promoted");
    heal_and_verify(&mut h, 10).await;

    // Resharding under load: 2,000 slots move between two masters while blocks arrive.
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "{masters:?}");
    let cluster = Arc::new(cluster);
    let reshard = {
        let cluster = cluster.clone();
        let (from, to) = (masters[0], masters[1]);
        tokio::task::spawn_blocking(move || cluster.reshard(from, to, 2_000))
    };
    let mut n = 200;
    while !reshard.is_finished() {
        mine_for_all(&mut h, n).await;
        n += 1;
    }
    reshard.await.expect("the resharding succeeded");
    cluster.wait_ok();
    heal_and_verify(&mut h, n).await;
    h.check().await;
}

/// The slot of `key`, as the cluster computes it.
fn cluster_slot(cluster: &PrivateRedisCluster, key: &str) -> u16 {
    cluster.keyslot(key)
}
