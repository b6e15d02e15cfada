//! Reads of several users from a cluster, and whether they are one state of the cache.

use futures::StreamExt;
use redis::Value;

use super::error::ClusterError;
use super::link::{Link, cause};
use super::slot::slot;
use super::slot::take_generation;
use super::{IN_FLIGHT, RedisClusterCache, by_slot, cluster, parse_watermark};
use crate::cache::redis::BACKEND;
use crate::cache::redis::config::backend;
use crate::cache::redis::layout::decode_hash;
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};

/// Entries of several users read from a [`RedisClusterCache`], and whether they are one
/// state of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The entries, in the order asked (`None`: no entry).
    pub entries: Vec<Option<CachedCollateral>>,
    /// The watermark read before and after the entries, when it did not move.
    pub watermark: Option<StateRef>,
    /// Whether the entries are one state of the cache, the one as of [`watermark`](Self::watermark):
    /// the watermark did not move while they were read and no entry was written after it.
    /// `false` while a write is under way (or failed half-way, until the next watermark),
    /// or when an entry is [`behind`](Self::behind): read again, or read the store.
    pub consistent: bool,
    /// The users asked whose slot lost a write: its mark (set in the slot's transaction)
    /// is below the generation the watermark's side recorded for the slot, as after a
    /// master acknowledged a write and died before its replica received it. Their entries
    /// may be older than the watermark says, until the next write of those users.
    pub behind: Vec<UserId>,
}

/// The entries read, each with its generation, and the mark of each slot read.
pub(super) struct Read {
    /// The entries of the users asked, in order, with their generation.
    pub(super) entries: Vec<Option<(CachedCollateral, Option<u64>)>>,
    /// `(slot, mark)` of each slot read (`0`: no mark).
    pub(super) marks: Vec<(u16, u64)>,
}

/// One user's reply of a slot read: its index in the request, the user, the `HGETALL`.
type Reply = (usize, UserId, Value);

/// A slot read: the slot, its mark (`0` when not read) and its users' replies.
type SlotRead = (u16, u64, Vec<Reply>);

