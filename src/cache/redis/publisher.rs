//! [`RedisPublisher`]: collateral notifications to a Redis channel.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

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
