//! [`RedisClusterChainCache`]: one chain's cache on a Redis Cluster in the multi-chain
//! layout of [`RedisChainCache`](crate::cache::RedisChainCache) (every chain of a user in
//! the user's one hash), with the cluster cache's generations and per-slot marks kept per
//! chain.

use async_trait::async_trait;
use futures::StreamExt;
use redis::AsyncCommands;

use super::chain_read::Keys;
use super::fan_out::Block;
use super::slot::slot;
use super::{IN_FLIGHT, RedisClusterCache, SNAPSHOT_ATTEMPTS, by_slot, cluster, transact};
use crate::cache::redis::chain_field;
use crate::chains::ChainId;
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

/// One chain's collateral cache on a Redis Cluster, sharing every user's hash with the
/// other chains ([`RedisClusterCache::for_chain`]): the layout of
/// [`RedisChainCache`](crate::cache::RedisChainCache) with what the cluster cache adds,
/// per chain.
///
/// | key | value |
/// |---|---|
/// | `{<prefix>:0x<user>}` field `c<chain>` | the chain's entry, `<totals>;0x<asset>=<value>;…` (as `RedisChainCache` writes it) |
/// | `{<prefix>:0x<user>}` field `g<chain>` | the generation of the chain's write that stored it |
/// | `{<prefix>}:~watermark:c<chain>` | the chain's watermark, `number\|0x<hash>\|finalized\|<generation>` |
/// | `{<prefix>}:~gen:c<chain>` | the chain's write counter |
/// | `{<prefix>:~s<n>}:c<chain>` | the chain's mark of the slot of its hash tag (the single-chain mark key's, [`RedisClusterCache::slot_mark_key`]): the generation of the chain's last write there |
/// | `{<prefix>}:~slots:c<chain>` | the chain's expected slot marks, hash `slot → generation` |
///
/// The contract is the cluster cache's ([`RedisClusterCache`]), for each chain on its own:
///
/// - **Per user, atomic**: a write sets this chain's two fields of each user with one
///   `HSET`, the users of a slot in one `MULTI`/`EXEC` with the chain's mark of the slot;
///   other chains' fields, watermarks and marks are never touched, so the watchers of
///   several chains write the same hashes without coordinating, and a reorg of one chain
///   rewrites only its fields.
/// - **Across users, not atomic**: slots are written in per-node pipelines, then the
///   chain's watermark and expected marks in one transaction, once every slot succeeded.
/// - **Reads are checked**: [`snapshot`](Self::snapshot),
///   [`get_with_watermark`](CollateralCache::get_with_watermark) and
///   [`get_many`](CollateralCache::get_many) read as the cluster cache's do, against this
///   chain's watermark and marks; a slot that lost a write of this chain (a master's death
///   before its replica received it) reads as behind for this chain only.
/// - [`MultiChainCache::redis_cluster`](crate::chains::MultiChainCache::redis_cluster)
///   reads a user's every chain in three round trips and says, chain by chain, whether
///   the entry is current.
///
/// A prefix holds either this layout or the single-chain one of [`RedisClusterCache`]
/// (fields `~total`, `~gen`, `0x<asset>`; its `{<prefix>}:~watermark` and marks): use a
/// new prefix for several chains. Sessions are not kept (as in the single-chain cluster
/// cache).
#[derive(Clone)]
pub struct RedisClusterChainCache {
    base: RedisClusterCache,
    chain: ChainId,
    keys: Keys,
}

impl std::fmt::Debug for RedisClusterChainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterChainCache")
            .field("prefix", &self.base.prefix)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl RedisClusterCache {
    /// The cache of `chain` in the multi-chain layout over the same connection and prefix
    /// (see [`RedisClusterChainCache`]). The single-chain methods of `self` are unchanged.
    pub fn for_chain(&self, chain: ChainId) -> RedisClusterChainCache {
        RedisClusterChainCache {
            keys: Keys::new(&self.prefix, chain),
            base: self.clone(),
            chain,
        }
    }
}

