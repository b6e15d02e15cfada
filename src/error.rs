//! Error types. Each names what went wrong and with which block, log, user or asset.

use alloy_primitives::{Address, B256, U256};

use crate::model::{AssetId, BlockId, BlockNumber, BlockRef, LogId, UserId};

/// Boxed source error of a backend (sqlx, redis, an RPC client, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the state machine refused a block. When a block is refused, no state changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The block's height does not follow the head.
    #[error("block {block} leaves a gap: the next block must be #{expected}")]
    Gap {
        /// The refused block.
        block: BlockRef,
        /// The height that would extend the head.
        expected: BlockNumber,
    },
    /// The block forks off below the finalized height (or outside the unconfirmed window).
    #[error("block {block} reorgs below the finalized height {finalized}")]
    ReorgBeyondFinality {
        /// The refused block.
        block: BlockRef,
        /// The finalized height the fork would undo.
        finalized: BlockNumber,
    },
    /// The block is at or below the finalized height and is not the finalized block:
    /// a duplicate delivery from history, or a conflicting one.
    #[error("block {block} is at or below the finalized height {finalized}")]
    AlreadyFinalized {
        /// The refused block.
        block: BlockRef,
        /// The finalized height.
        finalized: BlockNumber,
    },
    /// A segment of blocks given together does not link parent to child.
    #[error(
        "block {block} does not link to its predecessor: parent {parent_hash}, expected {expected}"
    )]
    Discontinuous {
        /// The block that breaks the chain.
        block: BlockRef,
        /// Its parent hash.
        parent_hash: B256,
        /// The hash of the block before it in the segment.
        expected: B256,
    },
    /// The same log appears twice in a block.
    #[error("block {block}: log {log} appears twice")]
    DuplicateLog {
        /// The refused block.
        block: BlockRef,
        /// The repeated log.
        log: LogId,
    },
    /// A block's balance events (or its price updates) are not in ascending log order.
    /// Folding them as given would not be the chain's fold: a `Set` and a `Transfer` of one
    /// balance commute only in log order, and the event log (which `verify` folds by log
    /// index) would disagree with the balances.
    #[error("block {block}: log {log} is delivered after log index {previous}, out of log order")]
    LogOutOfOrder {
        /// The refused block.
        block: BlockRef,
        /// The log delivered too late.
        log: LogId,
        /// The index of the log delivered before it (a higher one).
        previous: u64,
    },
    /// An event or price refers to an asset that is not registered.
    #[error("block {block}: log {log} refers to unknown asset {asset}")]
    UnknownAsset {
        /// The refused block.
        block: BlockRef,
        /// The offending log.
        log: LogId,
        /// The unknown asset.
        asset: AssetId,
    },
    /// A credit would push a balance past `U256::MAX`.
    #[error("block {}: log {}: balance {} of {} in {} overflows when credited {}", .0.block, .0.log, .0.balance, .0.user, .0.asset, .0.amount)]
    BalanceOverflow(Box<BalanceFault>),
    /// A debit exceeds the balance.
    #[error("block {}: log {}: balance {} of {} in {} is smaller than debit {}", .0.block, .0.log, .0.balance, .0.user, .0.asset, .0.amount)]
    BalanceUnderflow(Box<BalanceFault>),
    /// The engine was given an empty segment.
    #[error("no block given")]
    Empty,
    /// A rebase sets an index that cannot convert (a zero numerator or denominator).
    #[error("block {block}: log {log} rebases {asset} to an index with a zero part")]
    InvalidIndex {
        /// The refused block.
        block: BlockRef,
        /// The rebase's log.
        log: LogId,
        /// The asset.
        asset: AssetId,
    },
    /// A block carries a rate for an asset that is not registered as priced through a
    /// vault rate (`PriceSource::Derived`), or two rates for one asset. Nothing was applied.
    #[error("block {block}: rate of {asset} refused: {reason}")]
    BadRate {
        /// The refused block.
        block: BlockRef,
        /// The asset the rate is for.
        asset: AssetId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A log of a [`FaultPolicy::Strict`](crate::model::FaultPolicy::Strict) asset could
    /// not be decoded ([`BalanceChange::Undecodable`](crate::model::BalanceChange::Undecodable)).
    /// Nothing was applied; every sync refuses the block the same way.
    #[error("block {}: log {} of {} could not be decoded: {}", .0.block, .0.log, .0.asset, .0.detail)]
    Undecodable(Box<UndecodableFault>),
}

