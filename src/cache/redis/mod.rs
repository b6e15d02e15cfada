//! Redis [`CollateralCache`] (feature `redis`). The key layout, atomicity, fallback and
//! upgrade notes are in `docs/redis.md` in the repository.

mod chain;
mod chain_field;
#[cfg(feature = "redis-cluster")]
mod cluster;
mod config;
mod layout;
mod publisher;
mod stream_consumer;
mod stream_id;
mod stream_publisher;
mod user_keys;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Value};

pub use self::chain::{ChainEntries, RedisChainCache};
#[cfg(feature = "redis-cluster")]
pub use self::cluster::{ClusterError, ClusterSnapshot, RedisClusterCache, RedisClusterChainCache};
use self::config::backend;
pub use self::config::{RedisCacheConfig, redact_redis_url};
use self::layout::{
    ASSET_FIELD_LEN, BadState, MAX_TOTAL_LEN, MAX_VALUE_LEN, TOTAL, decode_hash, parse_watermark,
    push_asset_field, push_asset_value, push_hex, push_state, push_total,
};
pub use self::publisher::RedisPublisher;
pub use self::stream_consumer::{RedisStreamConsumer, Resync, StreamEntry, StreamEvent, entry_ids};
pub use self::stream_id::{BadStreamId, StreamId};
pub use self::stream_publisher::RedisStreamPublisher;
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

const BACKEND: &str = "redis";

/// The end of a [`write_in_session`](CollateralCache::write_in_session) transaction:
/// `KEYS[1]` the session mark, `KEYS[2]` the watermark, `ARGV[1]` the session, `ARGV[2]`
/// the watermark's value (empty: none). Sets the watermark and answers 1 if the mark holds
/// the session; otherwise marks it again and answers 0.
const SESSION_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end \
    return 1 end \
    redis.call('SET', KEYS[1], ARGV[1]) return 0";

/// A state as the watermark stores it.
fn state_text(state: &StateRef) -> String {
    let mut text = String::new();
    push_state(state, &mut text);
    text
}

