//! [`ChainsError`]: what a read across chains (or setting one up) can fail with, naming the
//! chain.

use crate::chains::ChainId;
use crate::error::{StoreError, ValuationError};
use crate::model::{AssetId, PriceSource, StateRef};

/// Why a multi-chain read or reader could not be made. Every variant names the chain (or
/// the asset) at fault; none of them wrote anything (reads only).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainsError {
    /// The same chain was given twice to a
    /// [`MultiChainReader`](crate::chains::MultiChainReader); no reader was built.
    #[error("{chain} given twice: a multi-chain reader reads each chain once")]
    DuplicateChain {
        /// The repeated chain.
        chain: ChainId,
    },
    /// A chain's store moved (its writer committed) during each of `attempts` reads that
    /// had to come from one state of every chain; nothing was returned. Retry.
    #[error(
        "{chain} moved during each of {attempts} reads of one state of every chain (last seen: {last:?})"
    )]
    Moving {
        /// The chain seen moving on the last attempt.
        chain: ChainId,
        /// Reads tried.
        attempts: u32,
        /// That chain's state seen last.
        last: Option<StateRef>,
    },
    /// A chain's store failed.
    #[error("{chain}: {source}")]
    Store {
        /// The chain whose store failed.
        chain: ChainId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A user's valuation on a chain failed (an asset missing from that chain's registry).
    #[error("{chain}: {source}")]
    Valuation {
        /// The chain.
        chain: ChainId,
        /// The valuation's error.
        #[source]
        source: ValuationError,
    },
    /// [`CollateralReader::with_price_from`](crate::reader::CollateralReader::with_price_from)
    /// named an asset the reader does not track; the reader was not changed.
    #[error("asset {asset} is not tracked: its price cannot come from another chain")]
    UnknownAsset {
        /// The asset.
        asset: AssetId,
    },
    /// [`CollateralReader::with_price_from`](crate::reader::CollateralReader::with_price_from)
    /// named an asset whose price already comes from another asset (a `SameAs` or a vault
    /// rate): set it on the asset its price key names; the reader was not changed.
    #[error(
        "asset {asset} is priced from {price_source:?}, not its own feed: set the other chain's price on its price key"
    )]
    NotAPriceKey {
        /// The asset.
        asset: AssetId,
        /// Its price source.
        price_source: PriceSource,
    },
}

impl ChainsError {
    /// A store error of `chain`.
    pub fn store(chain: ChainId) -> impl FnOnce(StoreError) -> Self {
        move |source| Self::Store { chain, source }
    }
}
