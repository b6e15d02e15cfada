//! [`RedisPublisher`]: collateral notifications to a Redis channel.

use std::fmt::Write as _;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::watcher::{Notification, Subscription, UpdateCause};

/// Forwards a watcher's notifications to a Redis pub/sub channel, one message per
/// refresh, so other processes can react to collateral changes without polling.
///
/// Messages are lines. An update: a first line `update|<block>|<hash>|<cause>|<through>|<chain>`
/// (`cause` is `step` or `price`; `through` is the block up to which every change is in
/// the cache, or `-`), then one line per user, `0x<user>|<confirmed>|<pending>|<complete>`.
/// A lag: one line `lagged|<missed>|<resync from block or ->|<chain>`; subscribers then
/// resync from the cache as [`Notification::Lagged`] says. A quarantine: one line
/// `quarantined|0x<asset>|<block>|<hash>|<tx hash>:<log index>|<reason>|<chain>` (the
/// reason on one line, a `|` in it written `/`); a resume:
/// `resumed|0x<asset>|<block>|<hash>|<chain>`. `<chain>` is the decimal chain id of the
/// watcher ([`Notification::chain`]), the last field of the first line so a reader of the
/// fields before it is unaffected. A subscriber that only reads `update` messages skips
/// lines of other kinds.
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
    let mut out = header(notification);
    if let Notification::Update(u) = notification {
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
    out
}

/// The first line of a notification's message, its chain last.
fn header(notification: &Notification) -> String {
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
        }
        Notification::Quarantined { quarantine: q, .. } => {
            let reason = q
                .reason
                .to_string()
                .replace(['\n', '\r'], " ")
                .replace('|', "/");
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
            ..
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
    match notification.chain() {
        Some(chain) => {
            let _ = write!(out, "|{}", chain.0);
        }
        None => out.push_str("|-"),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alloy_primitives::{Address, B256};

    use super::encode;
    use crate::chains::ChainId;
    use crate::model::{BlockRef, FaultReason, LogId, Quarantine};
    use crate::watcher::{CollateralUpdate, Notification, UpdateCause};

    fn block() -> BlockRef {
        BlockRef {
            number: 7,
            hash: B256::repeat_byte(1),
        }
    }

    /// The last field of a message's first line.
    fn chain_field(message: &str) -> &str {
        message.lines().next().unwrap().rsplit('|').next().unwrap()
    }

    #[test]
    fn every_kind_names_its_chain_last_on_the_first_line() {
        let asset = Address::repeat_byte(0xa1);
        let update = Notification::Update(Arc::new(CollateralUpdate {
            chain: ChainId(8453),
            block: block(),
            cause: UpdateCause::Step,
            users: Vec::new(),
            complete_through: Some(block()),
        }));
        let quarantined = Notification::Quarantined {
            chain: ChainId(10),
            quarantine: Quarantine {
                asset,
                block: block(),
                log: LogId {
                    tx_hash: B256::repeat_byte(2),
                    log_index: 3,
                },
                reason: FaultReason::Undecodable {
                    detail: "a|b\nc".into(),
                },
            },
        };
        let resumed = Notification::Resumed {
            chain: ChainId(1),
            asset,
            block: block(),
        };
        let lagged = Notification::Lagged {
            chain: ChainId(42161),
            missed: 4,
            resync_from: None,
        };
        assert_eq!(
            encode(&update),
            format!("update|7|{}|step|7|8453", block().hash)
        );
        assert_eq!(
            encode(&resumed),
            format!("resumed|{asset:#x}|7|{}|1", block().hash)
        );
        assert_eq!(encode(&lagged), "lagged|4|-|42161");
        let q = encode(&quarantined);
        assert_eq!(q.lines().count(), 1, "one line: {q}");
        assert_eq!(chain_field(&q), "10", "{q}");
        let fields: Vec<&str> = q.split('|').collect();
        assert_eq!(fields.len(), 7, "a `|` in the reason is written `/`: {q}");
        assert!(fields[5].contains("a/b c"), "{q}");
    }
}
