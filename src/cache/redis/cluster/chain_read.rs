//! Reads of the multi-chain layout on a cluster: one chain's snapshot of several users
//! ([`RedisClusterChainCache::snapshot`]) and every chain of one user at once
//! ([`RedisClusterCache::get_chains`]), each chain's entries checked against that chain's
//! watermark and slot marks as the single-chain cluster cache checks its own.

use futures::StreamExt;
use redis::Value;

use super::chain::RedisClusterChainCache;
use super::slot::slot;
use super::snapshot::{Read, number, read_transaction};
use super::{ClusterSnapshot, IN_FLIGHT, RedisClusterCache, by_slot, cluster, parse_watermark};
use crate::cache::redis::chain::{ChainEntries, hash_pairs, watermark_key};
use crate::cache::redis::config::backend;
use crate::cache::redis::{BACKEND, chain_field};
use crate::chains::ChainId;
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};

/// A chain's watermark with the generation it covers.
type Mark = Option<(StateRef, u64)>;

/// The keys and fields of one chain in the cluster's multi-chain layout (see
/// [`RedisClusterChainCache`]).
#[derive(Clone, Debug)]
pub(super) struct Keys {
    chain: ChainId,
    /// `c<chain>`: the entry's field.
    pub(super) field: String,
    /// `g<chain>`: the entry's generation field.
    pub(super) generation_field: String,
    /// `{<prefix>}:~watermark:c<chain>`.
    pub(super) watermark: String,
    /// `{<prefix>}:~slots:c<chain>`.
    pub(super) expected: String,
    /// `{<prefix>}:~gen:c<chain>`.
    pub(super) generation: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, chain: ChainId) -> Self {
        Self {
            chain,
            field: chain_field::field(chain),
            generation_field: chain_field::generation_field(chain),
            watermark: watermark_key(prefix, chain),
            expected: format!("{{{prefix}}}:~slots:c{}", chain.0),
            generation: format!("{{{prefix}}}:~gen:c{}", chain.0),
        }
    }

    /// The chain's mark of `slot`: the single-chain mark key of the slot, `:c<chain>`
    /// appended (its hash tag, so its slot, unchanged).
    pub(super) fn slot_mark(&self, base: &RedisClusterCache, slot: u16) -> String {
        format!("{}:c{}", base.slot_mark_key(slot), self.chain.0)
    }
}

/// What a check of entries read between two reads of a chain's watermark says.
struct Verdict {
    /// The watermark moved while the entries were read.
    moved: bool,
    /// The slots read whose mark is below the expected one (a write of them was lost).
    lost: Vec<u16>,
    /// One state of the chain's cache, as of the first watermark: it did not move, no slot
    /// lost a write, and no entry is of a later generation than the watermark covers.
    consistent: bool,
}

/// Checks entries (their `generations`) and the `marks` of their slots read between the
/// watermarks `before` and `after`, given the `expected` mark of each of `slots`
/// (ascending), as [`RedisClusterCache::snapshot`] does.
fn assess(
    before: Mark,
    after: Mark,
    slots: &[u16],
    expected: &[u64],
    marks: &[(u16, u64)],
    mut generations: impl Iterator<Item = Option<u64>>,
) -> Verdict {
    let moved = before != after;
    let lost: Vec<u16> = marks
        .iter()
        .filter(|(s, mark)| {
            slots
                .binary_search(s)
                .is_ok_and(|i| expected.get(i).is_some_and(|e| e > mark))
        })
        .map(|(s, _)| *s)
        .collect();
    let consistent = !moved
        && lost.is_empty()
        && before.is_some_and(|(_, covered)| generations.all(|g| g.unwrap_or(0) <= covered));
    Verdict {
        moved,
        lost,
        consistent,
    }
}

/// A watermark reply of `key` (`None`: nil).
fn decode_mark(key: &str, value: &Value) -> Result<Mark, CacheError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(b) => parse_watermark(key, &String::from_utf8_lossy(b)).map(Some),
        Value::SimpleString(s) => parse_watermark(key, s).map(Some),
        other => Err(CacheError::Backend {
            backend: BACKEND,
            operation: format!("decode {key}"),
            source: format!("{other:?} is not a string").into(),
        }),
    }
}

/// A reply that should be a transaction's `count` values.
fn short(operation: String, count: usize, values: &[Value]) -> Result<(), CacheError> {
    if values.len() == count {
        return Ok(());
    }
    Err(CacheError::Backend {
        backend: BACKEND,
        operation,
        source: format!("{} replies, expected {count}", values.len()).into(),
    })
}