/// Collateral cache in Redis: one hash per user.
///
/// Key `{<prefix>:0x<user>}` (user as 40 lower-case hex digits; the braces are a Redis
/// Cluster hash tag, so all of a user's data shares a slot). Fields:
///
/// | field | value |
/// |---|---|
/// | `0x<asset>` (40 lower-case hex digits), one per asset | `confirmed\|pending`: `balance × price × factor`, `-` without a price, `!` when the value is unrepresentable, `q<block>` when the asset is quarantined (since that block) |
/// | `~total` | `block\|0x<hash>\|finalized\|confirmed\|pending\|complete`: the state the entry reflects (head block, its hash, finalized height or `-`), the two totals, and `1` if every price behind them was present and fresh (else `0`) |
///
/// Values are exact decimal strings, e.g. `HGET {p:0xb0…b0} 0xa1a1…a1` → `1010.0|1010.0`,
/// `HGET {p:0xb0…b0} ~total` → `42|0x…|30|1010.0|1010.5|1`. `~` cannot start an asset
/// field. An entry of the older `block|confirmed|pending|complete` form reads as
/// [`CacheError::Corrupt`] (never as current) until the next put replaces it.
/// The totals share one field because every field costs the server time on each put.
///
/// A [`write`](CollateralCache::write) is one `MULTI`/`EXEC` transaction: one `UNLINK` of
/// every user of the batch (dropping assets a user no longer holds), one `HSET` per user,
/// and with a watermark one `SET` of [`watermark_key`](Self::watermark_key)
/// (`number|0x<hash>|finalized`; a watermark of the older `number|0x<hash>` form reads as
/// none). A [`write_in_session`](CollateralCache::write_in_session) ends the same
/// transaction with a script that sets the watermark only if
/// [`session_key`](Self::session_key) still holds the writer's session (a `FLUSHALL`
/// drops it). It
/// is atomic across users as the trait requires: a reader never sees half of a block's
/// update. A [`get`](CollateralCache::get) is one `HGETALL`, [`get_many`](CollateralCache::get_many)
/// one transaction of `HGETALL`s. A key that is not a hash (e.g. a string entry written by
/// an earlier version of this crate) reads as [`CacheError::Corrupt`], and the next put of
/// that user replaces it. (On a Redis Cluster a batch spanning slots must be split per user;
/// this type targets a standalone server or a proxy.)
#[derive(Clone)]
pub struct RedisCollateralCache {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisCollateralCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCollateralCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCollateralCache {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) with keys under `prefix`
    /// (letters, digits, `_`, `-`, `:` only) and the default [`RedisCacheConfig`]:
    /// connecting times out after 1 s and commands after 5 s, so a dead or frozen server
    /// turns into errors instead of stalling ingestion; the connection manager reconnects
    /// by itself when the server is back. Errors name the server without its password.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        Self::connect_with(url, prefix, RedisCacheConfig::default()).await
    }

    /// [`connect`](Self::connect) with `config`'s timeouts, retries and TLS trust (a
    /// `rediss://` URL needs the `tls` feature).
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        config: RedisCacheConfig,
    ) -> Result<Self, CacheError> {
        crate::tls::ensure_crypto_provider();
        config::check_prefix(prefix)?;
        let target = redact_redis_url(url);
        let client = config::client(url, &config)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connection_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.retries)
            .set_max_delay(config.max_retry_delay);
        let conn = ConnectionManager::new_with_config(client, manager)
            .await
            .map_err(backend(format!("connect to {target}")))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the watermark: `{<prefix>}:~watermark`, value `number|0x<hash>`.
    pub fn watermark_key(&self) -> String {
        format!("{{{}}}:~watermark", self.prefix)
    }

    /// The key of the session mark ([`CollateralCache::begin_session`]):
    /// `{<prefix>}:~session`, value the session in decimal.
    pub fn session_key(&self) -> String {
        format!("{{{}}}:~session", self.prefix)
    }

    /// The key of `user`'s hash: `{<prefix>:0x<lower-case hex address>}`.
    pub fn key(&self, user: &UserId) -> String {
        let mut key = String::with_capacity(self.key_len());
        self.write_key(user, &mut key);
        key
    }

    fn key_len(&self) -> usize {
        self.prefix.len() + 45
    }

    fn write_key(&self, user: &UserId, out: &mut String) {
        out.push('{');
        out.push_str(&self.prefix);
        out.push_str(":0x");
        push_hex(user, out);
        out.push('}');
    }

    /// The entries of `users` (in order) read in one `MULTI`/`EXEC` of `HGETALL`s, so they
    /// are from the same puts: a consistent snapshot across users, in one round trip.
    async fn read_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(users.len());
        pipe.atomic().ignore_errors();
        let mut key = String::with_capacity(self.key_len());
        for user in users {
            key.clear();
            self.write_key(user, &mut key);
            let mut cmd = redis::Cmd::with_capacity(2, 7 + key.len());
            cmd.arg("HGETALL").arg(key.as_str());
            pipe.add_command(cmd);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend(format!("get {} entries", users.len())))?;
        if replies.len() != users.len() {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("get {} entries", users.len()),
                source: format!("{} replies", replies.len()).into(),
            });
        }
        users
            .iter()
            .zip(&replies)
            .map(|(&user, reply)| match reply {
                Value::ServerError(e) => Err(self.read_error(user, e.clone().into())),
                reply => decode_hash(user, reply),
            })
            .collect()
    }

    /// One `MULTI`/`EXEC` of the writes of `entries` (every command's reply ignored), with
    /// room for `extra` more commands. `UNLINK` of every key (assets a user no longer holds,
    /// or a key of an older layout, must not survive), then one `HSET` per user with every
    /// field: N + 1 commands and no script; buffers sized up front (100,000 one-asset users
    /// are ~30 MB), each key and value written once into a reused buffer.
    fn entries_pipeline(&self, entries: &[CachedCollateral], extra: usize) -> redis::Pipeline {
        let key_len = self.key_len();
        let mut unlink = redis::Cmd::with_capacity(1 + entries.len(), 6 + key_len * entries.len());
        unlink.arg("UNLINK");
        let mut hsets = Vec::with_capacity(entries.len());
        let mut text = String::with_capacity(MAX_TOTAL_LEN.max(key_len));
        for e in entries {
            // `HSET`, the key, `~total` and its value, then every asset's field and value.
            let assets = (ASSET_FIELD_LEN + MAX_VALUE_LEN) * e.assets.len();
            let size = 4 + key_len + TOTAL.len() + MAX_TOTAL_LEN + assets;
            let mut hset = redis::Cmd::with_capacity(4 + 2 * e.assets.len(), size);
            text.clear();
            self.write_key(&e.user, &mut text);
            unlink.arg(text.as_str());
            hset.arg("HSET").arg(text.as_str()).arg(TOTAL);
            text.clear();
            push_total(e, &mut text);
            hset.arg(text.as_str());
            for (asset, v) in &e.assets {
                text.clear();
                push_asset_field(asset, &mut text);
                hset.arg(text.as_str());
                text.clear();
                push_asset_value(v, &mut text);
                hset.arg(text.as_str());
            }
            hsets.push(hset);
        }
        let mut pipe = redis::Pipeline::with_capacity(1 + extra + entries.len());
        pipe.atomic();
        if !entries.is_empty() {
            pipe.add_command(unlink).ignore();
        }
        for hset in hsets {
            pipe.add_command(hset).ignore();
        }
        pipe
    }

    /// Decodes the watermark's value (`None`: absent, or of the older layout).
    fn decode_watermark(&self, raw: Option<&str>) -> Result<Option<StateRef>, CacheError> {
        let Some(raw) = raw else { return Ok(None) };
        match parse_watermark(raw) {
            Ok(state) => Ok(Some(state)),
            Err(BadState::OldLayout) => {
                tracing::info!(
                    watermark = raw,
                    "cache watermark of an older layout (no finalized height): treated as none"
                );
                Ok(None)
            }
            Err(BadState::Malformed(what)) => Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("decode {}", self.watermark_key()),
                source: format!("{raw:?}: {what} (expected `number|0x<hash>|finalized`)").into(),
            }),
        }
    }

    /// A connection for other uses (e.g. [`RedisPublisher`]).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The error of a failed read of `user`: `WRONGTYPE` (the key is not a hash) is a
    /// corrupt entry, anything else a backend failure.
    fn read_error(&self, user: UserId, error: redis::RedisError) -> CacheError {
        if error.code() == Some("WRONGTYPE") {
            CacheError::Corrupt {
                backend: BACKEND,
                user,
                detail: format!(
                    "{} is not a hash (an entry of an older layout?); the next put replaces it",
                    self.key(&user)
                ),
            }
        } else {
            // Named lazily: formatting an address computes its checksum (a keccak).
            backend(format!("get {user}"))(error)
        }
    }
}