/// The log behind an [`EngineError::Undecodable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableFault {
    /// The refused block.
    pub block: BlockRef,
    /// The undecodable log.
    pub log: LogId,
    /// The asset whose contract emitted it.
    pub asset: AssetId,
    /// What the decoder said.
    pub detail: crate::model::DecodeDetail,
}

/// The event and balance behind a [`EngineError::BalanceOverflow`] or
/// [`EngineError::BalanceUnderflow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceFault {
    /// The refused block.
    pub block: BlockRef,
    /// The offending log.
    pub log: LogId,
    /// The holder.
    pub user: UserId,
    /// The asset.
    pub asset: AssetId,
    /// The balance before the event.
    pub balance: U256,
    /// The amount credited or debited.
    pub amount: U256,
}

/// A valuation that cannot be represented exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValuationError {
    /// `balance × price × factor` does not fit a `Decimal`.
    #[error(
        "value of {balance} units of {asset} for {user} at price {answer}e-{decimals} overflows"
    )]
    Overflow {
        /// The user.
        user: UserId,
        /// The asset.
        asset: AssetId,
        /// The raw balance.
        balance: U256,
        /// The raw price answer.
        answer: crate::model::Answer,
        /// The feed decimals.
        decimals: u8,
    },
    /// The price's answer is zero or negative (an accepted price never is).
    #[error("price of {asset} for {user} has non-positive answer {answer}")]
    NonPositiveAnswer {
        /// The user.
        user: UserId,
        /// The asset.
        asset: AssetId,
        /// The raw price answer.
        answer: crate::model::Answer,
    },
    /// The asset is not registered.
    #[error("{user} holds unregistered asset {asset}")]
    UnknownAsset {
        /// The user.
        user: UserId,
        /// The asset.
        asset: AssetId,
    },
}

