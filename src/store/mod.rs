//! [`BalanceStore`](crate::BalanceStore) / [`PriceFeed`](crate::PriceFeed) backends.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{ChangesetHook, PostgresStore, WRITER_LOCK_SQL, migrate};
