//! Several chains, one collateral.
//!
//! Each chain keeps its own writer, finality, unconfirmed window, checkpoint and writer
//! claim, exactly as a single-chain deployment does: one [`Watcher`](crate::Watcher) per
//! chain, each writing its own store (on Postgres, its own schema of one database). What
//! crosses chains is read-side only — a user's collateral summed over every chain, prices
//! taken from a feed on another chain, one cache entry per user holding every chain — and
//! every value that crosses chains names the chain it came from ([`ChainId`],
//! [`ChainBlock`], [`ChainHeads`]).

mod cache;
mod collateral;
#[cfg(feature = "rpc")]
mod defaults;
mod error;
mod id;
mod reader;

pub use cache::{ChainCacheEntry, MultiCachedEntry, MultiChainCache, is_current};
pub use collateral::{ChainAsset, LeftOut, MultiCollateral, SymbolTotal};
#[cfg(feature = "rpc")]
pub use defaults::ChainDefaults;
pub use error::ChainsError;
pub use id::{ChainBlock, ChainHeads, ChainId};
pub use reader::MultiChainReader;