/// A store failure (any of the [store traits](crate::traits)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (connection, query, serialization).
    #[error("{backend} store: {operation} failed: {source}")]
    Backend {
        /// Which backend, e.g. `postgres`.
        backend: &'static str,
        /// What was being done, e.g. `apply block #12`.
        operation: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The stored data contradicts the change asked for (e.g. a revert of a block it does not hold).
    #[error("{backend} store is inconsistent: {detail}")]
    Inconsistent {
        /// Which backend.
        backend: &'static str,
        /// What does not match.
        detail: String,
    },
    /// A store broke its trait's contract (e.g. answered fewer values than asked): a bug in
    /// the store, reported by the caller that noticed.
    #[error("store broke the contract of {method}: {detail}")]
    BrokenContract {
        /// The trait method.
        method: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The store moved (a writer committed) during each of `attempts` reads that had to
    /// come from one state of it; nothing was returned. Retry, or read through the writer.
    #[error("store moved during each of {attempts} reads of one state (last seen: {last:?})")]
    Moving {
        /// Reads tried.
        attempts: u32,
        /// The state seen last.
        last: Option<crate::model::StateRef>,
    },
    /// Another writer owns the store: at most one writer at a time (see
    /// [`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer)). Nothing was
    /// written.
    #[error("{backend} store: another writer holds it ({holder})")]
    WriterTaken {
        /// Which backend.
        backend: &'static str,
        /// Who holds it, as far as the backend can tell (e.g. a Postgres pid and
        /// `application_name`).
        holder: String,
    },
    /// The store belongs to another chain or asset registry than the writer claiming it.
    /// Nothing was written.
    #[error("{backend} store belongs to {stored}, refused a writer for {claimed}")]
    IdentityMismatch {
        /// Which backend.
        backend: &'static str,
        /// The identity recorded in the store.
        stored: crate::model::StoreIdentity,
        /// The identity the writer claimed.
        claimed: crate::model::StoreIdentity,
    },
    /// A stored value does not fit the type it is read into.
    #[error("{backend} store: value {value:?} in {column} is out of range")]
    OutOfRange {
        /// Which backend.
        backend: &'static str,
        /// The column or field.
        column: &'static str,
        /// The raw value.
        value: String,
    },
    /// The store's schema lacks migrations this build needs, and it was opened without
    /// migrating (`PostgresStore::open_existing`, the read-only CLI commands). Nothing was
    /// done: run the migrations (`migrate`, as a role that may create in the schema) first.
    #[error(
        "{backend} store: schema {schema} is behind this build: migrations {missing:?} are not applied; run `migrate` (as a role that may create in the schema) first; nothing was done"
    )]
    SchemaBehind {
        /// Which backend.
        backend: &'static str,
        /// The schema opened.
        schema: String,
        /// The versions this build needs that the schema has not applied (all of them for
        /// a schema that was never migrated).
        missing: Vec<i64>,
    },
    /// A read replica's schema lacks migrations this build needs (the primary has not been
    /// migrated yet, or the replica has not replayed the migration). A replica is never
    /// migrated (it is read-only): migrate the primary and wait for the replica. Nothing
    /// was read.
    #[error(
        "{backend} replica: schema {schema} is at migration {replica_version:?}, this build needs {build_version} (missing {missing:?}); migrate the primary and let the replica replay it; nothing was read"
    )]
    ReplicaSchemaBehind {
        /// Which backend.
        backend: &'static str,
        /// The schema opened on the replica.
        schema: String,
        /// The latest migration the replica's schema has applied (`None`: none).
        replica_version: Option<i64>,
        /// The latest migration of this build.
        build_version: i64,
        /// The versions this build needs that the replica's schema lacks.
        missing: Vec<i64>,
    },
    /// A read replica answered from a state further behind than its configured bound
    /// (`ReplicaOptions::max_lag_blocks` / `max_lag_time`); the answer was discarded and
    /// nothing was returned. Retry later or read the primary.
    #[error(
        "{backend} replica: {operation} refused: the replica is {lag} behind, beyond the bound of {max} (replica head {replica_head:?}, primary head {primary_head:?}); nothing was returned"
    )]
    ReplicaLag {
        /// Which backend.
        backend: &'static str,
        /// What was being read.
        operation: String,
        /// The replica's head block number in the refused snapshot (`None`: no block).
        replica_head: Option<crate::model::BlockNumber>,
        /// The primary's head block number, when lag is measured against the primary.
        primary_head: Option<crate::model::BlockNumber>,
        /// The measured lag.
        lag: crate::model::Lag,
        /// The bound it exceeds.
        max: crate::model::Lag,
    },
    /// A configuration value is refused (a schema name, a timeout, a table name); nothing
    /// was done.
    #[error("configuration: {what} {value:?} is refused: {reason}")]
    Config {
        /// What the value configures, e.g. `schema name`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A lock wait gave up after the lock timeout (`lock_timeout`): another session holds
    /// the lock. The transaction rolled back; nothing of it was committed.
    #[error("{backend} store: {operation}: gave up waiting for {lock}{}; nothing was committed", holder_text(*.holder))]
    LockTimeout {
        /// Which backend.
        backend: &'static str,
        /// What was being done.
        operation: String,
        /// The lock waited for, e.g. `the writer lock of schema tenant_a`.
        lock: String,
        /// The process id of the server session holding it, when it could be found.
        holder: Option<i32>,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A statement ran longer than the statement timeout (`statement_timeout`) and was
    /// cancelled by the server. Its transaction rolled back; nothing of it was committed.
    #[error(
        "{backend} store: {operation}: cancelled by the statement timeout; nothing was committed"
    )]
    StatementTimeout {
        /// Which backend.
        backend: &'static str,
        /// What was being done.
        operation: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The client gave up on an operation after its deadline
    /// (`PostgresConfig::operation_deadline`):
    /// the server did not answer in time (frozen, partitioned, overloaded past its own
    /// timeouts). The connection was discarded, not returned to the pool. A wait for a
    /// pooled connection past `acquire_timeout` is one too, naming the acquire (no
    /// connection answered the pool's check, or every one stayed busy). `committed` says
    /// whether anything may have been committed: [`Committed::Unknown`] when the deadline
    /// passed while a commit was in flight (the watcher then re-reads the store before its
    /// next step), [`Committed::Nothing`] otherwise.
    #[error(
        "{backend} store: {operation}: no answer within the client deadline of {deadline:?}; {committed}"
    )]
    Deadline {
        /// Which backend.
        backend: &'static str,
        /// What was being done, e.g. `commit blocks #12..=#12, 0 reverted, finalize None`.
        operation: String,
        /// The deadline that passed.
        deadline: std::time::Duration,
        /// Whether anything of the operation may have been committed.
        committed: Committed,
    },
    /// This writer's claim was taken over: its ownership session was lost (a terminated
    /// backend, a dropped connection) and another writer claimed the store since
    /// ([`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer)). The changeset
    /// rolled back; nothing was committed. The writer must stop (or claim again, which
    /// names the new holder).
    #[error(
        "{backend} store: this writer's claim (epoch {epoch}) was taken over by another writer (epoch {current}); nothing was committed"
    )]
    WriterFenced {
        /// Which backend.
        backend: &'static str,
        /// The fencing epoch this writer claimed with.
        epoch: i64,
        /// The store's current epoch (the newer claim's).
        current: i64,
    },
    /// A chain of the Postgres chains catalog cannot be given or claimed: its schema name
    /// is refused, the catalog maps it elsewhere, or a claim names another chain than the
    /// one the schema holds. Nothing was committed.
    #[error("{backend} store: {chain} (schema {schema}): {reason}; nothing was committed")]
    Chain {
        /// Which backend.
        backend: &'static str,
        /// The chain asked for or claimed.
        chain: crate::chains::ChainId,
        /// The schema concerned.
        schema: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whether an operation that failed may have committed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Committed {
    /// Nothing was committed (the failure came before any commit was sent).
    Nothing,
    /// A commit was sent and its answer never came: it may or may not have landed. Re-read
    /// the store's state instead of assuming either.
    Unknown,
}

impl std::fmt::Display for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Nothing => "nothing was committed",
            Self::Unknown => "committed: unknown (the commit was sent; re-read the store)",
        })
    }
}

