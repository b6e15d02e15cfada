//! [`BalanceStore`](crate::BalanceStore) / [`PriceFeed`](crate::PriceFeed) backends, and
//! [`ComposedStore`] to assemble one handle from a writer side and a reader side.

mod composed;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

pub use composed::ComposedStore;
pub use memory::{DEFAULT_RETAINED_CONFIRMED_BLOCKS, MemoryStore, Retained, Retention};
#[cfg(feature = "postgres")]
pub(crate) use postgres::snapshot;
#[cfg(feature = "postgres")]
pub use postgres::{
    ChangesetHook, PostgresConfig, PostgresReplica, PostgresStore, ReplicaLag, ReplicaOptions,
    ReplicaRead, WRITER_LOCK_SQL, cancel_sessions, migrate, ping, redact_url,
};
#[cfg(feature = "migration")]
pub(crate) use postgres::{classify_timeout, ident, in_shares, take_writer_lock};
