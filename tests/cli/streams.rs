//! Durable notifications: a watcher's updates appended to a Redis stream, read by `follow`
//! processes killed (SIGKILL) mid-stream and restarted, alone and in a consumer group;
//! and a consumer that was away past the retained window is told to resync.

use crate::support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{I256, U256};
use redis::aio::ConnectionManager;
use reorg_collateral::cache::{
    RedisStreamConsumer, RedisStreamPublisher, Resync, StreamEvent, StreamId, entry_ids,
};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness};
use support::cli::BIN;
use support::redis::{redis_url, unique_prefix};

mod claimed;
mod trimmed;

async fn connection() -> ConnectionManager {
    let client = redis::Client::open(redis_url()).unwrap();
    ConnectionManager::new(client)
        .await
        .expect("the shared Redis is reachable")
}

/// The ids and blocks of every entry of `key`.
async fn stream_ids(conn: &mut ConnectionManager, key: &str) -> Vec<(StreamId, u64)> {
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    let redis::Value::Array(entries) = reply else {
        panic!("XRANGE: {reply:?}")
    };
    entries
        .iter()
        .map(|e| {
            let (id, fields): (String, Vec<String>) = redis::from_redis_value_ref(e).unwrap();
            let block = fields
                .chunks(2)
                .find(|kv| kv[0] == "block")
                .and_then(|kv| kv[1].parse().ok())
                .unwrap_or(0);
            (id.parse().unwrap(), block)
        })
        .collect()
}

/// Mines a deposit for user `i % 5`, syncs, and waits until the stream has the head's
/// update (the publisher appends asynchronously).
async fn mine_and_publish(h: &mut Harness, conn: &mut ConnectionManager, key: &str, i: u64) {
    let (usdc, user) = (h.assets[0].id, h.users[(i % 5) as usize]);
    h.chain.mine(|b| {
        b.deposit(usdc, user, U256::from(1_000 + i));
    });
    h.sync().await;
    let head = h.watcher.window().head().unwrap().number;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await
            .unwrap();
        let published = last.first().is_some_and(|(_, fields)| {
            fields
                .chunks(2)
                .any(|kv| kv[0] == "block" && kv[1] == head.to_string())
        });
        if published {
            return;
        }
        assert!(Instant::now() < deadline, "block {head} never published");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn harness() -> Harness {
    let mut h = Harness::new(Backends::new(Arc::new(MemoryStore::new())), 3).await;
    let usdc = h.assets[0].id;
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
    });
    h.sync().await;
    h
}

/// One `follow` process, restarted on the same arguments and output file.
struct Follower {
    args: Vec<String>,
    out: PathBuf,
    child: Option<Child>,
}

impl Follower {
    fn start(args: Vec<String>, out: PathBuf) -> Self {
        let mut me = Self {
            args,
            out,
            child: None,
        };
        me.restart();
        me
    }

    fn restart(&mut self) {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.out)
            .unwrap();
        let child = Command::new(BIN)
            .arg("follow")
            .args(&self.args)
            .env("REDIS_URL", redis_url())
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start follow");
        self.child = Some(child);
    }

    /// SIGKILL, then a new process on the same position.
    fn kill_and_restart(&mut self) {
        self.kill();
        self.restart();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The lines printed so far, by every run.
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.out);
    }
}