/// A user's reply that is an error: [`CacheError::Corrupt`] for a key that is not a hash.
fn user_error(base: &RedisClusterCache, user: UserId, e: &redis::ServerError) -> CacheError {
    if e.code() == "WRONGTYPE" {
        return CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail: format!(
                "{} is not a hash (an entry of an older layout?); the next put replaces it",
                base.key(&user)
            ),
        };
    }
    backend(format!("get {user}"))(e.clone().into())
}

impl RedisClusterCache {
    /// Each of `chains`' watermark and expected mark of each of `slots`, in one transaction
    /// of the watermarks' slot (every chain's are in `{<prefix>}`'s).
    async fn chains_expected(
        &self,
        chains: &[&Keys],
        slots: &[u16],
    ) -> Result<Vec<(Mark, Vec<u64>)>, CacheError> {
        let Some(first) = chains.first() else {
            return Ok(Vec::new());
        };
        let mut pipe = redis::Pipeline::new();
        pipe.atomic();
        for k in chains {
            pipe.get(&k.watermark);
            if !slots.is_empty() {
                pipe.cmd("HMGET").arg(&k.expected).arg(slots);
            }
        }
        let what = || {
            format!(
                "get {} and the expected slot marks of {} chains",
                first.watermark,
                chains.len()
            )
        };
        let values = read_transaction(&self.link, &pipe, &first.watermark, &what)
            .await
            .map_err(cluster(what()))?;
        let per = 1 + usize::from(!slots.is_empty());
        short(what(), per * chains.len(), &values)?;
        chains
            .iter()
            .zip(values.chunks_exact(per))
            .map(|(k, v)| {
                let expected = match v.get(1) {
                    Some(Value::Array(items)) if items.len() == slots.len() => {
                        items.iter().map(number).collect()
                    }
                    _ => vec![0; slots.len()],
                };
                Ok((decode_mark(&k.watermark, &v[0])?, expected))
            })
            .collect()
    }

    /// Each of `chains`' watermark, in one transaction.
    pub(super) async fn chains_watermarks(
        &self,
        chains: &[&Keys],
    ) -> Result<Vec<Mark>, CacheError> {
        let Some(first) = chains.first() else {
            return Ok(Vec::new());
        };
        let mut pipe = redis::Pipeline::new();
        pipe.atomic();
        for k in chains {
            pipe.get(&k.watermark);
        }
        let what = || format!("get {} of {} chains", first.watermark, chains.len());
        let values = read_transaction(&self.link, &pipe, &first.watermark, &what)
            .await
            .map_err(cluster(what()))?;
        short(what(), chains.len(), &values)?;
        chains
            .iter()
            .zip(&values)
            .map(|(k, v)| decode_mark(&k.watermark, v))
            .collect()
    }

