//! [`RedisChainCache`]: one chain's [`CollateralCache`] over the multi-chain layout (one
//! hash per user holding every chain), and the one-round-trip read of every chain of a user
//! ([`RedisCollateralCache::get_chains`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use redis::{AsyncCommands, Value};

use super::config::backend;
use super::layout::{BadState, parse_watermark};
use super::user_keys::UserKeys;
use super::{BACKEND, RedisCollateralCache, SESSION_SCRIPT, chain_field, state_text};
use crate::chains::ChainId;
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

/// One chain's collateral cache in the multi-chain layout: every chain of a user shares the
/// user's hash `{<prefix>:0x<user>}`, this chain owning its field `c<chain id>`
/// ([`RedisCollateralCache::for_chain`]).
///
/// | key | value |
/// |---|---|
/// | `{<prefix>:0x<user>}` field `c<chain>` | `<totals>;0x<asset>=<value>;…`: the chain's entry, the totals and asset values as the single-chain fields `~total` and `0x<asset>` hold them |
/// | `{<prefix>}:~watermark:c<chain>` | the chain's watermark, `number\|0x<hash>\|finalized` |
/// | `{<prefix>}:~session:c<chain>` | the chain's session mark |
///
/// A [`write`](CollateralCache::write) is one `MULTI`/`EXEC`: one `HSET` of this chain's
/// field per user and, with a watermark, the `SET` of this chain's watermark; other chains'
/// fields and watermarks are never touched, so the watchers of several chains write the same
/// hashes without coordinating. Reads are `HGET`s of the field (one transaction for
/// [`get_many`](CollateralCache::get_many) and for
/// [`get_with_watermark`](CollateralCache::get_with_watermark)). The watermark and session
/// keys keep the `{<prefix>}` hash tag of the single-chain ones.
///
/// A prefix holds either this layout or the single-chain one of [`RedisCollateralCache`]
/// (whose hash has `~total` and `0x<asset>` fields): mixing them on one prefix makes the
/// other layout's reads answer [`CacheError::Corrupt`]. Use a new prefix when moving a
/// deployment to several chains; an existing single-chain prefix keeps working as it is.
#[derive(Clone)]
pub struct RedisChainCache {
    base: RedisCollateralCache,
    chain: ChainId,
    field: String,
}

impl std::fmt::Debug for RedisChainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisChainCache")
            .field("prefix", &self.base.prefix)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

/// The key of `chain`'s watermark under `prefix`: `{<prefix>}:~watermark:c<chain id>` (also
/// the Redis Cluster chain cache's).
pub(super) fn watermark_key(prefix: &str, chain: ChainId) -> String {
    format!("{{{prefix}}}:~watermark:c{}", chain.0)
}

/// What every chain of one user holds, read at once ([`RedisCollateralCache::get_chains`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainEntries {
    /// Each asked chain's entry (`None`: the chain has none for the user).
    pub entries: BTreeMap<ChainId, Option<CachedCollateral>>,
    /// Each asked chain's watermark (`None`: none recorded, or of an older layout; read
    /// from a Redis Cluster, also when the chain's entry is not shown complete as of it).
    pub watermarks: BTreeMap<ChainId, Option<StateRef>>,
}

impl RedisCollateralCache {
    /// The cache of `chain` in the multi-chain layout over the same connection and prefix
    /// (see [`RedisChainCache`]). The single-chain methods of `self` are unchanged.
    pub fn for_chain(&self, chain: ChainId) -> RedisChainCache {
        RedisChainCache {
            base: self.clone(),
            chain,
            field: chain_field::field(chain),
        }
    }

