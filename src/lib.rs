//! A reorg-aware collateral engine for Ethereum trading backends.
//!
//! Balance events and oracle prices arrive block by block from a [`BlockSource`]; the
//! [`Watcher`] feeds them in order to a pure state machine ([`Engine`]) that tells
//! extension from reorg from confirmation, and writes the result atomically to a
//! [`BalanceStore`]: an append-only event log, a **confirmed** balance per (user, asset)
//! (the fold of finalized blocks) and a **pending** balance (the fold of every canonical
//! block, kept per unconfirmed block so any suffix can be rolled back exactly).
//! [`collateral`](Watcher::collateral) is `Σ balance × price × collateral_factor`,
//! confirmed and pending apart, and is cached per user in a [`CollateralCache`].
//!
//! In-memory backends for all four traits are the default; Postgres and Redis come
//! behind the `postgres` and `redis` features. The `testing` feature ships the replay
//! oracle and the conformance suite every backend (including yours) can run.
#![warn(missing_docs)]

pub mod cache;
pub mod engine;
pub mod error;
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
};