    /// `user`'s entries of every chain of `chains` (written by
    /// [`for_chain`](Self::for_chain) caches) and each chain's watermark where the entry is
    /// current as of it, in three round trips: the chains' watermarks with their expected
    /// marks of the user's slot (one transaction), the user's hash with each chain's mark
    /// of the slot (one transaction), the watermarks again. A chain's watermark is `None`
    /// when it moved meanwhile, when the slot lost a write of that chain, or when the
    /// chain's entry is newer than the watermark covers (see [`RedisClusterChainCache`]);
    /// its entry is given in any case. Fields of chains not asked for are skipped; a field
    /// that is neither `c<chain id>` nor `g<chain id>` (a single-chain entry on this
    /// prefix) is [`CacheError::Corrupt`].
    pub async fn get_chains(
        &self,
        user: UserId,
        chains: &[ChainId],
    ) -> Result<ChainEntries, CacheError> {
        let keys: Vec<Keys> = chains.iter().map(|c| Keys::new(&self.prefix, *c)).collect();
        let keys: Vec<&Keys> = keys.iter().collect();
        let key = self.key(&user);
        let s = slot(key.as_bytes());
        let before = self.chains_expected(&keys, &[s]).await?;
        let mut pipe = redis::Pipeline::with_capacity(1 + keys.len());
        pipe.atomic().ignore_errors().cmd("HGETALL").arg(&key);
        for k in &keys {
            pipe.get(k.slot_mark(self, s));
        }
        let what = || format!("get {user} of {} chains", chains.len());
        let values = read_transaction(&self.link, &pipe, &key, &what)
            .await
            .map_err(cluster(what()))?;
        short(what(), 1 + keys.len(), &values)?;
        let hash = match &values[0] {
            Value::ServerError(e) => return Err(user_error(self, user, e)),
            v => v,
        };
        let mut entries: Vec<Option<CachedCollateral>> = vec![None; chains.len()];
        let mut generations: Vec<Option<u64>> = vec![None; chains.len()];
        for (field, value) in hash_pairs(user, hash)? {
            let (chain, is_entry) = match (
                chain_field::chain_of(field),
                chain_field::chain_of_generation(field),
            ) {
                (Some(c), _) => (c, true),
                (None, Some(c)) => (c, false),
                (None, None) => {
                    return Err(CacheError::Corrupt {
                        backend: BACKEND,
                        user,
                        detail: format!(
                            "{key} field {:?} is not c<chain id> nor g<chain id> (a single-chain entry on a multi-chain prefix?)",
                            String::from_utf8_lossy(field)
                        ),
                    });
                }
            };
            let Some(i) = chains.iter().position(|c| *c == chain) else {
                continue;
            };
            if is_entry {
                entries[i] = chain_field::decode(user, chain, value)?;
            } else {
                generations[i] = std::str::from_utf8(value).ok().and_then(|g| g.parse().ok());
            }
        }
        let after = self.chains_watermarks(&keys).await?;
        let mut out = ChainEntries::default();
        for (i, chain) in chains.iter().enumerate() {
            let (mark, expected) = &before[i];
            let verdict = assess(
                *mark,
                after[i],
                &[s],
                expected,
                &[(s, number(&values[1 + i]))],
                entries[i].as_ref().map(|_| generations[i]).into_iter(),
            );
            let watermark = mark.filter(|_| verdict.consistent).map(|(w, _)| w);
            out.entries.insert(*chain, entries[i].take());
            out.watermarks.insert(*chain, watermark);
        }
        Ok(out)
    }
}

impl RedisClusterChainCache {
    /// Reads `users` of this chain (per slot one `MULTI`/`EXEC` of an `HMGET` of the
    /// chain's two fields per user and the chain's mark of the slot, the slots
    /// concurrently) between two reads of the chain's watermark (the first with its
    /// expected marks of those slots), and says whether they are one state of this chain's
    /// cache and which users' slots lost a write of this chain, as
    /// [`RedisClusterCache::snapshot`] does.
    pub async fn snapshot(&self, users: &[UserId]) -> Result<ClusterSnapshot, CacheError> {
        let mut slots: Vec<u16> = users.iter().map(|u| slot(self.key(u).as_bytes())).collect();
        slots.sort_unstable();
        slots.dedup();
        let base = self.cluster();
        let keys = [self.keys()];
        let (before, expected) = base
            .chains_expected(&keys, &slots)
            .await?
            .pop()
            .unwrap_or_default();
        let read = self.read(users, true).await?;
        let after = base.chains_watermarks(&keys).await?.pop().flatten();
        let verdict = assess(
            before,
            after,
            &slots,
            &expected,
            &read.marks,
            read.entries.iter().flatten().map(|(_, g)| *g),
        );
        let behind: Vec<UserId> = users
            .iter()
            .filter(|u| verdict.lost.contains(&slot(self.key(u).as_bytes())))
            .copied()
            .collect();
        Ok(ClusterSnapshot {
            entries: read
                .entries
                .into_iter()
                .map(|r| r.map(|(e, _)| e))
                .collect(),
            watermark: (!verdict.moved).then_some(before.map(|(w, _)| w)).flatten(),
            consistent: verdict.consistent,
            behind,
        })
    }

