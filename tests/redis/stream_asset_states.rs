//! Quarantines and resumes on the durable notification stream: the publisher appends them
//! as entries of their own kinds (`quarantined`, `resumed`) in order with the updates, a
//! consumer reads them as `StreamEvent::AssetState`, and an entry of a kind the consumer
//! does not know (a newer publisher's) is skipped without a gap or an error.

use crate::support;

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use redis::aio::ConnectionManager;
use reorg_collateral::cache::{RedisStreamConsumer, RedisStreamPublisher, StreamEvent, StreamId};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use support::redis::{redis_url, unique_prefix};

const A: Address = Address::repeat_byte(0xA1);
const USER: Address = Address::repeat_byte(0x01);

async fn connection() -> ConnectionManager {
    let client = redis::Client::open(redis_url()).unwrap();
    ConnectionManager::new(client)
        .await
        .expect("the shared Redis")
}

/// The entries' kinds, in stream order.
async fn kinds(conn: &mut ConnectionManager, key: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(_, f)| {
            f.chunks(2)
                .find(|kv| kv[0] == "kind")
                .map(|kv| kv[1].clone())
        })
        .collect()
}

#[tokio::test]
async fn quarantines_and_resumes_are_stream_entries_and_unknown_kinds_are_skipped() {
    let key = unique_prefix("asset_states");
    let mut conn = connection().await;
    let assets = AssetRegistry::new([Asset::new(A, "A", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    config.max_price_age = u64::MAX;
    let chain = Arc::new(SimulatedChain::new(1));
    let mut watcher = Watcher::new(config, chain.clone(), Arc::new(MemoryStore::new()))
        .await
        .expect("watcher");
    let publisher =
        RedisStreamPublisher::spawn(watcher.subscribe(), conn.clone(), key.clone(), 1_000);
    chain.mine(|b| {
        b.deposit(A, USER, U256::from(5));
    });
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    let faulting = chain
        .mine(|b| {
            b.withdraw(A, USER, U256::from(6));
        })
        .header
        .number;
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    assert!(watcher.resume(A).await.unwrap());
    let resumed = chain.mine(|_| {}).header.number;
    watcher.sync().await.expect("sync");
    watcher.flush().await;
    drop(watcher);
    let appended = publisher.await.expect("publisher");
    // A newer publisher's entry of a kind this version does not know, numbered in sequence.
    redis::Script::new(
        "local seq = redis.call('INCR', KEYS[2])
         return redis.call('XADD', KEYS[1], '*', 'seq', seq, 'kind', 'future', 'block', '9', 'message', 'future|x')",
    )
    .key(&key)
    .key(format!("{key}:seq"))
    .invoke_async::<redis::Value>(&mut conn)
    .await
    .unwrap();
    let stream_kinds = kinds(&mut conn, &key).await;
    assert_eq!(stream_kinds.len() as u64, appended + 1, "{stream_kinds:?}");
    let pos = |k: &str| stream_kinds.iter().position(|x| x == k).unwrap();
    assert!(pos("quarantined") < pos("resumed"), "{stream_kinds:?}");
    // The quarantine comes before the update of its block (which follows it).
    assert_eq!(
        stream_kinds[pos("quarantined") + 1],
        "update",
        "{stream_kinds:?}"
    );

    let mut consumer = RedisStreamConsumer::after(conn.clone(), key.clone(), StreamId::ZERO);
    let events = consumer.next().await.expect("read");
    assert!(
        events.iter().all(|e| !matches!(e, StreamEvent::Resync(_))),
        "no gap: {events:?}"
    );
    assert_eq!(
        events.len() as u64,
        appended,
        "the unknown entry is skipped: {events:?}"
    );
    let states: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::AssetState(s) => Some((s.block, s.message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[0].0, faulting);
    assert!(
        states[0]
            .1
            .starts_with(&format!("quarantined|{A:#x}|{faulting}|")),
        "{}",
        states[0].1
    );
    assert!(
        states[0].1.contains("exceeds its balance 5"),
        "{}",
        states[0].1
    );
    assert_eq!(states[1].0, resumed);
    assert!(
        states[1]
            .1
            .starts_with(&format!("resumed|{A:#x}|{resumed}|")),
        "{}",
        states[1].1
    );
    // Past the skipped entry: nothing more, no error.
    assert!(consumer.next().await.expect("read again").is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{key}:seq"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
