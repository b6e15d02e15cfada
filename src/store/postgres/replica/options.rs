//! What a replica reader is configured with, and what each of its answers carries.

use std::time::Duration;

use super::super::PostgresConfig;
use crate::model::{BlockHeader, BlockNumber, StateRef};

/// How to open a [`PostgresReplica`](super::PostgresReplica): the schema, the lag bounds and
/// how lag is measured.
///
/// Lag is measured two ways, each checked on every answer when its bound is set:
/// - **blocks** ([`max_lag_blocks`](Self::max_lag_blocks), needs
///   [`primary_url`](Self::primary_url)): the primary's head block number (read on the
///   primary right after the replica's snapshot) minus the snapshot's head. Exact in the
///   unit a trading backend cares about, at the cost of one indexed probe on the primary
///   per answer.
/// - **time** ([`max_lag_time`](Self::max_lag_time)): on the replica alone, zero when it
///   has replayed everything its live WAL stream delivered, else the time between its
///   snapshot and the last primary commit it replayed
///   (`pg_last_xact_replay_timestamp()`). It over-reports after a quiet period on the
///   primary while the stream is down (nothing to replay looks old), never under-reports.
///   The stream's status is visible only to roles with `pg_read_all_stats`; for others the
///   lag is always the time since the last replayed commit.
///   A server that is not in recovery (the primary itself) has time lag zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaOptions {
    /// The schema of the store (as given to
    /// [`PostgresStore::connect_in_schema`](super::super::PostgresStore::connect_in_schema)
    /// on the primary); `None`: the connection's `search_path`. It must exist.
    pub schema: Option<String>,
    /// The primary's connection string, to measure lag in blocks; `None`: no block lag.
    pub primary_url: Option<String>,
    /// Refuse answers more than this many blocks behind the primary's head
    /// ([`StoreError::ReplicaLag`](crate::StoreError::ReplicaLag)); needs
    /// [`primary_url`](Self::primary_url).
    pub max_lag_blocks: Option<u64>,
    /// Refuse answers whose time lag exceeds this.
    pub max_lag_time: Option<Duration>,
    /// Pool size and timeouts of the replica's connections (and the primary's, if any).
    /// `create_schema` is ignored: a replica creates nothing.
    pub config: PostgresConfig,
}

/// The lag measured for one answer of a [`PostgresReplica`](super::PostgresReplica).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaLag {
    /// Time lag (see [`ReplicaOptions`]); zero on a server that is not a replica.
    pub time: Duration,
    /// The primary's head block number read right after the snapshot (`None`: no primary
    /// configured, or no block on it).
    pub primary_head: Option<BlockNumber>,
    /// Blocks behind the primary's head (`None`: no primary configured). A replica without
    /// a block while the primary has one lags by the primary's head number plus one.
    pub blocks: Option<u64>,
}

/// One answer of a [`PostgresReplica`](super::PostgresReplica): the value, read from one
/// snapshot of the replica (a `REPEATABLE READ READ ONLY` transaction), labelled with the
/// state it was read at and how far behind that state was.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaRead<T> {
    /// What was read.
    pub value: T,
    /// The snapshot's head block (`None`: no block applied).
    pub head: Option<BlockHeader>,
    /// The snapshot's state: head and finalized height (`None`: no block applied). Compare
    /// it with [`StoreWriter::head_state`](crate::traits::StoreWriter::head_state) on the
    /// primary to know which of its states the answer is.
    pub state: Option<StateRef>,
    /// The lag measured for this answer (within the configured bounds).
    pub lag: ReplicaLag,
}

impl<T> ReplicaRead<T> {
    /// The head block number the answer is as of (`None`: no block applied).
    pub fn block(&self) -> Option<BlockNumber> {
        self.head.map(|h| h.number)
    }

    /// The same label around another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ReplicaRead<U> {
        ReplicaRead {
            value: f(self.value),
            head: self.head,
            state: self.state,
            lag: self.lag,
        }
    }
}
