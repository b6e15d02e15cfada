//! [`RedisPublisher`]: collateral notifications to a Redis channel.

use std::fmt::Write as _;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::watcher::{Notification, Subscription, UpdateCause};

/// Forwards a watcher's notifications to a Redis pub/sub channel, one message per
/// refresh, so other processes can react to collateral changes without polling.
///
/// Messages are lines. An update: a first line `update|<block>|<hash>|<cause>|<through>`
/// (`cause` is `step` or `price`; `through` is the block up to which every change is in
/// the cache, or `-`), then one line per user, `0x<user>|<confirmed>|<pending>|<complete>`.
/// A lag of the publisher itself: one line `lagged|<missed>|<resync from block or ->`;
/// subscribers then resync from the cache as [`Notification::Lagged`] says. A quarantine:
/// one line `quarantined|0x<asset>|<block>|<hash>|<tx hash>:<log index>|<reason>` (the
/// reason last, on one line); a resume: `resumed|0x<asset>|<block>|<hash>`. A subscriber
/// that only reads `update` messages skips lines of other kinds.
#[derive(Debug)]
pub struct RedisPublisher;

impl RedisPublisher {
    /// Spawns the forwarding task; it ends when the watcher is dropped and returns the
    /// number of messages published. A publish failure is logged and the message dropped
    /// (the store stays the source of truth).
    pub fn spawn(
        mut subscription: Subscription,
        mut conn: ConnectionManager,
        channel: String,
    ) -> tokio::task::JoinHandle<u64> {
        tokio::spawn(async move {
            let mut published = 0u64;
            while let Some(notification) = subscription.recv().await {
                let message = encode(&notification);
                match conn.publish::<_, _, ()>(&channel, message).await {
                    Ok(()) => published += 1,
                    Err(error) => tracing::warn!(%error, "collateral notification not published"),
                }
            }
            published
        })
    }
}

/// The message of one notification (see [`RedisPublisher`]).
pub fn encode(notification: &Notification) -> String {
    let mut out = String::new();
    match notification {
        Notification::Update(u) => {
            let cause = match u.cause {
                UpdateCause::PriceFanOut => "price",
                _ => "step",
            };
            let _ = write!(out, "update|{}|{}|{cause}|", u.block.number, u.block.hash);
            match u.complete_through {
                Some(t) => {
                    let _ = write!(out, "{}", t.number);
                }
                None => out.push('-'),
            }
            for t in &u.users {
                let _ = write!(
                    out,
                    "\n{:#x}|{}|{}|{}",
                    t.user,
                    t.confirmed,
                    t.pending,
                    u8::from(t.complete)
                );
            }
        }
        Notification::Quarantined { quarantine: q, .. } => {
            let reason = q.reason.to_string().replace(['\n', '\r'], " ");
            let _ = write!(
                out,
                "quarantined|{:#x}|{}|{}|{}|{reason}",
                q.asset, q.block.number, q.block.hash, q.log
            );
        }
        Notification::Resumed { asset, block, .. } => {
            let _ = write!(out, "resumed|{asset:#x}|{}|{}", block.number, block.hash);
        }
        Notification::Lagged {
            missed,
            resync_from,
        } => {
            let _ = write!(out, "lagged|{missed}|");
            match resync_from {
                Some(b) => {
                    let _ = write!(out, "{}", b.number);
                }
                None => out.push('-'),
            }
        }
    }
    out
}
