//! [`RedisClusterCache`]: the collateral cache on a Redis Cluster (feature `redis-cluster`).
//! The contract it keeps and the one it weakens are in `docs/redis.md` in the repository.

mod chain;
mod chain_read;
mod error;
mod fan_out;
mod link;
mod owners;
mod slot;
mod slot_marks;
mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use redis::AsyncCommands;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;

pub use self::chain::RedisClusterChainCache;
pub use self::error::ClusterError;
use self::fan_out::Block;
use self::link::Link;
use self::owners::SlotOwners;
use self::slot::{GENERATION, slot};
use self::slot_marks::SlotMarks;
pub use self::snapshot::ClusterSnapshot;
use super::BACKEND;
use super::config::{RedisCacheConfig, backend, check_prefix, redact_redis_url};
use super::layout::{
    ASSET_FIELD_LEN, MAX_TOTAL_LEN, MAX_VALUE_LEN, TOTAL, push_asset_field, push_asset_value,
    push_hex, push_total,
};
use crate::error::CacheError;
use crate::model::{BlockRef, CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

/// How many slot groups a write or a read has in flight at once (the connection multiplexes
/// them over one connection per node, so this is a pipelining depth, not a pool size).
const IN_FLIGHT: usize = 64;

/// The slot owners last read, with the number of the connection they were read on.
type KnownOwners = (u64, Arc<SlotOwners>);

/// How many times [`get_many`](CollateralCache::get_many) reads again to get a consistent
/// snapshot before it returns an inconsistent one.
const SNAPSHOT_ATTEMPTS: usize = 3;

/// Collateral cache on a Redis Cluster: the layout of
/// [`RedisCollateralCache`](super::RedisCollateralCache) (one hash per user, key
/// `{<prefix>:0x<user>}`, whose braces make the user the hash tag), plus a `~gen` field per
/// entry, and what the cluster allows of the trait's contract:
///
/// - **Per user, atomic**: a user's entry is one key, replaced by one `MULTI`/`EXEC`
///   (`UNLINK` + `HSET`) in its slot; a reader never sees half of a user's entry.
/// - **Across users, not atomic**: a [`write`](CollateralCache::write) groups its users per
///   hash slot, one transaction per slot; the transactions of the slots a master serves
///   go to it as one pipeline of `MULTI`…`EXEC` blocks, the masters in parallel, and a
///   block refused with a redirection is retried alone; another
///   reader may see some slots of a write before others. Each write first takes a number,
///   its *generation* (`INCR {<prefix>}:~gen`), and stamps every entry it writes with it.
/// - **Watermark after the entries**: the watermark key `{<prefix>}:~watermark` is
///   `number|0x<hash>|finalized|<generation>` (finalized `-` for none), set only once every slot of the write succeeded, so
///   every entry with a generation at or below it is complete as of that block.
/// - **And one per slot**: each slot transaction also sets its slot's mark
///   ([`slot_mark_key`](Self::slot_mark_key)) to the generation, and the watermark's
///   transaction records the generation of every slot written
///   ([`expected_marks_key`](Self::expected_marks_key)). A write a master acknowledged and
///   lost with its death (before its replica received it) leaves its slot's mark below the
///   recorded one: [`snapshot`](Self::snapshot) names the users of such a slot
///   ([`ClusterSnapshot::behind`]) and
///   [`get_with_watermark`](CollateralCache::get_with_watermark) gives their entries no
///   watermark, so a reader reads the store for them, and only for them.
/// - **Consistent reads are checked, not assumed**: [`snapshot`](Self::snapshot) reads the
///   watermark, the entries, and the watermark again; it is consistent (one state of the
///   cache, as of the watermark) when the watermark did not move and no entry is newer than
///   it. [`get_many`](CollateralCache::get_many) returns the first consistent snapshot of
///   three attempts, else the last one read.
///
/// A failed write may have written some slots; it is reported as
/// [`CacheError::Backend`] naming how many slot groups failed (its source a
/// [`ClusterError`]), and the watermark is left as it was (the watcher rewrites those users
/// on its next refresh). An operation refused with `MOVED`/`ASK` (also inside a
/// transaction's `EXECABORT`), or without an answer, is sent again after the client
/// refreshed its slot map, then on a new connection that reads the cluster's slots afresh
/// from the seed nodes; so failovers and resharding turn into failed writes for a moment,
/// not into a stopped cache.
#[derive(Clone)]
pub struct RedisClusterCache {
    link: Arc<Link>,
    prefix: String,
    /// The slot owners a write groups its transactions by, with the number of the
    /// connection they were read on (read again on a new connection or after a `MOVED`).
    owners: Arc<Mutex<Option<KnownOwners>>>,
    /// The key of each slot's mark (the watermark per slot).
    marks: Arc<SlotMarks>,
}

impl std::fmt::Debug for RedisClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisClusterCache {
    /// Connects to the cluster through any of `nodes` (e.g. `redis://127.0.0.1:7000`; the
    /// others are discovered) with keys under `prefix` and the default [`RedisCacheConfig`].
    pub async fn connect(nodes: &[String], prefix: &str) -> Result<Self, CacheError> {
        Self::connect_with(nodes, prefix, RedisCacheConfig::default()).await
    }

    /// [`connect`](Self::connect) with `config`'s timeouts and retries. A TLS root
    /// certificate is refused: the cluster cache does not support a private CA yet.
    pub async fn connect_with(
        nodes: &[String],
        prefix: &str,
        config: RedisCacheConfig,
    ) -> Result<Self, CacheError> {
        check_prefix(prefix)?;
        let target = nodes
            .iter()
            .map(|n| redact_redis_url(n))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(path) = &config.tls_root_cert {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("use the TLS root certificate {}", path.display()),
                source: "the Redis Cluster cache does not support a private CA".into(),
            });
        }
        let max_delay = u64::try_from(config.max_retry_delay.as_millis()).unwrap_or(u64::MAX);
        let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(config.connection_timeout)
            .response_timeout(config.response_timeout)
            .retries(u32::try_from(config.retries).unwrap_or(u32::MAX))
            .max_retry_wait(max_delay)
            .build()
            .map_err(backend(format!("open the cluster at {target}")))?;
        let open_timeout = config.connection_timeout + config.response_timeout;
        let link = Link::open(client, target.clone(), open_timeout)
            .await
            .map_err(cluster(format!("connect to the cluster at {target}")))?;
        Ok(Self {
            link: Arc::new(link),
            prefix: prefix.to_owned(),
            owners: Arc::default(),
            marks: Arc::new(SlotMarks::new(prefix)),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `user`'s hash: `{<prefix>:0x<lower-case hex address>}` (as the
    /// standalone cache's).
    pub fn key(&self, user: &UserId) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 45);
        key.push('{');
        key.push_str(&self.prefix);
        key.push_str(":0x");
        push_hex(user, &mut key);
        key.push('}');
        key
    }

    /// The key of the watermark: `{<prefix>}:~watermark`, value
    /// `number|0x<hash>|finalized|<generation>` (finalized `-` for none).
    pub fn watermark_key(&self) -> String {
        format!("{{{}}}:~watermark", self.prefix)
    }

    /// The key of `slot`'s mark, `{<prefix>:~s<n>}` (`n` chosen so that the key is in
    /// `slot`): the generation of the last write of that slot, set in the slot's own
    /// transaction, so a write the slot's master lost takes its mark with it.
    pub fn slot_mark_key(&self, slot: u16) -> String {
        self.marks.key(&self.prefix, slot)
    }

    /// The key of the expected slot marks, `{<prefix>}:~slots` (the watermark's slot): a
    /// hash `slot → generation` of the last write of each slot, set after every slot of
    /// the write succeeded, with the watermark. A slot whose mark is below it lost a write.
    pub fn expected_marks_key(&self) -> String {
        format!("{{{}}}:~slots", self.prefix)
    }

    /// The key of the write counter: `{<prefix>}:~gen` (the watermark's slot).
    pub fn generation_key(&self) -> String {
        format!("{{{}}}:~gen", self.prefix)
    }

    /// The cache's current connection, for other uses (e.g. administration in tests). It
    /// is replaced by a new one after persistent failures; ask again rather than keep it.
    pub fn connection(&self) -> ClusterConnection {
        self.link.current().1
    }

    /// How many times the connection was replaced by a new one (after persistent
    /// redirections or failures, see the type docs).
    pub fn reconnections(&self) -> u64 {
        self.link.current().0
    }

    /// `op` on the cluster, retried as [`Link::run`] does, for a plain command on `key`.
    async fn command<T, F, Fut>(&self, what: &str, key: &str, op: F) -> Result<T, CacheError>
    where
        F: Fn(ClusterConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let operation = || format!("{what} {key}");
        self.link
            .run(&operation, Some(slot(key.as_bytes())), Some(key), op)
            .await
            .map_err(cluster(operation()))
    }

    /// The watermark and the generation it covers.
    async fn read_watermark(&self) -> Result<Option<(StateRef, u64)>, CacheError> {
        let key = self.watermark_key();
        let raw: Option<String> = self
            .command("get", &key, |mut c| {
                let key = key.clone();
                async move { c.get(&key).await }
            })
            .await?;
        raw.map(|raw| parse_watermark(&key, &raw)).transpose()
    }

    /// The `MULTI`/`EXEC` replacing the entries of one slot's users, stamped `generation`.
    fn slot_transaction(&self, entries: &[&CachedCollateral], generation: &str) -> redis::Pipeline {
        let mut pipe = redis::Pipeline::with_capacity(1 + entries.len());
        pipe.atomic();
        let keys: Vec<String> = entries.iter().map(|e| self.key(&e.user)).collect();
        pipe.cmd("UNLINK").arg(&keys).ignore();
        if let Some(first) = keys.first() {
            pipe.cmd("SET")
                .arg(self.slot_mark_key(slot(first.as_bytes())))
                .arg(generation)
                .ignore();
        }
        let mut text = String::with_capacity(MAX_TOTAL_LEN);
        for (e, key) in entries.iter().zip(&keys) {
            let size = key.len() + TOTAL.len() + MAX_TOTAL_LEN + 32;
            let mut hset = redis::Cmd::with_capacity(
                6 + 2 * e.assets.len(),
                size + (ASSET_FIELD_LEN + MAX_VALUE_LEN) * e.assets.len(),
            );
            hset.arg("HSET")
                .arg(key.as_str())
                .arg(GENERATION)
                .arg(generation);
            text.clear();
            push_total(e, &mut text);
            hset.arg(TOTAL).arg(text.as_str());
            for (asset, v) in &e.assets {
                text.clear();
                push_asset_field(asset, &mut text);
                hset.arg(text.as_str());
                text.clear();
                push_asset_value(v, &mut text);
                hset.arg(text.as_str());
            }
            pipe.add_command(hset).ignore();
        }
        pipe
    }
}