impl RedisClusterChainCache {
    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.base.prefix
    }

    /// The cluster cache this chain's cache shares its connection with.
    pub fn cluster(&self) -> &RedisClusterCache {
        &self.base
    }

    /// The field of this chain's entry in every user's hash: `c<chain id>`.
    pub fn field(&self) -> &str {
        &self.keys.field
    }

    /// The field of the generation of this chain's entry: `g<chain id>`.
    pub fn generation_field(&self) -> &str {
        &self.keys.generation_field
    }

    /// The key of `user`'s hash (shared by every chain): `{<prefix>:0x<user>}`.
    pub fn key(&self, user: &UserId) -> String {
        self.base.key(user)
    }

    /// The key of this chain's watermark: `{<prefix>}:~watermark:c<chain id>`, value
    /// `number|0x<hash>|finalized|<generation>`.
    pub fn watermark_key(&self) -> &str {
        &self.keys.watermark
    }

    /// The key of this chain's mark of `slot`: `{<prefix>:~s<n>}:c<chain id>` (in `slot`).
    pub fn slot_mark_key(&self, slot: u16) -> String {
        self.keys.slot_mark(&self.base, slot)
    }

    /// The key of this chain's expected slot marks: `{<prefix>}:~slots:c<chain id>`.
    pub fn expected_marks_key(&self) -> &str {
        &self.keys.expected
    }

    /// The key of this chain's write counter: `{<prefix>}:~gen:c<chain id>`.
    pub fn generation_key(&self) -> &str {
        &self.keys.generation
    }

    /// The chain's keys and fields.
    pub(super) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The `MULTI`/`EXEC` of one slot's users: this chain's mark of the slot and one
    /// `HSET` of this chain's entry and generation per user.
    fn slot_transaction(&self, entries: &[&CachedCollateral], generation: &str) -> redis::Pipeline {
        let mut pipe = redis::Pipeline::with_capacity(1 + entries.len());
        pipe.atomic();
        for (i, e) in entries.iter().enumerate() {
            let key = self.key(&e.user);
            if i == 0 {
                pipe.cmd("SET")
                    .arg(self.slot_mark_key(slot(key.as_bytes())))
                    .arg(generation)
                    .ignore();
            }
            pipe.cmd("HSET")
                .arg(key)
                .arg(&self.keys.field)
                .arg(chain_field::encode(e))
                .arg(&self.keys.generation_field)
                .arg(generation)
                .ignore();
        }
        pipe
    }
}