/// The ids of the `update` lines.
fn updates(lines: &[String]) -> Vec<StreamId> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("update "))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// 150 blocks, each update appended to the stream; three `follow` processes (one alone with
/// a state file, two in a group) are killed and restarted every few blocks. In the end the
/// lone follower printed every entry in order (repeats allowed, after a kill), the group's
/// two together printed every entry, and nobody was told to resync (nothing was trimmed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_killed_mid_stream_miss_nothing() {
    let key = unique_prefix("stream");
    let mut conn = connection().await;
    let mut h = harness().await;
    let publisher =
        RedisStreamPublisher::spawn(h.watcher.subscribe(), conn.clone(), key.clone(), 100_000);
    let dir = std::env::temp_dir();
    let state = dir.join(format!("{key}.state"));
    let stream = ["--stream".to_owned(), key.clone()];
    let group = |name: &str| {
        let mut args = stream.to_vec();
        args.extend([
            "--group".into(),
            "risk".into(),
            "--consumer".into(),
            name.into(),
        ]);
        args
    };
    let mut alone_args = stream.to_vec();
    alone_args.extend(["--state-file".into(), state.to_string_lossy().into_owned()]);
    let mut followers = [
        Follower::start(alone_args, dir.join(format!("{key}.alone"))),
        Follower::start(group("a"), dir.join(format!("{key}.a"))),
        Follower::start(group("b"), dir.join(format!("{key}.b"))),
    ];
    // A fixed pseudo-random schedule of kills.
    let mut seed = 0x9e37_79b9_u64;
    let mut kills = 0;
    for i in 0..150u64 {
        mine_and_publish(&mut h, &mut conn, &key, i).await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed.is_multiple_of(5) {
            followers[(seed / 5 % 3) as usize].kill_and_restart();
            kills += 1;
        }
    }
    assert!(kills >= 10, "{kills} kills");
    let all = stream_ids(&mut conn, &key).await;
    let all_ids: BTreeSet<StreamId> = all.iter().map(|(id, _)| *id).collect();
    assert!(all.len() >= 150, "{} entries", all.len());
    // Every follower catches up (bounded), then stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alone: BTreeSet<_> = updates(&followers[0].lines()).into_iter().collect();
        let mut group: BTreeSet<_> = updates(&followers[1].lines()).into_iter().collect();
        group.extend(updates(&followers[2].lines()));
        if alone == all_ids && group == all_ids {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing: alone {:?}, group {:?}",
            all_ids.difference(&alone).count(),
            all_ids.difference(&group).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for f in &mut followers {
        f.kill();
    }
    let alone = updates(&followers[0].lines());
    let mut seen = StreamId::ZERO;
    for id in &alone {
        // A restart may repeat the batch it had not recorded; it never skips ahead.
        assert!(
            *id > seen || all_ids.range(..=seen).any(|x| x == id),
            "{id} out of order"
        );
        seen = seen.max(*id);
    }
    for f in &followers {
        assert!(
            !f.lines().iter().any(|l| l.starts_with("resync")),
            "nothing was trimmed"
        );
    }
    drop(h);
    publisher.await.unwrap();
    let _ = std::fs::remove_file(&state);
    redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{key}:seq"))
        .arg(format!("{key}:gaps"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

/// A consumer away while the stream trims (`MAXLEN ~ 10`) past its position is told to
/// resync, exactly once, then gets every retained entry; the same for a consumer group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_past_the_window_is_told_to_resync() {
    let key = unique_prefix("stream_trim");
    let mut conn = connection().await;
    let mut h = harness().await;
    let publisher =
        RedisStreamPublisher::spawn(h.watcher.subscribe(), conn.clone(), key.clone(), 10);
    for i in 0..5 {
        mine_and_publish(&mut h, &mut conn, &key, i).await;
    }
    let mut alone = RedisStreamConsumer::after(conn.clone(), key.clone(), StreamId::ZERO)
        .with_batch(3)
        .with_wait(Duration::from_millis(10));
    let mut grouped = RedisStreamConsumer::in_group(conn.clone(), key.clone(), "g", "c")
        .await
        .unwrap()
        .with_batch(3)
        .with_wait(Duration::from_millis(10));
    let first = alone.next().await.unwrap();
    assert!(
        matches!(
            first[..],
            [
                StreamEvent::Update(_),
                StreamEvent::Update(_),
                StreamEvent::Update(_)
            ]
        ),
        "{first:?}"
    );
    let last = alone.last_id();
    // The group consumer's own pending entries (none yet), then three new ones.
    let mut got = grouped.next().await.unwrap();
    if got.is_empty() {
        got = grouped.next().await.unwrap();
    }
    assert_eq!(got.len(), 3, "{got:?}");
    grouped.ack(&entry_ids(&got)).await.unwrap();
    drop((alone, grouped));

    // Away while 400 more updates come and most are trimmed.
    for i in 5..405 {
        mine_and_publish(&mut h, &mut conn, &key, i).await;
    }
    let retained = stream_ids(&mut conn, &key).await;
    assert!(retained.len() < 300, "trimmed to {}", retained.len());
    let retained: Vec<StreamId> = retained.into_iter().map(|(id, _)| id).collect();

    let mut alone = RedisStreamConsumer::after(conn.clone(), key.clone(), last);
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Update(_)))
        .count()
        < retained.len()
    {
        events.extend(alone.next().await.unwrap());
    }
    match &events[0] {
        StreamEvent::Resync(Resync::Trimmed {
            after,
            next,
            missed,
        }) => {
            assert_eq!((*after, *next), (last, retained[0]));
            assert!(missed.is_none_or(|m| m > 0), "{missed:?}");
        }
        other => panic!("expected a resync first, got {other:?}"),
    }
    let delivered: Vec<StreamId> = entry_ids(&events[1..]);
    assert_eq!(delivered, retained, "every retained entry, once, in order");

    let mut grouped = RedisStreamConsumer::in_group(conn.clone(), key.clone(), "g", "c")
        .await
        .unwrap();
    let mut events = Vec::new();
    while entry_ids(&events).len() < retained.len() {
        let got = grouped.next().await.unwrap();
        grouped.ack(&entry_ids(&got)).await.unwrap();
        events.extend(got);
    }
    let resyncs = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Resync(Resync::Trimmed { .. })))
        .count();
    assert_eq!(resyncs, 1, "{events:?}");
    assert!(
        matches!(events[0], StreamEvent::Resync(_)),
        "{:?}",
        events[0]
    );
    assert_eq!(entry_ids(&events), retained);
    drop(h);
    publisher.await.unwrap();
    redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{key}:seq"))
        .arg(format!("{key}:gaps"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}