#[async_trait]
impl CollateralCache for RedisCollateralCache {
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        if entries.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let mut pipe = self.entries_pipeline(entries, 1);
        if let Some(w) = watermark {
            pipe.cmd("SET")
                .arg(self.watermark_key())
                .arg(state_text(&w));
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend(format!("put {} entries", entries.len())))
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("HGETALL")
            .arg(self.key(&user))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.read_error(user, e))?;
        decode_hash(user, &reply)
    }

    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        self.read_many(users).await
    }

    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        let mut conn = self.conn.clone();
        let key = self.watermark_key();
        let raw: Option<String> = conn
            .get(&key)
            .await
            .map_err(backend(format!("get {key}")))?;
        self.decode_watermark(raw.as_deref())
    }

    /// One `MULTI`/`EXEC` of the entry's `HGETALL` and the watermark's `GET`.
    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .ignore_errors()
            .cmd("HGETALL")
            .arg(self.key(&user))
            .cmd("GET")
            .arg(self.watermark_key());
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend(format!("get {user} with the watermark")))?;
        let [entry, mark] = replies.as_slice() else {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("get {user} with the watermark"),
                source: format!("{} replies", replies.len()).into(),
            });
        };
        let entry = match entry {
            Value::ServerError(e) => return Err(self.read_error(user, e.clone().into())),
            reply => decode_hash(user, reply)?,
        };
        let mark = match mark {
            Value::Nil => None,
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            Value::ServerError(e) => {
                return Err(backend(format!("get {}", self.watermark_key()))(
                    e.clone().into(),
                ));
            }
            other => {
                return Err(CacheError::Backend {
                    backend: BACKEND,
                    operation: format!("get {}", self.watermark_key()),
                    source: format!("reply {other:?} is not a string").into(),
                });
            }
        };
        Ok((entry, self.decode_watermark(mark.as_deref())?))
    }

    async fn begin_session(&self, session: u64) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
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
        let mut pipe = self.entries_pipeline(entries, 1);
        pipe.cmd("EVAL")
            .arg(SESSION_SCRIPT)
            .arg(2)
            .arg(self.session_key())
            .arg(self.watermark_key())
            .arg(session)
            .arg(watermark.as_ref().map(state_text).unwrap_or_default());
        let mut conn = self.conn.clone();
        let (intact,): (i64,) = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend(format!("put {} entries in session", entries.len())))?;
        Ok(intact == 1)
    }

    async fn clear(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(&[self.watermark_key(), self.session_key()])
            .await
            .map_err(backend("delete the watermark and the session mark"))?;
        let mut keys = user_keys::UserKeys::new(&self.prefix);
        while let Some(batch) = keys.next(&mut conn).await? {
            conn.del::<_, ()>(&batch)
                .await
                .map_err(backend(format!("delete {} keys", batch.len())))?;
        }
        Ok(())
    }
}