fn holder_text(holder: Option<i32>) -> String {
    holder.map_or_else(
        || " (held by another session)".to_owned(),
        |pid| format!(" (held by server process {pid})"),
    )
}

/// A [`BlockSource`](crate::BlockSource) failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The node or transport failed; retrying may help.
    #[error("block source: {operation} failed: {source}")]
    Transport {
        /// What was being fetched.
        operation: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A block the chain must have was not found (e.g. a parent hash of a delivered block).
    #[error("block source: block {0} not found")]
    NotFound(BlockId),
    /// A log could not be decoded.
    #[error("block source: block {block}, tx {tx_hash}, log {log_index}: {reason}")]
    Malformed {
        /// The block carrying the log.
        block: BlockRef,
        /// The transaction that emitted it.
        tx_hash: B256,
        /// The log's index in the block.
        log_index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A node's answers contradict each other or themselves (logs the block's bloom rules
    /// out, logs of another block in a by-hash answer, a head below one it reported). The
    /// answer was not used; another endpoint, or a retry, may answer consistently.
    #[error("block source: endpoint {endpoint} is inconsistent: {detail}")]
    Inconsistent {
        /// The endpoint's label (its position and URL or name).
        endpoint: String,
        /// What contradicts what.
        detail: String,
    },
    /// A configured price feed's on-chain `decimals()` differs from the configured
    /// decimals: prices would be scaled wrongly. Nothing was fetched or stored.
    #[error(
        "block source: feed {feed} is configured with {configured} decimals but its aggregator reports {on_chain}"
    )]
    FeedDecimals {
        /// The aggregator address.
        feed: Address,
        /// The decimals in `Contract::Feed`.
        configured: u8,
        /// What the aggregator's `decimals()` returns.
        on_chain: u8,
    },
    /// A [`Contract::Tether`](crate::decode::Contract::Tether) names another owner than
    /// the token's `owner()` at the latest block: its `Issue` / `Redeem` would move the
    /// wrong account's balance. Nothing was fetched or stored.
    #[error(
        "block source: Tether token {token} is configured with owner {configured} but its owner() is {on_chain}"
    )]
    TetherOwner {
        /// The token address.
        token: Address,
        /// The owner in `Contract::Tether`.
        configured: Address,
        /// What the token's `owner()` returns.
        on_chain: Address,
    },
    /// The source is set to follow the node's finality tag on a development chain whose tag
    /// is its latest block: blocks it calls final can still be reverted (`evm_revert`,
    /// `anvil_reorg`). Nothing was fetched or stored; confirm by depth instead.
    #[error(
        "block source: chain {chain_id} is a development chain whose `{tag}` block is its latest block (#{block}); \
         its blocks can still be reverted, so confirm by depth (RpcConfig::finality = FinalityTag::Depth)"
    )]
    DevChainFinality {
        /// The chain id (31337 Hardhat/Anvil, 1337 Ganache/Geth --dev).
        chain_id: u64,
        /// The tag asked for (`finalized` or `safe`).
        tag: &'static str,
        /// The height the tag and `latest` both name.
        block: BlockNumber,
    },
}

