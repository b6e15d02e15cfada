//! Redis [`CollateralCache`] (feature `redis`).

use std::collections::BTreeMap;
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

/// Collateral cache in Redis: per user one string
/// `block|complete|confirmed|pending` followed by `|asset|confirmed|pending` per asset
/// (`balance × price × factor` as exact decimal strings, `-` for a missing price, assets
/// as lower-case hex without `0x`), e.g. `7|1|1010.0|1010.0|a1a1…a1|1010.0|1010.0`.
///
/// Key: `{<prefix>:<user>}` (the braces are a Redis Cluster hash tag). A
/// [`put`](CollateralCache::put) is one `MSET` of every user of the batch, so it is atomic
/// across users as the trait requires: a reader never sees half of a block's update. A
/// [`get`](CollateralCache::get) is one `GET`, [`get_many`](Self::get_many) one `MGET`.
/// (On a Redis Cluster a batch spanning slots must be split per user; this type targets a
/// standalone server or a proxy.)
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
    /// after 5 s (a refresh of 100,000 users is one `MSET` of about 50 ms on the server), so a
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
        let mut key = String::with_capacity(self.prefix.len() + 45);
        self.write_key(user, &mut key);
        key
    }

    fn write_key(&self, user: &UserId, out: &mut String) {
        out.push('{');
        out.push_str(&self.prefix);
        out.push_str(":0x");
        push_hex(user, out);
        out.push('}');
    }

    /// The entries of `users` (in order) read in one `MGET`, so they are from the same
    /// puts: a consistent snapshot across users, at the cost of one round trip.
    pub async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = users.iter().map(|u| self.key(u)).collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = conn
            .mget(&keys)
            .await
            .map_err(backend(format!("get {} entries", users.len())))?;
        users
            .iter()
            .zip(values)
            .map(|(&user, v)| v.map(|v| decode_entry(user, &v)).transpose())
            .collect()
    }

    /// A connection for other uses (e.g. [`RedisPublisher`]).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Appends `address` as lower-case hex without `0x` (`Display` would compute an EIP-55
/// checksum, a keccak, per address).
fn push_hex(address: &Address, out: &mut String) {
    let mut hex = [0u8; 40];
    if alloy_primitives::hex::encode_to_slice(address, &mut hex).is_ok() {
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }
}

