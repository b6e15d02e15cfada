use super::{CollateralReader, ValuationPoint};
use crate::error::Error;
use crate::model::{BlockRef, CachedCollateral, UserId};

/// A collateral read through the cache, and where the answer came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedRead {
    /// The user's collateral.
    pub entry: CachedCollateral,
    /// Who answered.
    pub source: ReadSource,
}

/// Who answered a [`CollateralReader::cached`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The cache, whose watermark equals the store's head: the entry is current.
    Cache,
    /// The store (the truth), because the cache could not answer currently.
    Store(FallbackReason),
}

/// Why a cached read was answered by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The reader has no cache.
    NoCache,
    /// The cache holds no entry for the user.
    Missing,
    /// The cache's watermark is not the store's head: some entries may be outdated (the
    /// refresh is still running, a cache write failed, or the writer stopped between its
    /// store commit and its cache write).
    CacheBehind {
        /// The cache's watermark.
        cache: Option<BlockRef>,
        /// The store's head.
        store: Option<BlockRef>,
    },
    /// The watcher knows this user's entry is outdated (queued for refresh, or its last
    /// cache write failed).
    Outdated,
    /// The cache failed to answer.
    CacheFailed(String),
}

impl CollateralReader {
    /// A user's collateral from the cache when the cache is current, from the store
    /// otherwise, with [`ReadSource`] saying which answered.
    ///
    /// The cache answers when its watermark (the block up to which it holds every change)
    /// is the store's head; the entry then reflects that block. Otherwise the store is
    /// read, so no outdated entry is ever served as current — after a failed cache write,
    /// a crash between the store commit and the cache write, or a restart. Costs two cache
    /// reads and a store checkpoint read when served from the cache.
    pub async fn cached(&self, user: UserId) -> Result<CachedRead, Error> {
        let head = self.head().await?;
        let reason = match &self.cache {
            None => FallbackReason::NoCache,
            Some(cache) => match cache.watermark().await {
                Ok(mark) if mark.is_some() && mark == head.map(|h| h.id()) => {
                    match cache.get(user).await {
                        Ok(Some(entry)) => {
                            return Ok(CachedRead {
                                entry,
                                source: ReadSource::Cache,
                            });
                        }
                        Ok(None) => FallbackReason::Missing,
                        Err(e) => FallbackReason::CacheFailed(e.to_string()),
                    }
                }
                Ok(mark) => FallbackReason::CacheBehind {
                    cache: mark,
                    store: head.map(|h| h.id()),
                },
                Err(e) => FallbackReason::CacheFailed(e.to_string()),
            },
        };
        if let FallbackReason::CacheFailed(error) = &reason {
            tracing::warn!(%error, %user, "collateral cache read failed; reading the store");
        }
        let at = ValuationPoint::of(head.as_ref());
        Ok(CachedRead {
            entry: CachedCollateral::from(&self.collateral_at(user, at).await?),
            source: ReadSource::Store(reason),
        })
    }
}
