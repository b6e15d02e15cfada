//! Reads of several users from a cluster, and whether they are one state of the cache.

use futures::StreamExt;
use redis::Value;

use super::error::ClusterError;
use super::link::{Link, cause};
use super::slot::slot;
use super::slot::take_generation;
use super::{IN_FLIGHT, RedisClusterCache, by_slot, cluster};
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
    /// `false` while a write is under way (or failed half-way, until the next watermark):
    /// read again, or read the store.
    pub consistent: bool,
}

/// One user's reply of a slot read: its index in the request, the user, the `HGETALL`.
type Reply = (usize, UserId, Value);

/// Runs the read transaction `pipe` (its errors ignored, so a user's `WRONGTYPE` comes back
/// as that user's reply) as [`Link::run`] does; a reply that is a redirection or a cluster
/// state (the transaction refused) counts as the attempt's error, so it is retried.
async fn read_transaction(
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
    /// Reads `users` (one `MULTI`/`EXEC` of `HGETALL`s per slot, the slots concurrently)
    /// between two reads of the watermark, and says whether they are one state of the cache
    /// (see [`ClusterSnapshot::consistent`]).
    pub async fn snapshot(&self, users: &[UserId]) -> Result<ClusterSnapshot, CacheError> {
        let before = self.read_watermark().await?;
        let read = self.read_entries(users).await?;
        let after = self.read_watermark().await?;
        let moved = before != after;
        let covered = before.map(|(_, generation)| generation);
        let consistent = !moved
            && covered.is_some_and(|covered| {
                read.iter()
                    .flatten()
                    .all(|(_, generation)| generation.unwrap_or(0) <= covered)
            });
        Ok(ClusterSnapshot {
            entries: read.into_iter().map(|r| r.map(|(e, _)| e)).collect(),
            watermark: (!moved).then_some(before.map(|(block, _)| block)).flatten(),
            consistent,
        })
    }

    /// The entries of `users` in order, each with its generation (`None` for an entry
    /// without one, written by the standalone cache).
    pub(super) async fn read_entries(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<(CachedCollateral, Option<u64>)>>, CacheError> {
        let indexed = by_slot(users.iter().copied().enumerate(), |(_, u)| self.key(u));
        let replies: Vec<Result<Vec<Reply>, CacheError>> = futures::stream::iter(indexed)
            .map(|group| {
                let mut pipe = redis::Pipeline::with_capacity(group.len());
                pipe.atomic().ignore_errors();
                for (_, user) in &group {
                    pipe.cmd("HGETALL").arg(self.key(user));
                }
                let link = &self.link;
                let key = self.key(&group[0].1);
                async move {
                    let operation = format!("get {} entries of one slot", group.len());
                    let what = || operation.clone();
                    let values = read_transaction(link, &pipe, &key, &what)
                        .await
                        .map_err(cluster(operation.clone()))?;
                    if values.len() != group.len() {
                        return Err(CacheError::Backend {
                            backend: BACKEND,
                            operation,
                            source: format!("{} replies", values.len()).into(),
                        });
                    }
                    Ok(group
                        .into_iter()
                        .zip(values)
                        .map(|((i, user), value)| (i, user, value))
                        .collect())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut out = vec![None; users.len()];
        for group in replies {
            for (i, user, value) in group? {
                out[i] = self.decode(user, &value)?;
            }
        }
        Ok(out)
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
