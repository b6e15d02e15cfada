//! A write's slot transactions, pipelined per node: the slots a master serves go to it as
//! one pipeline of `MULTI`…`EXEC` blocks (several pipelines for a large write), the masters
//! in parallel; each block is still one slot's transaction, so each user's entry stays
//! atomic. A block refused for the cluster's state (`MOVED`/`ASK` while queueing, so its
//! `EXEC` is an `EXECABORT` and nothing of it applied; a connection lost or timed out with
//! the whole pipeline) is sent again alone, as [`Link::run`] does (follow the redirection,
//! then a new connection), and the slot map used for the grouping is read again.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{RedisError, Value};

use super::error::ClusterError;
use super::link::{Cause, Link, cause};
use super::owners::SlotOwners;
use super::{IN_FLIGHT, RedisClusterCache, transact};

/// Commands per node pipeline at most (a large write is several pipelines per node, in
/// flight together), so one pipeline stays well inside the response timeout.
const PIPELINE_COMMANDS: usize = 8_192;

/// One slot's transaction of a write: the `MULTI`/`EXEC` pipeline and a key of the slot.
pub(super) struct Block {
    /// The hash slot of the block's keys.
    pub(super) slot: u16,
    /// A key of the slot (to name and probe it when it is retried alone).
    pub(super) key: String,
    /// The atomic pipeline of the slot's commands.
    pub(super) transaction: redis::Pipeline,
}

/// What one block's replies in a node pipeline say.
#[derive(Debug)]
enum Outcome {
    /// `EXEC` answered with every command's reply: applied.
    Written,
    /// Refused for the cluster's state (nothing applied) or no answer: send it again alone.
    Retry {
        /// A `MOVED`/`ASK`: the slot map used for the grouping is stale.
        redirected: bool,
    },
    /// Refused for the command itself: not retried.
    Refused(RedisError),
}