/// Appends `d` in plain decimal notation with all `d.scale()` fraction digits (what
/// `Display` prints, about twice as fast: one `u128` division at most, then `u64` digits).
fn push_decimal(d: Decimal, out: &mut String) {
    const TEN19: u128 = 10_000_000_000_000_000_000;
    let mut digits = [b'0'; 40];
    let mut start = digits.len();
    let mut write_u64 = |mut n: u64, pad: bool, start: &mut usize| {
        let end = *start;
        while n > 0 {
            *start -= 1;
            digits[*start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        if pad {
            *start = end - 19; // the digits array starts as '0's
        }
    };
    let mantissa = d.mantissa().unsigned_abs();
    let (high, low) = (mantissa / TEN19, mantissa % TEN19);
    // Both halves fit in a u64: a mantissa is below 2^96 < 10^29.
    write_u64(low as u64, high > 0, &mut start);
    write_u64(high as u64, false, &mut start);
    let scale = d.scale() as usize;
    // At least one integer digit, and every fraction digit (leading zeros included).
    start = start.min(digits.len() - scale - 1);
    if d.is_sign_negative() && mantissa > 0 {
        out.push('-');
    }
    let text = std::str::from_utf8(&digits[start..]).unwrap_or_default();
    let (int, frac) = text.split_at(text.len() - scale);
    out.push_str(int);
    if scale > 0 {
        out.push('.');
        out.push_str(frac);
    }
}

/// Appends `e`'s value: `block|complete|confirmed|pending`, then `|asset|confirmed|pending`
/// per asset (lower-case hex without `0x`; `-` for a missing price).
fn encode_entry(e: &CachedCollateral, out: &mut String) {
    use std::fmt::Write;
    // Writing to a `String` cannot fail.
    let _ = write!(out, "{}|{}|", e.block, u8::from(e.complete));
    push_decimal(e.confirmed, out);
    out.push('|');
    push_decimal(e.pending, out);
    for (asset, v) in &e.assets {
        out.push('|');
        push_hex(asset, out);
        for value in [v.confirmed, v.pending] {
            out.push('|');
            match value {
                Some(v) => push_decimal(v, out),
                None => out.push('-'),
            }
        }
    }
}

/// Parses a value written by [`encode_entry`].
fn decode_entry(user: UserId, text: &str) -> Result<CachedCollateral, CacheError> {
    let corrupt = |detail: String| CacheError::Corrupt {
        backend: BACKEND,
        user,
        detail,
    };
    let mut parts = text.split('|');
    let mut next = |what: &str| {
        parts
            .next()
            .ok_or_else(|| corrupt(format!("missing {what} in {text:?}")))
    };
    let block = next("block")?
        .parse()
        .map_err(|_| corrupt(format!("block is not a number in {text:?}")))?;
    let complete = next("complete")? == "1";
    let total =
        |t: &str| decode(user, t)?.ok_or_else(|| corrupt(format!("total {t:?} is not a number")));
    let confirmed = total(next("confirmed")?)?;
    let pending = total(next("pending")?)?;
    let mut assets = BTreeMap::new();
    while let Some(name) = parts.next() {
        let asset: Address = name
            .parse()
            .map_err(|_| corrupt(format!("asset {name:?}")))?;
        let (Some(c), Some(p)) = (parts.next(), parts.next()) else {
            return Err(corrupt(format!("asset {name} has no values in {text:?}")));
        };
        let value = CachedAsset {
            confirmed: decode(user, c)?,
            pending: decode(user, p)?,
        };
        assets.insert(asset, value);
    }
    Ok(CachedCollateral {
        user,
        block,
        confirmed,
        pending,
        assets,
        complete,
    })
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
        // One `MSET`: atomic across users, and without a script the server spends about
        // 0.3–0.7 µs per user (one string each) instead of running Lua for every field.
        // The command is sized up front: 100,000 users are ~15 MB, and growing it by
        // doubling copies it over and over.
        let key_len = self.prefix.len() + 45;
        let size: usize = entries
            .iter()
            .map(|e| key_len + 64 + 112 * e.assets.len())
            .sum();
        let mut mset = redis::Cmd::with_capacity(1 + 2 * entries.len(), size);
        mset.arg("MSET");
        let (mut key, mut value) = (String::with_capacity(key_len), String::with_capacity(256));
        for e in entries {
            key.clear();
            self.write_key(&e.user, &mut key);
            value.clear();
            encode_entry(e, &mut value);
            mset.arg(&key).arg(&value);
        }
        let mut conn = self.conn.clone();
        mset.query_async::<()>(&mut conn)
            .await
            .map_err(backend(format!("put {} entries", entries.len())))
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn
            .get(self.key(&user))
            .await
            // Named lazily: formatting an address computes its checksum (a keccak).
            .map_err(|source| CacheError::Backend {
                backend: BACKEND,
                operation: format!("get {user}"),
                source: Box::new(source),
            })?;
        value.map(|v| decode_entry(user, &v)).transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `push_decimal` prints exactly what `Display` prints, around every `u64`/`u128` split.
    #[test]
    fn decimals_print_as_display_does() {
        let mut cases = vec![
            Decimal::ZERO,
            Decimal::new(0, 5),
            Decimal::MAX,
            Decimal::MIN,
        ];
        for scale in [0, 1, 5, 18, 19, 20, 27, 28] {
            for m in [
                1i128,
                9,
                10,
                123_456_789,
                9_999_999_999_999_999_999,
                10_000_000_000_000_000_000,
                10_000_000_000_000_000_001,
                12_345_678_901_234_567_890_123,
                (1 << 96) - 1,
            ] {
                cases.push(Decimal::from_i128_with_scale(m, scale));
                cases.push(Decimal::from_i128_with_scale(-m, scale));
            }
        }
        for d in cases {
            let mut out = String::new();
            push_decimal(d, &mut out);
            assert_eq!(out, d.to_string(), "{d:?}");
            assert_eq!(out.parse::<Decimal>().unwrap(), d);
        }
    }
}
