#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod cache;
pub mod chains;
pub mod decode;
pub mod engine;
pub mod error;
pub mod health;
pub mod metrics;
#[cfg(feature = "migration")]
pub mod migration;
pub mod model;
pub mod reader;
pub mod source;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod tls;
pub mod traits;
pub mod valuation;
pub mod watcher;

pub use engine::{Engine, EngineConfig, Plan, Transition};
pub use error::{
    BalanceFault, CacheError, EngineError, Error, SourceError, StoreError, ValuationError,
};
pub use model::{Changeset, Window};
pub use reader::{CachedRead, CollateralReader, ReadSource};
pub use traits::{
    BalanceReader, BalanceStore, BlockSource, CollateralCache, LogReader, PriceFeed, StoreWriter,
};
pub use watcher::{
    CollateralUpdate, Notification, StepReport, Subscription, Watcher, WatcherConfig, WatcherStats,
};

/// The traits, for `use reorg_collateral::prelude::*;` (their methods in scope at once).
pub mod prelude {
    pub use crate::traits::{
        BalanceReader, BalanceStore, BlockSource, CollateralCache, LogReader, PriceFeed,
        StoreWriter,
    };
}