    /// The entries of `users` in order with their generations and, if `with_marks`, this
    /// chain's mark of each slot read.
    pub(super) async fn read(
        &self,
        users: &[UserId],
        with_marks: bool,
    ) -> Result<Read, CacheError> {
        let base = self.cluster();
        let keys = self.keys();
        let groups = by_slot(users.iter().copied().enumerate(), |(_, u)| self.key(u));
        type SlotRead = (u16, u64, Vec<(usize, UserId, Value)>);
        let replies: Vec<Result<SlotRead, CacheError>> = futures::stream::iter(groups)
            .map(|group| {
                let key = self.key(&group[0].1);
                let s = slot(key.as_bytes());
                let mut pipe = redis::Pipeline::with_capacity(group.len() + 1);
                pipe.atomic().ignore_errors();
                for (_, user) in &group {
                    pipe.cmd("HMGET")
                        .arg(self.key(user))
                        .arg(&keys.field)
                        .arg(&keys.generation_field);
                }
                if with_marks {
                    pipe.get(keys.slot_mark(base, s));
                }
                let count = group.len() + usize::from(with_marks);
                async move {
                    let operation = format!(
                        "get {} entries of {} of one slot",
                        group.len(),
                        self.chain()
                    );
                    let what = || operation.clone();
                    let mut values = read_transaction(&base.link, &pipe, &key, &what)
                        .await
                        .map_err(cluster(operation.clone()))?;
                    short(operation, count, &values)?;
                    let mark = if with_marks {
                        values.pop().map_or(0, |v| number(&v))
                    } else {
                        0
                    };
                    let users = group
                        .into_iter()
                        .zip(values)
                        .map(|((i, user), value)| (i, user, value))
                        .collect();
                    Ok((s, mark, users))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut entries = vec![None; users.len()];
        let mut marks = Vec::new();
        for group in replies {
            let (s, mark, group) = group?;
            if with_marks {
                marks.push((s, mark));
            }
            for (i, user, value) in group {
                entries[i] = self.decode(user, &value)?;
            }
        }
        Ok(Read { entries, marks })
    }

    /// A user's `HMGET` reply of the chain's entry and generation.
    fn decode(
        &self,
        user: UserId,
        reply: &Value,
    ) -> Result<Option<(CachedCollateral, Option<u64>)>, CacheError> {
        let pair = match reply {
            Value::ServerError(e) => return Err(user_error(self.cluster(), user, e)),
            Value::Array(pair) if pair.len() == 2 => pair,
            other => {
                return Err(CacheError::Corrupt {
                    backend: BACKEND,
                    user,
                    detail: format!("HMGET of {} returned {other:?}", self.field()),
                });
            }
        };
        let generation = match &pair[1] {
            Value::Nil => None,
            v => Some(number(v)),
        };
        Ok(chain_field::decode_reply(user, self.chain(), &pair[0])?.map(|e| (e, generation)))
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::*;
    use crate::model::BlockRef;

    fn mark(n: u64, generation: u64) -> Mark {
        Some((
            StateRef {
                head: BlockRef {
                    number: n,
                    hash: B256::repeat_byte(n as u8),
                },
                finalized: None,
            },
            generation,
        ))
    }

    #[test]
    fn a_read_is_consistent_only_if_nothing_moved_lost_or_ran_ahead() {
        let ok = assess(
            mark(5, 9),
            mark(5, 9),
            &[3, 7],
            &[9, 8],
            &[(3, 9), (7, 8)],
            [Some(9), None].into_iter(),
        );
        assert!(ok.consistent && !ok.moved && ok.lost.is_empty());
        let moved = assess(
            mark(5, 9),
            mark(6, 10),
            &[3],
            &[9],
            &[(3, 9)],
            [Some(9)].into_iter(),
        );
        assert!(moved.moved && !moved.consistent);
        let lost = assess(
            mark(5, 9),
            mark(5, 9),
            &[3, 7],
            &[9, 8],
            &[(3, 9), (7, 6)],
            [Some(9)].into_iter(),
        );
        assert_eq!(lost.lost, vec![7]);
        assert!(!lost.consistent);
        let ahead = assess(
            mark(5, 9),
            mark(5, 9),
            &[3],
            &[9],
            &[(3, 10)],
            [Some(10)].into_iter(),
        );
        assert!(!ahead.consistent && ahead.lost.is_empty());
        let none = assess(None, None, &[3], &[0], &[(3, 0)], std::iter::empty());
        assert!(
            !none.consistent,
            "no watermark: nothing is current as of it"
        );
    }

    #[test]
    fn chain_keys_keep_their_slots() {
        let base_marks = super::super::slot_marks::SlotMarks::new("p");
        let k = Keys::new("p", ChainId(8453));
        assert_eq!(k.field, "c8453");
        assert_eq!(k.generation_field, "g8453");
        assert_eq!(k.watermark, "{p}:~watermark:c8453");
        assert_eq!(slot(k.expected.as_bytes()), slot(b"{p}:~watermark"));
        assert_eq!(slot(k.generation.as_bytes()), slot(b"{p}"));
        let mark = format!("{}:c8453", base_marks.key("p", 42));
        assert_eq!(slot(mark.as_bytes()), 42);
    }
}
