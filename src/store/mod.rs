//! [`BalanceStore`](crate::BalanceStore) / [`PriceFeed`](crate::PriceFeed) backends.

mod memory;

pub use memory::MemoryStore;