#[async_trait]
impl CollateralCache for RedisClusterChainCache {
    /// Per-slot transactions, then the chain's watermark: see the
    /// [type docs](RedisClusterChainCache).
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        if entries.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let generation_key = self.generation_key().to_owned();
        let generation: u64 = self
            .base
            .command("increment", &generation_key, |mut c| {
                let key = generation_key.clone();
                async move { c.incr(&key, 1).await }
            })
            .await?;
        let stamp = generation.to_string();
        let blocks: Vec<Block> = by_slot(entries.iter(), |e| self.key(&e.user))
            .iter()
            .map(|group| {
                let key = self.key(&group[0].user);
                Block {
                    slot: slot(key.as_bytes()),
                    transaction: self.slot_transaction(group, &stamp),
                    key,
                }
            })
            .collect();
        let slots = blocks.len();
        let written: Vec<u16> = blocks.iter().map(|b| b.slot).collect();
        let results = self.base.write_blocks(blocks).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(cluster(format!(
                "put {} entries of {} ({failed} of {slots} slot transactions failed, the others are written; the watermark is unchanged)",
                entries.len(),
                self.chain
            ))(error));
        }
        let mut last = redis::Pipeline::new();
        last.atomic();
        if let Some(w) = watermark {
            last.set(self.watermark_key(), watermark_text(&w, generation))
                .ignore();
        }
        if !written.is_empty() {
            let mut hset = redis::cmd("HSET");
            hset.arg(self.expected_marks_key());
            for s in &written {
                hset.arg(*s).arg(generation);
            }
            last.add_command(hset).ignore();
        }
        if !last.is_empty() {
            let key = self.watermark_key();
            let what = || format!("set {key} and the expected slot marks");
            transact::<()>(&self.base.link, &last, key, &what)
                .await
                .map_err(cluster(what()))?;
        }
        Ok(())
    }

    /// One `MULTI`/`EXEC` of the `HMGET` of this chain's two fields.
    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        Ok(self
            .read(&[user], false)
            .await?
            .entries
            .pop()
            .flatten()
            .map(|(e, _)| e))
    }

    /// The first consistent [`snapshot`](RedisClusterChainCache::snapshot) of three, else
    /// the last one read (weaker than the trait's "one state", as the cluster cache's).
    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        let mut last = None;
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let snapshot = self.snapshot(users).await?;
            if snapshot.consistent {
                return Ok(snapshot.entries);
            }
            last = Some(snapshot.entries);
        }
        Ok(last.unwrap_or_default())
    }

    /// The entry and this chain's watermark from one
    /// [`snapshot`](RedisClusterChainCache::snapshot): the watermark is `None` unless the
    /// snapshot is consistent (so the entry is never current as of a watermark it is not
    /// complete for).
    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let snapshot = self.snapshot(&[user]).await?;
        let watermark = snapshot.watermark.filter(|_| snapshot.consistent);
        Ok((snapshot.entries.into_iter().next().flatten(), watermark))
    }

    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        let read = self.base.chains_watermarks(&[&self.keys]).await?;
        Ok(read.into_iter().next().flatten().map(|(w, _)| w))
    }

    /// Deletes this chain's watermark and expected marks, then this chain's two fields of
    /// every user (`KEYS` on each master, as the cluster cache's
    /// [`clear`](CollateralCache::clear); a hash whose last field goes is removed by
    /// Redis). Other chains' fields stay; the counter and the slot marks stay, so
    /// generations keep increasing.
    async fn clear(&self) -> Result<(), CacheError> {
        let key = self.watermark_key().to_owned();
        let expected = self.expected_marks_key().to_owned();
        self.base
            .command("delete", &key, |mut c| {
                let keys = [key.clone(), expected.clone()];
                async move { c.del::<_, ()>(&keys).await }
            })
            .await?;
        let found = self.base.entry_keys().await?;
        let fields = [self.keys.field.clone(), self.keys.generation_field.clone()];
        let results: Vec<Result<(), CacheError>> =
            futures::stream::iter(by_slot(found, String::clone))
                .map(|group| {
                    let fields = &fields;
                    async move {
                        let mut pipe = redis::Pipeline::with_capacity(group.len());
                        pipe.atomic();
                        for key in &group {
                            pipe.cmd("HDEL").arg(key).arg(fields).ignore();
                        }
                        let what = || {
                            format!(
                                "delete {} of {} keys of the slot of {}",
                                fields[0],
                                group.len(),
                                group[0]
                            )
                        };
                        transact::<()>(&self.base.link, &pipe, &group[0], &what)
                            .await
                            .map_err(cluster(what()))
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        results.into_iter().collect()
    }
}

/// A watermark as the cluster stores it: `number|0x<hash>|finalized|generation`.
pub(super) fn watermark_text(w: &StateRef, generation: u64) -> String {
    let finalized = w
        .finalized
        .map_or_else(|| "-".to_owned(), |f| f.to_string());
    format!("{}|{}|{finalized}|{generation}", w.head.number, w.head.hash)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::super::parse_watermark;
    use super::*;
    use crate::model::BlockRef;

    #[test]
    fn watermarks_round_trip_through_the_cluster_parser() {
        for finalized in [None, Some(3)] {
            let w = StateRef {
                head: BlockRef {
                    number: 9,
                    hash: B256::repeat_byte(7),
                },
                finalized,
            };
            let text = watermark_text(&w, 41);
            assert_eq!(parse_watermark("k", &text).unwrap(), (w, 41));
        }
    }
}
