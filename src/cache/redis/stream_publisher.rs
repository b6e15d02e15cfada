//! [`RedisStreamPublisher`]: collateral notifications appended to a Redis stream, so that a
//! consumer that was away can resume where it stopped (see [`RedisStreamConsumer`]).
//!
//! [`RedisStreamConsumer`]: super::RedisStreamConsumer

use redis::aio::ConnectionManager;

use super::publisher::encode;
use crate::watcher::{Notification, Subscription};

/// Appends a watcher's notifications to a Redis stream, one entry per notification:
/// `XADD <key> MAXLEN ~ <max_len> * seq <n> kind <update|lagged|quarantined|resumed> block
/// <number|-> message <text> chain <chain id|->` (`chain`: the decimal chain id of the
/// watcher of the update, quarantine or resume ([`Notification::chain`]), `-` for a lag;
/// added last, so a consumer that does not know it reads the entry as before), where `seq` numbers the entries without a gap (a counter at `<key>:seq`, taken
/// in the same script as the `XADD`, so a consumer can tell that entries were trimmed
/// before it read them) and `message` is the text [`RedisPublisher`](super::RedisPublisher) publishes (the
/// update's block, cause and users, the lag, or the asset's quarantine or resume: a
/// consumer of an older version skips the kinds it does not know, see
/// [`StreamEvent`](super::StreamEvent)). The stream keeps about the last `max_len`
/// entries (`~`: Redis trims whole nodes, so a few more may stay); a consumer that falls
/// further behind is told to resync ([`StreamEvent::Resync`](super::StreamEvent::Resync)).
///
/// An `XADD` that fails (Redis down) loses that entry, so the publisher then counts the
/// notifications it could not append and, before the next entry it appends, appends a
/// `lagged` entry (`lagged|<missed>|-|<chain>`): a consumer never misses an update silently.
#[derive(Debug)]
pub struct RedisStreamPublisher;

impl RedisStreamPublisher {
    /// Spawns the appending task; it ends when the watcher is dropped and returns the
    /// number of entries appended.
    pub fn spawn(
        mut subscription: Subscription,
        mut conn: ConnectionManager,
        key: String,
        max_len: usize,
    ) -> tokio::task::JoinHandle<u64> {
        tokio::spawn(async move {
            let (mut appended, mut missed) = (0u64, 0u64);
            while let Some(notification) = subscription.recv().await {
                if missed > 0 {
                    let lag = Notification::Lagged {
                        chain: subscription.chain(),
                        missed,
                        resync_from: None,
                    };
                    match xadd(&mut conn, &key, max_len, &lag).await {
                        Ok(()) => {
                            appended += 1;
                            missed = 0;
                        }
                        Err(error) => {
                            tracing::warn!(%error, stream = %key, "lag entry not appended");
                            missed += 1;
                            continue;
                        }
                    }
                }
                match xadd(&mut conn, &key, max_len, &notification).await {
                    Ok(()) => appended += 1,
                    Err(error) => {
                        tracing::warn!(%error, stream = %key, "collateral notification not appended");
                        missed += 1;
                    }
                }
            }
            appended
        })
    }
}

/// Numbers the entry (`INCR` of the sequence key, so the numbers go on across publisher
/// restarts and are shared by two publishers) and appends it, atomically.
const APPEND: &str = "local seq = redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'seq', seq, 'kind', ARGV[2], 'block', ARGV[3], 'message', ARGV[4], 'chain', ARGV[5])";

/// The key of a stream's entry counter: `<key>:seq`.
pub(super) fn sequence_key(key: &str) -> String {
    format!("{key}:seq")
}

/// Appends one notification's entry.
async fn xadd(
    conn: &mut ConnectionManager,
    key: &str,
    max_len: usize,
    notification: &Notification,
) -> redis::RedisResult<()> {
    let (kind, block) = match notification {
        Notification::Update(u) => ("update", u.block.number.to_string()),
        Notification::Quarantined { quarantine, .. } => {
            ("quarantined", quarantine.block.number.to_string())
        }
        Notification::Resumed { block, .. } => ("resumed", block.number.to_string()),
        Notification::Lagged { resync_from, .. } => (
            "lagged",
            resync_from.map_or_else(|| "-".to_owned(), |b| b.number.to_string()),
        ),
    };
    let chain = notification
        .chain()
        .map_or_else(|| "-".to_owned(), |c| c.0.to_string());
    redis::Script::new(APPEND)
        .key(key)
        .key(sequence_key(key))
        .arg(max_len)
        .arg(kind)
        .arg(block)
        .arg(encode(notification))
        .arg(chain)
        .invoke_async::<redis::Value>(conn)
        .await
        .map(drop)
}