    /// `user`'s entries of every chain of `chains` and those chains' watermarks, in one
    /// `MULTI`/`EXEC` of one `HGETALL` and one `MGET`: one state of the cache, one round
    /// trip. Fields of chains not asked for are skipped; a field that is not `c<chain id>`
    /// (a single-chain entry on this prefix) is [`CacheError::Corrupt`].
    pub async fn get_chains(
        &self,
        user: UserId,
        chains: &[ChainId],
    ) -> Result<ChainEntries, CacheError> {
        let key = self.key(&user);
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors().cmd("HGETALL").arg(&key);
        if !chains.is_empty() {
            let mut mget = redis::cmd("MGET");
            for chain in chains {
                mget.arg(watermark_key(&self.prefix, *chain));
            }
            pipe.add_command(mget);
        }
        let operation = || format!("get {user} of {} chains", chains.len());
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend(operation()))?;
        let short = |n: usize| CacheError::Backend {
            backend: BACKEND,
            operation: operation(),
            source: format!("{n} replies").into(),
        };
        let hash = match replies.first() {
            Some(Value::ServerError(e)) => return Err(self.read_error(user, e.clone().into())),
            Some(v) => v,
            None => return Err(short(0)),
        };
        let mut out = ChainEntries::default();
        for chain in chains {
            out.entries.insert(*chain, None);
        }
        for (field, value) in hash_pairs(user, hash)? {
            let Some(chain) = chain_field::chain_of(field) else {
                return Err(CacheError::Corrupt {
                    backend: BACKEND,
                    user,
                    detail: format!(
                        "{key} field {:?} is not c<chain id> (a single-chain entry on a multi-chain prefix?)",
                        String::from_utf8_lossy(field)
                    ),
                });
            };
            if let Some(slot) = out.entries.get_mut(&chain) {
                *slot = chain_field::decode(user, chain, value)?;
            }
        }
        let marks: &[Value] = match replies.get(1) {
            None if chains.is_empty() => &[],
            Some(Value::Array(marks)) if marks.len() == chains.len() => marks,
            Some(Value::ServerError(e)) => {
                return Err(backend(format!("get {} watermarks", chains.len()))(
                    e.clone().into(),
                ));
            }
            _ => return Err(short(replies.len())),
        };
        for (chain, mark) in chains.iter().zip(marks) {
            let raw = string_reply(mark).map_err(|detail| CacheError::Backend {
                backend: BACKEND,
                operation: format!("get {}", watermark_key(&self.prefix, *chain)),
                source: detail.into(),
            })?;
            let mark = decode_watermark(&watermark_key(&self.prefix, *chain), raw.as_deref())?;
            out.watermarks.insert(*chain, mark);
        }
        Ok(out)
    }
}

/// A hash field and its value, as the reply holds them.
pub(super) type Pair<'a> = (&'a [u8], &'a [u8]);

/// The field/value pairs of an `HGETALL` reply (a flat array in RESP2, a map in RESP3).
pub(super) fn hash_pairs(user: UserId, reply: &Value) -> Result<Vec<Pair<'_>>, CacheError> {
    let corrupt = |detail: String| CacheError::Corrupt {
        backend: BACKEND,
        user,
        detail,
    };
    fn text(v: &Value) -> Result<&[u8], String> {
        match v {
            Value::BulkString(b) => Ok(b.as_slice()),
            Value::SimpleString(s) => Ok(s.as_bytes()),
            other => Err(format!("hash item {other:?} is not a string")),
        }
    }
    let text = |v| text(v).map_err(corrupt);
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) if items.len() % 2 == 0 => items
            .chunks_exact(2)
            .map(|p| Ok((text(&p[0])?, text(&p[1])?)))
            .collect(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(f, v)| Ok((text(f)?, text(v)?)))
            .collect(),
        other => Err(corrupt(format!("HGETALL returned {other:?}"))),
    }
}

/// A string reply (`None`: nil).
fn string_reply(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(String::from_utf8_lossy(b).into_owned())),
        Value::SimpleString(s) => Ok(Some(s.clone())),
        other => Err(format!("reply {other:?} is not a string")),
    }
}

/// Decodes the watermark stored at `key` (`None`: absent, or of the older layout).
fn decode_watermark(key: &str, raw: Option<&str>) -> Result<Option<StateRef>, CacheError> {
    let Some(raw) = raw else { return Ok(None) };
    match parse_watermark(raw) {
        Ok(state) => Ok(Some(state)),
        Err(BadState::OldLayout) => Ok(None),
        Err(BadState::Malformed(what)) => Err(CacheError::Backend {
            backend: BACKEND,
            operation: format!("decode {key}"),
            source: format!("{raw:?}: {what} (expected `number|0x<hash>|finalized`)").into(),
        }),
    }
}

impl RedisChainCache {
    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.base.prefix
    }

    /// The field of this chain in every user's hash: `c<chain id>`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The key of `user`'s hash (shared by every chain): `{<prefix>:0x<user>}`.
    pub fn key(&self, user: &UserId) -> String {
        self.base.key(user)
    }

    /// The key of this chain's watermark: `{<prefix>}:~watermark:c<chain id>`.
    pub fn watermark_key(&self) -> String {
        watermark_key(&self.base.prefix, self.chain)
    }

    /// The key of this chain's session mark: `{<prefix>}:~session:c<chain id>`.
    pub fn session_key(&self) -> String {
        format!("{{{}}}:~session:c{}", self.base.prefix, self.chain.0)
    }

    /// A `MULTI`/`EXEC` of one `HSET` of this chain's field per entry.
    fn entries_pipeline(&self, entries: &[CachedCollateral]) -> redis::Pipeline {
        let mut pipe = redis::Pipeline::with_capacity(entries.len() + 1);
        pipe.atomic();
        for e in entries {
            pipe.cmd("HSET")
                .arg(self.key(&e.user))
                .arg(&self.field)
                .arg(chain_field::encode(e))
                .ignore();
        }
        pipe
    }

    fn read_error(&self, user: UserId, error: redis::RedisError) -> CacheError {
        self.base.read_error(user, error)
    }

    fn string_or_backend(&self, value: &Value) -> Result<Option<String>, CacheError> {
        string_reply(value).map_err(|detail| CacheError::Backend {
            backend: BACKEND,
            operation: format!("get {}", self.watermark_key()),
            source: detail.into(),
        })
    }
}

