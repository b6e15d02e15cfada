//! [`ClusterError`]: why an operation of the cluster cache failed after its retries.

/// Why an operation of [`RedisClusterCache`](super::RedisClusterCache) failed after it
/// retried (the `source` of the [`CacheError::Backend`](crate::error::CacheError::Backend)
/// it returns; downcast it to tell the cases apart). Each says what may have been applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The slot was still redirected (`MOVED` or `ASK`, e.g. while a resharding migrates it)
    /// after the client refreshed its slot map and after a new connection read the
    /// cluster's slots afresh. The server refused the transaction: nothing of it was
    /// applied.
    #[error(
        "slot {slot} still redirected ({}) to {node} after {attempts} attempts, the last on a new connection; nothing of it was applied",
        if *ask { "ASK" } else { "MOVED" }
    )]
    Redirected {
        /// The hash slot of the operation's keys.
        slot: u16,
        /// The node the last redirection named (`host:port`).
        node: String,
        /// `ASK` (the slot is being migrated) rather than `MOVED`.
        ask: bool,
        /// How many times the operation was sent.
        attempts: u32,
    },
    /// The cluster did not answer or said it cannot serve the slot now (connection lost or
    /// refused, timed out, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`, `READONLY`), also on a
    /// new connection. A write that timed out may or may not have been applied.
    #[error(
        "the cluster did not serve {operation} after {attempts} attempts, the last on a new connection (a timed-out write may have been applied): {source}"
    )]
    Unavailable {
        /// What was being done, e.g. `the transaction of slot 42`.
        operation: String,
        /// How many times the operation was sent.
        attempts: u32,
        /// The last error.
        #[source]
        source: redis::RedisError,
    },
    /// The server refused the command for a reason that is not the cluster's state (a
    /// wrong type, a script error): not retried, nothing applied.
    #[error("the cluster refused {operation}: {source}")]
    Refused {
        /// What was being done.
        operation: String,
        /// The server's error.
        #[source]
        source: redis::RedisError,
    },
    /// A new connection to the cluster (opened after persistent failures) could not be
    /// opened through any of the seed nodes. Nothing was sent on it.
    #[error("could not open a new connection to the cluster through {seeds}: {source}")]
    Reconnect {
        /// The seed nodes (passwords redacted).
        seeds: String,
        /// The error of the last seed.
        #[source]
        source: redis::RedisError,
    },
}
