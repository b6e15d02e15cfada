//! The Redis Cluster cache on a private 3 + 3 cluster: the conformance suite, what a
//! reader of several users can rely on, and a watcher living through a failover and a
//! resharding.

use crate::support;

use std::sync::Arc;

use reorg_collateral::cache::RedisClusterCache;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance};
use support::redis::unique_prefix;
use support::redis_cluster::PrivateRedisCluster;

mod chains;
mod consistency;
mod failover;
mod lost_write;
mod redirected;
mod replaced;

/// One private cluster at a time in this process: each is six `redis-server`s and a
/// failover, whose timing a second cluster on the same two cores would decide.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other cluster tests of this process to finish; held for the test.
async fn one_cluster_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER.lock().await
}

async fn cluster_cache(cluster: &PrivateRedisCluster, tag: &str) -> RedisClusterCache {
    RedisClusterCache::connect(&cluster.urls(), &unique_prefix(tag))
        .await
        .expect("the private cluster is reachable")
}

/// Every conformance scenario against the cluster cache (memory store), each under its own
/// key prefix on one private cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_cache_conformance() {
    let _turn = one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    conformance::run_all(|| async {
        let cache = cluster_cache(&cluster, "cluster_conf").await;
        Backends::new(Arc::new(MemoryStore::new())).with_cache(Arc::new(cache))
    })
    .await;
}
