//! The four extension points. Each is object-safe and `Send + Sync`, so users hold
//! `Arc<dyn Trait>` and can plug their own implementation; the
//! [`testing`](crate::testing) conformance suite checks any implementation against the
//! replay oracle.

mod balance_store;
mod block_source;
mod collateral_cache;
mod price_feed;

pub use balance_store::{BalanceStore, LogRecord, LogStatus, Touched};
pub use block_source::BlockSource;
pub use collateral_cache::CollateralCache;
pub use price_feed::PriceFeed;
