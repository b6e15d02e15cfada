//! `follow` processes killed (SIGKILL) mid-stream, some kept down while the stream trims
//! (`MAXLEN ~ 10`) past their position: every published update is printed by the lone
//! follower, and by one of the group's two, or lies in a gap a `resync` line names; and
//! every gap named was really trimmed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use reorg_collateral::cache::{RedisStreamPublisher, StreamId};

use super::{Follower, connection, harness, mine_and_publish, stream_ids, updates};
use crate::support::redis::unique_prefix;

const BLOCKS: u64 = 520;

/// The ids a follower's lines account for: the updates printed, and for each
/// `resync trimmed <after> <next> <missed>` the published ids after `after` up to and
/// including `next` (the first entry after the gap, or the pending entry that was itself
/// trimmed). Returns them and the ids only a gap accounts for.
fn accounted(lines: &[String], published: &[StreamId]) -> (BTreeSet<StreamId>, BTreeSet<StreamId>) {
    let printed: BTreeSet<StreamId> = updates(lines).into_iter().collect();
    let mut gaps = BTreeSet::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("resync trimmed ") else {
            assert!(line.starts_with("update "), "unexpected line {line:?}");
            continue;
        };
        let mut parts = rest.split(' ');
        let after: StreamId = parts.next().unwrap().parse().unwrap();
        let next: StreamId = parts.next().unwrap().parse().unwrap();
        gaps.extend(
            published
                .iter()
                .filter(|id| (**id > after && **id <= next) || **id == next),
        );
    }
    let only_gaps = gaps.difference(&printed).copied().collect();
    (printed.union(&gaps).copied().collect(), only_gaps)
}

/// The entries appended since `after`, in order.
async fn appended(conn: &mut ConnectionManager, key: &str, after: StreamId) -> Vec<StreamId> {
    let ids: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg(format!("({after}"))
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    ids.into_iter().map(|(id, _)| id.parse().unwrap()).collect()
}

/// 520 blocks into a stream of `MAXLEN ~ 10`; three `follow` processes (alone with a state
/// file; `a` and `b` in a group) killed at pseudo-random moments and restarted, each also
/// kept down for 300 blocks (the group's two overlapping for 250), long enough for the
/// stream to trim past it. In the end each of the lone follower and the group accounts for
/// every published entry, printed or inside a gap it was told of; each was told at least
/// once; no entry inside a gap is still in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_followers_past_the_window_resync_and_lose_nothing_silently() {
    let key = unique_prefix("stream_kill_trim");
    let mut conn = connection().await;
    let mut h = harness().await;
    let publisher =
        RedisStreamPublisher::spawn(h.watcher.subscribe(), conn.clone(), key.clone(), 10);
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
    // Follower `k` is down for blocks [50 + 50k, 350 + 50k).
    let down = |k: usize, block: u64| (50 + 50 * k as u64..350 + 50 * k as u64).contains(&block);
    let mut published = Vec::new();
    let mut seed = 0x85eb_ca6b_u64;
    let mut kills = 0;
    for i in 0..BLOCKS {
        mine_and_publish(&mut h, &mut conn, &key, i).await;
        let last = published.last().copied().unwrap_or(StreamId::ZERO);
        published.extend(appended(&mut conn, &key, last).await);
        for (k, f) in followers.iter_mut().enumerate() {
            match (down(k, i), down(k, i + 1)) {
                (false, true) => {
                    f.kill();
                    kills += 1;
                }
                (true, false) => f.restart(),
                _ => {}
            }
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let k = (seed / 7 % 3) as usize;
        if seed.is_multiple_of(7) && !down(k, i + 1) {
            followers[k].kill_and_restart();
            kills += 1;
        }
    }
    assert!(kills >= 20, "{kills} kills");
    assert!(
        published.len() as u64 >= BLOCKS,
        "{} entries",
        published.len()
    );
    let retained: BTreeSet<StreamId> = stream_ids(&mut conn, &key)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(retained.len() < 300, "trimmed to {}", retained.len());
    let all: BTreeSet<StreamId> = published.iter().copied().collect();
    // Every follower catches up (bounded), then stops.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (alone, group) = loop {
        let alone = accounted(&followers[0].lines(), &published);
        let mut lines = followers[1].lines();
        lines.extend(followers[2].lines());
        let group = accounted(&lines, &published);
        if alone.0 == all && group.0 == all {
            break (alone, group);
        }
        assert!(
            Instant::now() < deadline,
            "silently lost: alone {:?}, group {:?}",
            all.difference(&alone.0).collect::<Vec<_>>(),
            all.difference(&group.0).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for f in &mut followers {
        f.kill();
    }
    for (who, only_gaps) in [("alone", &alone.1), ("group", &group.1)] {
        assert!(!only_gaps.is_empty(), "{who} was never told to resync");
        assert!(
            only_gaps.is_disjoint(&retained),
            "{who} was told to resync over entries still in the stream"
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