impl RedisClusterCache {
    /// Runs `blocks`, pipelined per node, and then the blocks to retry alone; one result
    /// per block, in no particular order.
    pub(super) async fn write_blocks(&self, blocks: Vec<Block>) -> Vec<Result<(), ClusterError>> {
        let owners = self.slot_owners().await;
        let mut per_node: BTreeMap<Option<u16>, Vec<Block>> = BTreeMap::new();
        let mut alone = Vec::new();
        for block in blocks {
            match owners.as_ref().and_then(|o| o.owner(block.slot)) {
                Some(node) => per_node.entry(Some(node)).or_default().push(block),
                None => alone.push(block),
            }
        }
        let mut pipelines: Vec<Vec<Block>> = Vec::new();
        for (_, blocks) in per_node {
            let mut current = Vec::new();
            let mut commands = 0;
            for block in blocks {
                let len = block.transaction.len() + 2;
                if commands + len > PIPELINE_COMMANDS && !current.is_empty() {
                    pipelines.push(std::mem::take(&mut current));
                    commands = 0;
                }
                commands += len;
                current.push(block);
            }
            if !current.is_empty() {
                pipelines.push(current);
            }
        }
        let link = &self.link;
        let sent: Vec<Vec<(Block, Outcome)>> = futures::stream::iter(pipelines)
            .map(|blocks| node_pipeline(link, blocks))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut results = Vec::new();
        let mut redirected = false;
        for (block, outcome) in sent.into_iter().flatten() {
            match outcome {
                Outcome::Written => results.push(Ok(())),
                Outcome::Refused(source) => results.push(Err(ClusterError::Refused {
                    operation: format!("the transaction of slot {}", block.slot),
                    source,
                })),
                Outcome::Retry { redirected: r } => {
                    redirected |= r;
                    alone.push(block);
                }
            }
        }
        if redirected {
            self.forget_slot_owners();
        }
        if !alone.is_empty() {
            tracing::debug!(
                blocks = alone.len(),
                redirected,
                "slot transactions sent again alone"
            );
        }
        let retried: Vec<Result<(), ClusterError>> = futures::stream::iter(alone)
            .map(|block| async move {
                let what = || format!("the transaction of slot {}", block.slot);
                transact::<()>(link, &block.transaction, &block.key, &what).await
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.extend(retried);
        results
    }

    /// The slot owners last read, read now if there are none (`None`: `CLUSTER SLOTS`
    /// failed; every block is then sent alone).
    async fn slot_owners(&self) -> Option<Arc<SlotOwners>> {
        let (number, mut conn) = self.link.current();
        {
            let known = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((seen, owners)) = known.as_ref()
                && *seen == number
            {
                return Some(owners.clone());
            }
        }
        match SlotOwners::load(&mut conn).await {
            Ok(owners) => {
                let owners = Arc::new(owners);
                *self.owners.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((number, owners.clone()));
                Some(owners)
            }
            Err(error) => {
                tracing::debug!(%error, "CLUSTER SLOTS failed; slot transactions sent one by one");
                None
            }
        }
    }

    /// Drops the slot owners, so the next write reads them again.
    fn forget_slot_owners(&self) {
        *self.owners.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Sends `blocks` (slots of one master, as last known) as one pipeline to the master of
/// the first block's slot, and says what became of each.
async fn node_pipeline(link: &Link, blocks: Vec<Block>) -> Vec<(Block, Outcome)> {
    let mut pipe =
        redis::Pipeline::with_capacity(blocks.iter().map(|b| b.transaction.len() + 2).sum());
    for block in &blocks {
        pipe.cmd("MULTI");
        for cmd in block.transaction.cmd_iter() {
            pipe.add_command(cmd.clone());
        }
        pipe.cmd("EXEC");
    }
    let count = pipe.len();
    let route = SingleNodeRoutingInfo::SpecificNode(Route::new(blocks[0].slot, SlotAddr::Master));
    let (_, mut conn) = link.current();
    let replies = match conn.route_pipeline(pipe, 0, count, route).await {
        Ok(replies) if replies.len() == count => replies,
        Ok(_) => return retry_all(blocks, false),
        Err(error) => {
            return match cause(&error) {
                Some(cause) => retry_all(blocks, matches!(cause, Cause::Redirected { .. })),
                None => blocks
                    .into_iter()
                    .map(|b| (b, Outcome::Refused(error.clone())))
                    .collect(),
            };
        }
    };
    let mut out = Vec::with_capacity(blocks.len());
    let mut at = 0;
    for block in blocks {
        let len = block.transaction.len() + 2;
        let outcome = outcome(&replies[at..at + len]);
        at += len;
        out.push((block, outcome));
    }
    out
}

fn retry_all(blocks: Vec<Block>, redirected: bool) -> Vec<(Block, Outcome)> {
    blocks
        .into_iter()
        .map(|b| (b, Outcome::Retry { redirected }))
        .collect()
}

/// The outcome of one block from its replies: `MULTI`'s, one per queued command, `EXEC`'s.
fn outcome(replies: &[Value]) -> Outcome {
    let error = |v: &Value| match v {
        Value::ServerError(e) => Some(RedisError::from(e.clone())),
        _ => None,
    };
    let Some((exec, queued)) = replies.split_last() else {
        return Outcome::Retry { redirected: false };
    };
    if let Value::Array(items) = exec {
        return match items.iter().find_map(error) {
            None => Outcome::Written,
            // A command failed inside the transaction (the others applied).
            Some(e) => match cause(&e) {
                Some(_) => Outcome::Retry { redirected: false },
                None => Outcome::Refused(e),
            },
        };
    }
    // Discarded: why is in the queued commands' errors, else in `EXEC`'s own. A bare
    // `EXECABORT` reply carries no inner errors (and `cause` of it would look for them).
    let errors: Vec<RedisError> = queued
        .iter()
        .chain([exec])
        .filter_map(error)
        .filter(|e| e.code() != Some("EXECABORT"))
        .collect();
    let causes: Vec<Option<Cause>> = errors.iter().map(cause).collect();
    if causes
        .iter()
        .any(|c| matches!(c, Some(Cause::Redirected { .. })))
    {
        return Outcome::Retry { redirected: true };
    }
    if causes.iter().any(Option::is_some) {
        return Outcome::Retry { redirected: false };
    }
    match errors.into_iter().next() {
        Some(e) => Outcome::Refused(e),
        // Discarded without a reason given: sent again alone, which reports one.
        None => Outcome::Retry { redirected: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap()
    }

    fn ok(text: &str) -> Value {
        Value::SimpleString(text.into())
    }

    #[test]
    fn a_block_is_written_redirected_or_refused_from_its_replies() {
        let applied = [
            ok("OK"),
            ok("QUEUED"),
            ok("QUEUED"),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        ];
        assert!(matches!(outcome(&applied), Outcome::Written));
        let moved = [
            ok("OK"),
            error("MOVED 42 127.0.0.1:7001"),
            error("MOVED 42 127.0.0.1:7001"),
            error("EXECABORT Transaction discarded because of previous errors."),
        ];
        assert!(matches!(
            outcome(&moved),
            Outcome::Retry { redirected: true }
        ));
        let down = [
            ok("OK"),
            error("CLUSTERDOWN The cluster is down"),
            error("EXECABORT Transaction discarded because of previous errors."),
        ];
        assert!(matches!(
            outcome(&down),
            Outcome::Retry { redirected: false }
        ));
        let wrong = [
            ok("OK"),
            ok("QUEUED"),
            Value::Array(vec![error("WRONGTYPE Operation against a key")]),
        ];
        assert!(matches!(outcome(&wrong), Outcome::Refused(_)));
    }
}