#[async_trait]
impl CollateralCache for RedisChainCache {
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        if entries.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let mut pipe = self.entries_pipeline(entries);
        if let Some(w) = watermark {
            pipe.cmd("SET")
                .arg(self.watermark_key())
                .arg(state_text(&w))
                .ignore();
        }
        let mut conn = self.base.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend(format!(
                "put {} entries of {}",
                entries.len(),
                self.chain
            )))
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        let mut conn = self.base.conn.clone();
        let reply: Value = redis::cmd("HGET")
            .arg(self.key(&user))
            .arg(&self.field)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.read_error(user, e))?;
        chain_field::decode_reply(user, self.chain, &reply)
    }

    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(users.len());
        pipe.atomic().ignore_errors();
        for user in users {
            pipe.cmd("HGET").arg(self.key(user)).arg(&self.field);
        }
        let mut conn = self.base.conn.clone();
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(backend(format!(
            "get {} entries of {}",
            users.len(),
            self.chain
        )))?;
        if replies.len() != users.len() {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("get {} entries of {}", users.len(), self.chain),
                source: format!("{} replies", replies.len()).into(),
            });
        }
        users
            .iter()
            .zip(&replies)
            .map(|(&user, reply)| match reply {
                Value::ServerError(e) => Err(self.read_error(user, e.clone().into())),
                reply => chain_field::decode_reply(user, self.chain, reply),
            })
            .collect()
    }

    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        let mut conn = self.base.conn.clone();
        let key = self.watermark_key();
        let raw: Option<String> = conn
            .get(&key)
            .await
            .map_err(backend(format!("get {key}")))?;
        decode_watermark(&key, raw.as_deref())
    }

    /// One `MULTI`/`EXEC` of the field's `HGET` and the chain's watermark `GET`.
    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .ignore_errors()
            .cmd("HGET")
            .arg(self.key(&user))
            .arg(&self.field)
            .cmd("GET")
            .arg(self.watermark_key());
        let mut conn = self.base.conn.clone();
        let operation = format!("get {user} of {} with the watermark", self.chain);
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend(operation.clone()))?;
        let [entry, mark] = replies.as_slice() else {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation,
                source: format!("{} replies", replies.len()).into(),
            });
        };
        let entry = match entry {
            Value::ServerError(e) => return Err(self.read_error(user, e.clone().into())),
            reply => chain_field::decode_reply(user, self.chain, reply)?,
        };
        let mark = match mark {
            Value::ServerError(e) => {
                return Err(backend(format!("get {}", self.watermark_key()))(
                    e.clone().into(),
                ));
            }
            other => self.string_or_backend(other)?,
        };
        Ok((
            entry,
            decode_watermark(&self.watermark_key(), mark.as_deref())?,
        ))
    }

    async fn begin_session(&self, session: u64) -> Result<(), CacheError> {
        let mut conn = self.base.conn.clone();
        conn.set::<_, _, ()>(self.session_key(), session)
            .await
            .map_err(backend(format!("set {}", self.session_key())))
    }

    async fn write_in_session(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
        session: u64,
    ) -> Result<bool, CacheError> {
        let mut pipe = self.entries_pipeline(entries);
        pipe.cmd("EVAL")
            .arg(SESSION_SCRIPT)
            .arg(2)
            .arg(self.session_key())
            .arg(self.watermark_key())
            .arg(session)
            .arg(watermark.as_ref().map(state_text).unwrap_or_default());
        let mut conn = self.base.conn.clone();
        let (intact,): (i64,) = pipe.query_async(&mut conn).await.map_err(backend(format!(
            "put {} entries of {} in session",
            entries.len(),
            self.chain
        )))?;
        Ok(intact == 1)
    }

    /// Drops this chain's watermark, session mark and field of every user; other chains'
    /// fields stay (a hash whose last field goes is removed by Redis).
    async fn clear(&self) -> Result<(), CacheError> {
        let mut conn = self.base.conn.clone();
        conn.del::<_, ()>(&[self.watermark_key(), self.session_key()])
            .await
            .map_err(backend("delete the watermark and the session mark"))?;
        let mut keys = UserKeys::new(&self.base.prefix);
        while let Some(batch) = keys.next(&mut conn).await? {
            let mut pipe = redis::Pipeline::with_capacity(batch.len());
            for key in &batch {
                pipe.cmd("HDEL").arg(key).arg(&self.field).ignore();
            }
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(backend(format!(
                    "delete {} of {} keys",
                    self.field,
                    batch.len()
                )))?;
        }
        Ok(())
    }
}
