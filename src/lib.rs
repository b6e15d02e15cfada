#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod cache;
pub mod decode;
pub mod engine;
pub mod error;
mod head_balances;
#[cfg(feature = "migration")]
pub mod migration;
pub mod model;
pub mod source;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod traits;
pub mod valuation;
pub mod watcher;

pub use engine::{Changeset, Engine, EngineConfig, Transition, Window};
pub use error::{
    BalanceFault, CacheError, EngineError, Error, SourceError, StoreError, ValuationError,
};
pub use traits::{BalanceStore, BlockSource, CollateralCache, PriceFeed};
pub use watcher::{
    CacheMismatch, CollateralChanged, StepReport, Watcher, WatcherConfig, WatcherStats,
    rebuild_cache_from,
};
