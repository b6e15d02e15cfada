//! Pub/sub: `RedisPublisher` forwards each collateral update to a Redis channel.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{I256, U256};
use reorg_collateral::cache::RedisPublisher;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness};
use rust_decimal::Decimal;
use support::redis::{fresh_cache, redis_url, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_changes_are_published() {
    let cache = Arc::new(fresh_cache("pubsub").await);
    let channel = unique_prefix("chan");
    let client = redis::Client::open(redis_url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(&channel).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(Backends::new(store).with_cache(cache.clone()), 3).await;
    let publisher =
        RedisPublisher::spawn(h.watcher.subscribe(), cache.connection(), channel.clone());
    let (usdc, alice) = (h.assets[0].id, h.users[0]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(2_000_000u64));
    });
    h.sync().await;
    use futures::StreamExt;
    // A hang guard, not a latency bound: a busy machine may take seconds.
    let msg = tokio::time::timeout(std::time::Duration::from_secs(60), sub.on_message().next())
        .await
        .expect("a notification (hang guard: 60 s)")
        .expect("stream open");
    let payload: String = msg.get_payload().unwrap();
    let mut lines = payload.lines();
    let head: Vec<&str> = lines.next().unwrap().split('|').collect();
    let block = h.watcher.window().head().unwrap().id();
    assert_eq!(
        head[..3],
        ["update", &block.number.to_string(), &block.hash.to_string()]
    );
    assert_eq!(
        head[3], "step",
        "alice's own change comes before the price fan-out"
    );
    assert_eq!(
        head[5],
        h.watcher.subscribe().chain().0.to_string(),
        "the message names the watcher's chain, last on its first line"
    );
    let user: Vec<&str> = lines
        .next()
        .expect("one line per user")
        .split('|')
        .collect();
    assert_eq!(user[0], format!("{alice:#x}"));
    assert_eq!(
        user[2].parse::<Decimal>().unwrap(),
        Decimal::new(18, 1),
        "2 USDC × $1 × 90 %"
    );
    assert_eq!(lines.next(), None, "one user changed");
    drop(h);
    assert!(publisher.await.unwrap() >= 1);
}