/// A number stored as a string (`0` for none or anything else).
pub(super) fn number(value: &Value) -> u64 {
    match value {
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        Value::SimpleString(s) => s.parse().unwrap_or(0),
        Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// Runs the read transaction `pipe` (its errors ignored, so a user's `WRONGTYPE` comes back
/// as that user's reply) as [`Link::run`] does; a reply that is a redirection or a cluster
/// state (the transaction refused) counts as the attempt's error, so it is retried.
pub(super) async fn read_transaction(
    link: &Link,
    pipe: &redis::Pipeline,
    key: &str,
    what: &(dyn Fn() -> String + Sync),
) -> Result<Vec<Value>, ClusterError> {
    link.run(
        what,
        Some(slot(key.as_bytes())),
        Some(key),
        |mut conn| async move {
            let values: Vec<Value> = pipe.query_async(&mut conn).await?;
            for value in &values {
                if let Value::ServerError(e) = value {
                    let error = redis::RedisError::from(e.clone());
                    if cause(&error).is_some() {
                        return Err(error);
                    }
                }
            }
            Ok(values)
        },
    )
    .await
}

impl RedisClusterCache {
    /// Reads `users` (one `MULTI`/`EXEC` of `HGETALL`s and the slot's mark per slot, the
    /// slots concurrently) between two reads of the watermark (the first together with
    /// the expected marks of those slots), and says whether they are one state of the
    /// cache (see [`ClusterSnapshot::consistent`]) and which are behind their slot's
    /// expected mark (see [`ClusterSnapshot::behind`]).
    pub async fn snapshot(&self, users: &[UserId]) -> Result<ClusterSnapshot, CacheError> {
        let mut slots: Vec<u16> = users.iter().map(|u| slot(self.key(u).as_bytes())).collect();
        slots.sort_unstable();
        slots.dedup();
        let (before, expected) = self.read_watermark_and_expected(&slots).await?;
        let read = self.read_marked(users, true).await?;
        let after = self.read_watermark().await?;
        let moved = before != after;
        let lost: Vec<u16> = read
            .marks
            .iter()
            .filter(|(s, mark)| slots.binary_search(s).is_ok_and(|i| expected[i] > *mark))
            .map(|(s, _)| *s)
            .collect();
        let behind: Vec<UserId> = users
            .iter()
            .filter(|u| lost.contains(&slot(self.key(u).as_bytes())))
            .copied()
            .collect();
        let covered = before.map(|(_, generation)| generation);
        let consistent = !moved
            && behind.is_empty()
            && covered.is_some_and(|covered| {
                read.entries
                    .iter()
                    .flatten()
                    .all(|(_, generation)| generation.unwrap_or(0) <= covered)
            });
        Ok(ClusterSnapshot {
            entries: read
                .entries
                .into_iter()
                .map(|r| r.map(|(e, _)| e))
                .collect(),
            watermark: (!moved).then_some(before.map(|(block, _)| block)).flatten(),
            consistent,
            behind,
        })
    }

    /// The watermark and the expected mark of each of `slots` (`0`: none), in one
    /// transaction of the watermark's slot.
    async fn read_watermark_and_expected(
        &self,
        slots: &[u16],
    ) -> Result<(Option<(StateRef, u64)>, Vec<u64>), CacheError> {
        let key = self.watermark_key();
        let mut pipe = redis::Pipeline::new();
        pipe.atomic().get(&key);
        if !slots.is_empty() {
            pipe.cmd("HMGET").arg(self.expected_marks_key()).arg(slots);
        }
        let what = || format!("get {key} and the expected slot marks");
        let values = read_transaction(&self.link, &pipe, &key, &what)
            .await
            .map_err(cluster(what()))?;
        let watermark = match values.first() {
            Some(Value::Nil) | None => None,
            Some(Value::BulkString(b)) => Some(parse_watermark(&key, &String::from_utf8_lossy(b))?),
            Some(Value::SimpleString(s)) => Some(parse_watermark(&key, s)?),
            Some(other) => {
                return Err(CacheError::Backend {
                    backend: BACKEND,
                    operation: format!("decode {key}"),
                    source: format!("{other:?} is not a string").into(),
                });
            }
        };
        let expected = match values.get(1) {
            Some(Value::Array(items)) if items.len() == slots.len() => {
                items.iter().map(number).collect()
            }
            _ => vec![0; slots.len()],
        };
        Ok((watermark, expected))
    }

    /// The entries of `users` in order, each with its generation (`None` for an entry
    /// without one, written by the standalone cache).
    pub(super) async fn read_entries(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<(CachedCollateral, Option<u64>)>>, CacheError> {
        Ok(self.read_marked(users, false).await?.entries)
    }

    /// The entries of `users` and, if `with_marks`, the marks of their slots, each slot's
    /// read in one transaction.
    async fn read_marked(&self, users: &[UserId], with_marks: bool) -> Result<Read, CacheError> {
        let indexed = by_slot(users.iter().copied().enumerate(), |(_, u)| self.key(u));
        let replies: Vec<Result<SlotRead, CacheError>> = futures::stream::iter(indexed)
            .map(|group| {
                let mut pipe = redis::Pipeline::with_capacity(group.len() + 1);
                pipe.atomic().ignore_errors();
                for (_, user) in &group {
                    pipe.cmd("HGETALL").arg(self.key(user));
                }
                let link = &self.link;
                let key = self.key(&group[0].1);
                let slot = slot(key.as_bytes());
                if with_marks {
                    pipe.get(self.slot_mark_key(slot));
                }
                let replies = group.len() + usize::from(with_marks);
                async move {
                    let operation = format!("get {} entries of one slot", group.len());
                    let what = || operation.clone();
                    let mut values = read_transaction(link, &pipe, &key, &what)
                        .await
                        .map_err(cluster(operation.clone()))?;
                    if values.len() != replies {
                        return Err(CacheError::Backend {
                            backend: BACKEND,
                            operation,
                            source: format!("{} replies", values.len()).into(),
                        });
                    }
                    let mark = if with_marks {
                        values.pop().map_or(0, |v| number(&v))
                    } else {
                        0
                    };
                    Ok((
                        slot,
                        mark,
                        group
                            .into_iter()
                            .zip(values)
                            .map(|((i, user), value)| (i, user, value))
                            .collect(),
                    ))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut entries = vec![None; users.len()];
        let mut marks = Vec::new();
        for group in replies {
            let (slot, mark, group) = group?;
            if with_marks {
                marks.push((slot, mark));
            }
            for (i, user, value) in group {
                entries[i] = self.decode(user, &value)?;
            }
        }
        Ok(Read { entries, marks })
    }

    fn decode(
        &self,
        user: UserId,
        reply: &Value,
    ) -> Result<Option<(CachedCollateral, Option<u64>)>, CacheError> {
        if let Value::ServerError(e) = reply {
            if e.code() == "WRONGTYPE" {
                return Err(CacheError::Corrupt {
                    backend: BACKEND,
                    user,
                    detail: format!(
                        "{} is not a hash (an entry of an older layout?); the next put replaces it",
                        self.key(&user)
                    ),
                });
            }
            return Err(backend(format!("get {user}"))(e.clone().into()));
        }
        let (rest, generation) = take_generation(reply);
        Ok(decode_hash(user, &rest)?.map(|entry| (entry, generation)))
    }
}
