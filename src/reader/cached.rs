use super::CollateralReader;
use crate::error::Error;
use crate::model::{CachedCollateral, StateRef, UserId, Window};

/// A collateral read through the cache, and where the answer came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedRead {
    /// The user's collateral.
    pub entry: CachedCollateral,
    /// Who answered.
    pub source: ReadSource,
    /// The state of the store the answer is the collateral of (head and finalized height;
    /// `None`: no block applied). From the cache, the watermark, which was the store's
    /// state when read; from the store, the one state its values were read from. The
    /// entry's own stamp (`entry.block`, `entry.hash`, `entry.finalized`) may be older: the
    /// state it was last valued from, its values unchanged since.
    pub state: Option<StateRef>,
}

/// Who answered a [`CollateralReader::cached`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The cache, whose watermark equals the store's state (head and finalized height):
    /// the entry is current.
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
    /// The cache's watermark is not the store's state (head and finalized height): some
    /// entries may be outdated (the refresh is still running, a cache write failed, the
    /// writer stopped between its store commit and its cache write, or the finalized
    /// height moved without a new head).
    CacheBehind {
        /// The cache's watermark.
        cache: Option<StateRef>,
        /// The store's state.
        store: Option<StateRef>,
    },
    /// The watcher knows this user's entry is outdated (queued for refresh, or its last
    /// cache write failed).
    Outdated,
    /// The cache failed to answer (or holds an entry it cannot decode, e.g. of an older
    /// layout).
    CacheFailed(String),
}

impl CollateralReader {
    /// A user's collateral from the cache when the cache is current, from the store
    /// otherwise, with [`ReadSource`] saying which answered and
    /// [`state`](CachedRead::state) which state of the store the answer is of.
    ///
    /// The cache answers when its watermark (the state up to which it holds every change:
    /// head, its hash and the finalized height) is the store's state, read together with
    /// the entry; the entry then reflects that state. Otherwise the store is read, from
    /// one state ([`collateral_snapshot`](Self::collateral_snapshot)) and labelled with
    /// it, so no outdated entry is ever served as current — after a failed cache write, a
    /// crash between the store commit and the cache write, a restart, or a finalization
    /// that moved no head. Costs two store checkpoint reads (before and after) and one
    /// cache round trip when served from the cache.
    pub async fn cached(&self, user: UserId) -> Result<CachedRead, Error> {
        let window = self.store().window().await?;
        let state = window.state();
        let reason = match &self.cache {
            None => FallbackReason::NoCache,
            Some(cache) => match cache.get_with_watermark(user).await {
                Ok((entry, mark)) if mark.is_some() && mark == state => match entry {
                    // An entry of a later state (the refresher wrote it after the store
                    // moved on, before its watermark): not this state's.
                    Some(entry) if stamped_by(&entry, &window) => {
                        // The store still at the watermark after the read: no later state's
                        // entry can have been written meanwhile (one that rolled the head
                        // back to an ancestor would pass the stamp check).
                        if self.store().window().await?.state() == state {
                            return Ok(CachedRead {
                                entry,
                                source: ReadSource::Cache,
                                state,
                            });
                        }
                        FallbackReason::CacheBehind {
                            cache: mark,
                            store: state,
                        }
                    }
                    Some(_) => FallbackReason::CacheBehind {
                        cache: mark,
                        store: state,
                    },
                    None => FallbackReason::Missing,
                },
                Ok((_, mark)) => FallbackReason::CacheBehind {
                    cache: mark,
                    store: state,
                },
                Err(e) => FallbackReason::CacheFailed(e.to_string()),
            },
        };
        if let FallbackReason::CacheFailed(error) = &reason {
            tracing::warn!(%error, %user, "collateral cache read failed; reading the store");
        }
        let (state, mut values) = self.collateral_snapshot(&[user]).await?;
        let collateral = match values.pop() {
            Some(c) => c?,
            None => self.empty(user, state.map_or(0, |s| s.head.number)),
        };
        Ok(CachedRead {
            entry: CachedCollateral::new(&collateral, state.as_ref()),
            source: ReadSource::Store(reason),
            state,
        })
    }
}

/// Whether `entry` was valued from `window`'s state or an earlier one: its stamp's
/// finalized height is not above the window's, and its head is at or below the window's
/// head and, unless below the finalized height (a state with such a head precedes it), one
/// of the window's blocks. Later states move the head up, to another block at a height, or
/// the finalized height up. An entry stamped with a block since reorged out is refused
/// too (it is read from the store until refreshed).
fn stamped_by(entry: &CachedCollateral, window: &Window) -> bool {
    let fin = window.finalized_number();
    entry.finalized <= fin
        && window.head().is_some_and(|h| entry.block <= h.number)
        && (fin.is_some_and(|f| entry.block < f)
            || window.at(entry.block).is_some_and(|h| h.hash == entry.hash))
}