/// The watermark as the cluster cache stores it: `number|0x<hash>|finalized|generation`.
fn parse_watermark(key: &str, raw: &str) -> Result<(StateRef, u64), CacheError> {
    let mut parts = raw.split('|');
    let parsed = (|| {
        let number = parts.next()?.parse().ok()?;
        let hash = parts.next()?.parse().ok()?;
        let finalized = match parts.next()? {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        let generation = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((
            StateRef {
                head: BlockRef { number, hash },
                finalized,
            },
            generation,
        ))
    })();
    parsed.ok_or_else(|| CacheError::Backend {
        backend: BACKEND,
        operation: format!("decode {key}"),
        source: format!("{raw:?} is not `number|0x<hash>|finalized|generation`").into(),
    })
}

/// Runs the single-slot transaction `pipe`, whose keys include `key`, as [`Link::run`]
/// does (again after a redirection or no answer). A retried write is the same replacement
/// of whole entries, so running it twice is harmless.
async fn transact<T: redis::FromRedisValue>(
    link: &Link,
    pipe: &redis::Pipeline,
    key: &str,
    what: &(dyn Fn() -> String + Sync),
) -> Result<T, ClusterError> {
    let slot = slot(key.as_bytes());
    link.run(what, Some(slot), Some(key), |mut conn| async move {
        pipe.query_async(&mut conn).await
    })
    .await
}

/// A [`CacheError::Backend`] of `operation` whose source is a [`ClusterError`].
fn cluster(operation: impl Into<String>) -> impl FnOnce(ClusterError) -> CacheError {
    let operation = operation.into();
    move |source| CacheError::Backend {
        backend: BACKEND,
        operation,
        source: Box::new(source),
    }
}

/// Groups `items` by the hash slot of the key `key_of` gives, keeping their order within
/// a slot.
fn by_slot<T>(items: impl IntoIterator<Item = T>, key_of: impl Fn(&T) -> String) -> Vec<Vec<T>> {
    let mut groups: BTreeMap<u16, Vec<T>> = BTreeMap::new();
    for item in items {
        groups
            .entry(slot(key_of(&item).as_bytes()))
            .or_default()
            .push(item);
    }
    groups.into_values().collect()
}

#[async_trait]
impl CollateralCache for RedisClusterCache {
    /// Per-slot transactions, then the watermark: see the [type docs](RedisClusterCache).
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        if entries.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let generation_key = self.generation_key();
        let generation: u64 = self
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
        let results = self.write_blocks(blocks).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(cluster(format!(
                "put {} entries ({failed} of {slots} slot transactions failed, the others are written; the watermark is unchanged)",
                entries.len()
            ))(error));
        }
        // The watermark and the expected mark of every slot written, in one transaction.
        let mut last = redis::Pipeline::new();
        last.atomic();
        if let Some(w) = watermark {
            let finalized = w
                .finalized
                .map_or_else(|| "-".to_owned(), |f| f.to_string());
            let value = format!("{}|{}|{finalized}|{generation}", w.head.number, w.head.hash);
            last.set(self.watermark_key(), value).ignore();
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
            transact::<()>(&self.link, &last, &key, &what)
                .await
                .map_err(cluster(what()))?;
        }
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        Ok(self
            .read_entries(&[user])
            .await?
            .pop()
            .flatten()
            .map(|(e, _)| e))
    }

    /// The first consistent [`snapshot`](RedisClusterCache::snapshot) of three, else the
    /// last one read (weaker than the trait's "one state": see the type docs).
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

    /// The entry and the watermark from one [`snapshot`](RedisClusterCache::snapshot):
    /// the watermark is `None` unless the snapshot is consistent, so an entry whose slot
    /// lost a write ([`ClusterSnapshot::behind`]), or one written after the watermark, is
    /// never current as of it (a [`CollateralReader`](crate::reader::CollateralReader)
    /// reads the store instead).
    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let snapshot = self.snapshot(&[user]).await?;
        let watermark = snapshot.watermark.filter(|_| snapshot.consistent);
        Ok((snapshot.entries.into_iter().next().flatten(), watermark))
    }

    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        Ok(self.read_watermark().await?.map(|(block, _)| block))
    }

    /// Deletes the watermark and the expected slot marks, then every entry: `KEYS` on each master (it blocks that
    /// master for a scan of its key space: an operator's action, not a hot path), then one
    /// `UNLINK` per slot. The generation counter and the slot marks stay (one short key
    /// per slot ever written), so generations keep increasing and no mark is ever above
    /// a later write's.
    async fn clear(&self) -> Result<(), CacheError> {
        let key = self.watermark_key();
        let expected = self.expected_marks_key();
        self.command("delete", &key, |mut c| {
            let keys = [key.clone(), expected.clone()];
            async move { c.del::<_, ()>(&keys).await }
        })
        .await?;
        let found = self.entry_keys().await?;
        let results: Vec<Result<(), CacheError>> =
            futures::stream::iter(by_slot(found, String::clone))
                .map(|group| async move {
                    let first = group[0].clone();
                    self.command("delete the entries of the slot of", &first, |mut c| {
                        let group = group.clone();
                        async move { c.unlink::<_, ()>(group).await }
                    })
                    .await
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        results.into_iter().collect()
    }
}

impl RedisClusterCache {
    /// The key of every user's hash under the prefix: `KEYS` on each master (it blocks
    /// that master for a scan of its key space: for [`clear`](CollateralCache::clear), an
    /// operator's action, not a hot path).
    async fn entry_keys(&self) -> Result<Vec<String>, CacheError> {
        use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
        let pattern = format!("{{{}:0x{}}}", self.prefix, "?".repeat(40));
        let mut keys = redis::cmd("KEYS");
        keys.arg(&pattern);
        let routing = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::CombineArrays),
        ));
        let operation = || format!("list the keys {pattern}");
        let found = self
            .link
            .run(&operation, None, None, |mut c| {
                let (keys, routing) = (keys.clone(), routing.clone());
                async move { c.route_command(keys, routing).await }
            })
            .await
            .map_err(cluster(operation()))?;
        redis::from_redis_value(found)
            .map_err(|e| backend(format!("list the keys {pattern}"))(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_of_one_slot_share_a_group() {
        let keys = ["{a}x", "{b}", "{a}y", "{a}z"];
        let groups = by_slot(keys, |k| k.to_string());
        assert_eq!(groups.len(), 2);
        assert!(groups.contains(&vec!["{a}x", "{a}y", "{a}z"]));
        assert!(groups.contains(&vec!["{b}"]));
    }
}