/// A [`CollateralCache`](crate::CollateralCache) failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache backend failed.
    #[error("{backend} cache: {operation} failed: {source}")]
    Backend {
        /// Which backend, e.g. `redis`.
        backend: &'static str,
        /// What was being done.
        operation: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A cached entry could not be decoded.
    #[error("{backend} cache: entry for {user} is corrupt: {detail}")]
    Corrupt {
        /// Which backend.
        backend: &'static str,
        /// The user whose entry is bad.
        user: UserId,
        /// What is wrong.
        detail: String,
    },
}

/// Any error of the engine's driver: the crate-level error.
///
/// A watcher call that returns an error other than [`Error::PartiallyCommitted`] committed
/// nothing — except a [`Error::Store`] from the write itself, whose changeset may or may
/// not have landed (a lost acknowledgement); the watcher then re-reads the store's
/// checkpoint before its next step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state machine refused a block.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A valuation overflowed.
    #[error(transparent)]
    Valuation(#[from] ValuationError),
    /// A call that commits several changesets (a catch-up) failed after committing some:
    /// those stay committed, the watcher is at `head`, and the next call goes on from there.
    #[error("{source} (after committing {changesets} changesets, up to {head:?})")]
    PartiallyCommitted {
        /// Changesets committed before the failure.
        changesets: usize,
        /// The head after them.
        head: Option<BlockRef>,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// [`Watcher::resume`](crate::Watcher::resume) named an asset the watcher does not
    /// track; nothing was queued.
    #[error("cannot resume asset {asset}: it is not tracked")]
    UnknownAsset {
        /// The asset asked for.
        asset: AssetId,
    },
    /// A read of a past block was refused or failed (nothing was written).
    #[error(transparent)]
    History(#[from] crate::traits::HistoryError),
}
