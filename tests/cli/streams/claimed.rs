//! A group consumer that dies for good: another consumer of the group takes over what it
//! was delivered and never acknowledged (`RedisStreamConsumer::claim_idle`), including an
//! entry trimmed while it was pending (told as a resync), and nothing stays pending.

use std::time::Duration;

use reorg_collateral::cache::{RedisStreamConsumer, Resync, StreamEvent, StreamId, entry_ids};

use super::{connection, harness, mine_and_publish};
use crate::support::redis::unique_prefix;
use reorg_collateral::cache::RedisStreamPublisher;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_pending_entries_are_claimed_by_the_group() {
    let key = unique_prefix("claimed");
    let mut conn = connection().await;
    let mut h = harness().await;
    let publisher =
        RedisStreamPublisher::spawn(h.watcher.subscribe(), conn.clone(), key.clone(), 100_000);
    for i in 0..12 {
        mine_and_publish(&mut h, &mut conn, &key, i).await;
    }
    let mut dead = RedisStreamConsumer::in_group(conn.clone(), key.clone(), "risk", "dead")
        .await
        .expect("join")
        .with_batch(1_000);
    let mut live = RedisStreamConsumer::in_group(conn.clone(), key.clone(), "risk", "live")
        .await
        .expect("join")
        .with_batch(1_000);
    // `dead` is delivered every entry and dies before acknowledging any.
    let delivered: Vec<StreamId> = entry_ids(&dead.next().await.expect("read"));
    assert!(delivered.len() >= 12, "{delivered:?}");
    drop(dead);
    // The oldest pending entry is trimmed away while pending.
    let trimmed = delivered[0];
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(trimmed.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    // Not idle long enough yet: no update is taken (Redis drops the trimmed entry from the
    // pending list whatever its idle time, and that is told at once).
    let early = live
        .claim_idle(Duration::from_secs(3_600))
        .await
        .expect("claim");
    assert!(
        early.iter().all(|e| matches!(e, StreamEvent::Resync(_))),
        "{early:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut claimed = early;
    loop {
        let events = live
            .claim_idle(Duration::from_millis(20))
            .await
            .expect("claim");
        if events.is_empty() {
            break;
        }
        live.ack(&entry_ids(&events)).await.expect("ack");
        claimed.extend(events);
    }
    let updates: Vec<StreamId> = claimed
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Update(u) => Some(u.id),
            _ => None,
        })
        .collect();
    assert_eq!(
        updates,
        delivered[1..],
        "every other delivered entry is taken over"
    );
    assert!(
        claimed.iter().any(|e| matches!(
            e,
            StreamEvent::Resync(Resync::Trimmed { next, missed: Some(1), .. }) if *next == trimmed
        )),
        "the entry trimmed while pending is told as a resync: {claimed:?}"
    );
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&key)
        .arg("risk")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        redis::from_redis_value_ref::<i64>(&pending[0]).unwrap(),
        0,
        "nothing stays pending: {pending:?}"
    );
    drop(h);
    publisher.await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{key}:seq"))
        .arg(format!("{key}:gaps"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
