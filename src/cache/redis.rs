//! Redis [`CollateralCache`] (feature `redis`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alloy_primitives::Address;
use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rust_decimal::Decimal;

use crate::error::CacheError;
use crate::model::{CachedAsset, CachedCollateral, UserId};
use crate::traits::CollateralCache;

const BACKEND: &str = "redis";

fn backend(operation: impl Into<String>) -> impl FnOnce(redis::RedisError) -> CacheError {
    let operation = operation.into();
    move |source| CacheError::Backend {
        backend: BACKEND,
        operation,
        source: Box::new(source),
    }
}

/// Collateral cache in Redis: per user one hash holding `{asset: "confirmed|pending"}`
/// (`balance × price × factor`, exact decimal strings, `-` for a missing price) and the
/// totals in the fields `~block`, `~confirmed`, `~pending`, `~complete`.
///
/// Key: `{<prefix>:<user>}` (the braces are a Redis Cluster hash tag). A
/// [`put`](CollateralCache::put) is one Lua script call that rewrites every user of the
/// batch, so it is atomic: a reader never sees half of a block's update; a
/// [`get`](CollateralCache::get) is one `HGETALL`. (On a Redis Cluster a batch spanning
/// slots must be split per user; this type targets a standalone server or a proxy.)
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
    /// (letters, digits, `_`, `-`, `:` only). Connecting times out after 1 s and commands
    /// after 5 s (a refresh of 100,000 users is one script call of about a second), so a
    /// dead server turns into errors instead of stalling ingestion; the connection manager
    /// reconnects by itself when the server is back.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-:".contains(c))
        {
            return Err(CacheError::Backend {
                backend: BACKEND,
                operation: format!("use key prefix {prefix:?}"),
                source: "prefix must be non-empty and use only [A-Za-z0-9_:-]".into(),
            });
        }
        let client = redis::Client::open(url).map_err(backend(format!("open {url}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend(format!("connect to {url}")))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `user`'s hash: `{<prefix>:<lower-case hex address>}`.
    pub fn key(&self, user: &UserId) -> String {
        // Plain hex: `Display` would compute an EIP-55 checksum (a keccak) per key.
        format!(
            "{{{}:0x{}}}",
            self.prefix,
            alloy_primitives::hex::encode(user)
        )
    }

    /// A connection for other uses (e.g. [`RedisPublisher`]).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Rewrites each key: `ARGV` holds, per key, the number of field/value pairs, then the pairs.
/// Runs atomically on the server.
static PUT_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local i = 1
        for k = 1, #KEYS do
            local n = tonumber(ARGV[i])
            i = i + 1
            redis.call('DEL', KEYS[k])
            redis.call('HSET', KEYS[k], unpack(ARGV, i, i + 2 * n - 1))
            i = i + 2 * n
        end
        return #KEYS
        ",
    )
});

fn encode(value: Option<Decimal>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn decode(user: UserId, text: &str) -> Result<Option<Decimal>, CacheError> {
    if text == "-" {
        return Ok(None);
    }
    text.parse::<Decimal>()
        .map(Some)
        .map_err(|e| CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail: format!("value {text:?}: {e}"),
        })
}

#[async_trait]
impl CollateralCache for RedisCollateralCache {
    async fn put(&self, entries: &[CachedCollateral]) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut invocation = PUT_SCRIPT.prepare_invoke();
        for e in entries {
            invocation.key(self.key(&e.user));
            invocation.arg(e.assets.len() + 4);
            for (asset, v) in &e.assets {
                invocation
                    .arg(alloy_primitives::hex::encode(asset))
                    .arg(format!("{}|{}", encode(v.confirmed), encode(v.pending)));
            }
            invocation
                .arg("~block")
                .arg(e.block)
                .arg("~confirmed")
                .arg(e.confirmed.to_string())
                .arg("~pending")
                .arg(e.pending.to_string())
                .arg("~complete")
                .arg(u8::from(e.complete));
        }
        let mut conn = self.conn.clone();
        invocation
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(backend(format!("put {} entries", entries.len())))
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn
            .hgetall(self.key(&user))
            .await
            .map_err(backend(format!("get {user}")))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let corrupt = |detail: String| CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail,
        };
        let field = |name: &str| {
            fields
                .get(name)
                .ok_or_else(|| corrupt(format!("missing field {name}")))
        };
        let total = |name: &str| -> Result<Decimal, CacheError> {
            decode(user, field(name)?)?.ok_or_else(|| corrupt(format!("{name} is not a number")))
        };
        let mut assets = BTreeMap::new();
        for (name, value) in fields.iter().filter(|(k, _)| !k.starts_with('~')) {
            let asset: Address = name
                .parse()
                .map_err(|_| corrupt(format!("asset field {name:?}")))?;
            let (c, p) = value
                .split_once('|')
                .ok_or_else(|| corrupt(format!("value {value:?}")))?;
            assets.insert(
                asset,
                CachedAsset {
                    confirmed: decode(user, c)?,
                    pending: decode(user, p)?,
                },
            );
        }
        Ok(Some(CachedCollateral {
            user,
            block: field("~block")?
                .parse()
                .map_err(|_| corrupt("block is not a number".into()))?,
            confirmed: total("~confirmed")?,
            pending: total("~pending")?,
            assets,
            complete: field("~complete")? == "1",
        }))
    }

    async fn clear(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        // Exactly `{<prefix>:0x<40 hex>}`: a bare `*` would also match the keys of a cache
        // whose prefix extends this one (`p` and `p:v2`).
        let pattern = format!("{{{}:0x{}}}", self.prefix, "?".repeat(40));
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend(format!("scan {pattern}")))?;
            if !keys.is_empty() {
                conn.del::<_, ()>(&keys)
                    .await
                    .map_err(backend(format!("delete {} keys", keys.len())))?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// Forwards a watcher's [`CollateralChanged`](crate::CollateralChanged) notifications to a
/// Redis pub/sub channel as `user|block|confirmed|pending`, so other processes can react
/// to collateral changes without polling.
#[derive(Debug)]
pub struct RedisPublisher;

impl RedisPublisher {
    /// Spawns the forwarding task; it ends when the watcher is dropped. A publish failure
    /// is logged and the notification dropped (the store stays the source of truth).
    pub fn spawn(
        mut changes: tokio::sync::broadcast::Receiver<crate::CollateralChanged>,
        mut conn: ConnectionManager,
        channel: String,
    ) -> tokio::task::JoinHandle<u64> {
        tokio::spawn(async move {
            let mut published = 0u64;
            loop {
                match changes.recv().await {
                    Ok(c) => {
                        let message = format!(
                            "{}|{}|{}|{}",
                            c.user, c.block.number, c.confirmed, c.pending
                        );
                        match conn.publish::<_, _, ()>(&channel, message).await {
                            Ok(()) => published += 1,
                            Err(error) => {
                                tracing::warn!(%error, user = %c.user, "collateral notification not published")
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "collateral publisher lagged behind the watcher"
                        );
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return published,
                }
            }
        })
    }
}
