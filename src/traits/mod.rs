//! The extension points, small traits by role (after reth's storage traits): a block
//! source, the store's writer side ([`StoreWriter`]), its reader sides ([`BalanceReader`],
//! [`LogReader`], [`PriceFeed`]), and the collateral cache. [`BalanceStore`] names a store
//! that has every role, so the watcher takes one handle. Each trait is object-safe and
//! `Send + Sync`, so users hold `Arc<dyn Trait>` and can plug their own implementation;
//! the `testing` (feature `testing`) conformance suite checks any implementation against
//! the replay oracle.

mod asset_state_reader;
mod balance_reader;
mod balance_store;
mod block_source;
mod chain_balances;
mod collateral_cache;
mod history;
mod log_reader;
mod price_feed;
mod rate_feed;

pub use asset_state_reader::AssetStateReader;
pub use balance_reader::BalanceReader;
pub use balance_store::{BalanceStore, StoreWriter, Touched};
pub use block_source::BlockSource;
pub use chain_balances::BalanceReadError;
pub use chain_balances::ChainBalances;
pub use collateral_cache::CollateralCache;
pub use history::{HistoryAt, HistoryError, LogSide, UserLog};
pub use log_reader::{LogReader, LogRecord, LogStatus};
pub use price_feed::PriceFeed;
pub use rate_feed::RateFeed;
