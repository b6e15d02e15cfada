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

/// Collateral cache in Redis: per user a hash `{asset: "confirmed|pending"}` of
/// `balance × price × factor` values and a hash of totals.
///
/// Keys: `{<prefix>:<user>}:assets` and `{<prefix>:<user>}:totals`. The braces are a Redis
/// Cluster hash tag, so one user's keys share a slot. Values are exact decimal strings
/// (`-` for a missing price). A [`put`](CollateralCache::put) is one `MULTI`/`EXEC`
/// transaction, and a [`get`](CollateralCache::get) reads both keys in one transaction, so a
/// reader never sees half of a block's update. (On a Redis Cluster a batch spanning slots
/// must be split per user; this type targets a standalone server or a proxy.)
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
    /// (letters, digits, `_`, `-`, `:` only). Commands time out after a second, so a dead
    /// server turns into errors quickly instead of stalling ingestion; the connection
    /// manager reconnects by itself when the server is back.
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
            .set_response_timeout(Some(Duration::from_secs(1)))
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

    fn keys(&self, user: &UserId) -> (String, String) {
        let tag = format!("{{{}:{user}}}", self.prefix);
        (format!("{tag}:assets"), format!("{tag}:totals"))
    }

    /// A connection for other uses (e.g. [`RedisPublisher`]).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

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
        let mut pipe = redis::pipe();
        pipe.atomic();
        for e in entries {
            let (assets, totals) = self.keys(&e.user);
            pipe.del(&assets).ignore();
            if !e.assets.is_empty() {
                let fields: Vec<(String, String)> = e
                    .assets
                    .iter()
                    .map(|(a, v)| {
                        (
                            a.to_string(),
                            format!("{}|{}", encode(v.confirmed), encode(v.pending)),
                        )
                    })
                    .collect();
                pipe.hset_multiple(&assets, &fields).ignore();
            }
            pipe.hset_multiple(
                &totals,
                &[
                    ("block", e.block.to_string()),
                    ("confirmed", e.confirmed.to_string()),
                    ("pending", e.pending.to_string()),
                    ("complete", u8::from(e.complete).to_string()),
                ],
            )
            .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend(format!("put {} entries", entries.len())))
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        let (assets_key, totals_key) = self.keys(&user);
        let mut conn = self.conn.clone();
        let (assets, totals): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .hgetall(&assets_key)
            .hgetall(&totals_key)
            .query_async(&mut conn)
            .await
            .map_err(backend(format!("get {user}")))?;
        if totals.is_empty() {
            return Ok(None);
        }
        let corrupt = |detail: String| CacheError::Corrupt {
            backend: BACKEND,
            user,
            detail,
        };
        let field = |name: &str| {
            totals
                .get(name)
                .ok_or_else(|| corrupt(format!("missing field {name}")))
        };
        let total = |name: &str| -> Result<Decimal, CacheError> {
            decode(user, field(name)?)?.ok_or_else(|| corrupt(format!("{name} is not a number")))
        };
        let mut parsed = BTreeMap::new();
        for (asset, value) in &assets {
            let asset: Address = asset
                .parse()
                .map_err(|_| corrupt(format!("asset field {asset:?}")))?;
            let (c, p) = value
                .split_once('|')
                .ok_or_else(|| corrupt(format!("value {value:?}")))?;
            parsed.insert(
                asset,
                CachedAsset {
                    confirmed: decode(user, c)?,
                    pending: decode(user, p)?,
                },
            );
        }
        Ok(Some(CachedCollateral {
            user,
            block: field("block")?
                .parse()
                .map_err(|_| corrupt("block is not a number".into()))?,
            confirmed: total("confirmed")?,
            pending: total("pending")?,
            assets: parsed,
            complete: field("complete")? == "1",
        }))
    }

    async fn clear(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{{{}:*", self.prefix);
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
