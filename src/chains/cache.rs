//! [`MultiChainCache`]: every chain's cached entry of a user, and whether each is current.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::chains::{ChainHeads, ChainId};
use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

/// Reads a user's cached collateral of every chain at once.
///
/// Two backings: any per-chain [`CollateralCache`]s (a
/// [`MemoryCache`](crate::cache::MemoryCache) per chain, a
/// `RedisChainCache` per chain, a user's own), read chain
/// by chain with [`get_with_watermark`](CollateralCache::get_with_watermark); or, with the
/// `redis` feature, the multi-chain Redis layout read in one round trip (one `HGETALL` of
/// the user's hash and one `MGET` of every chain's watermark, in one transaction:
/// `MultiChainCache::redis`); or, with the `redis-cluster` feature, the same layout on a
/// Redis Cluster (`MultiChainCache::redis_cluster`: three round trips, each chain's entry
/// checked against that chain's watermark and slot marks).
#[derive(Clone, Debug)]
pub struct MultiChainCache {
    backing: Backing,
}

#[derive(Clone, Debug)]
enum Backing {
    Caches(BTreeMap<ChainId, Arc<dyn CollateralCache>>),
    #[cfg(feature = "redis")]
    Redis {
        cache: crate::cache::RedisCollateralCache,
        chains: Vec<ChainId>,
    },
    #[cfg(feature = "redis-cluster")]
    RedisCluster {
        cache: crate::cache::RedisClusterCache,
        chains: Vec<ChainId>,
    },
}

/// One chain's part of a [`MultiCachedEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCacheEntry {
    /// The chain's entry for the user (`None`: none cached).
    pub entry: Option<CachedCollateral>,
    /// The chain's watermark, read with the entry (`None`: none recorded).
    pub watermark: Option<StateRef>,
    /// Whether the entry is current: the watermark is at or past the chain's store state
    /// the caller gave (see [`is_current`]).
    pub current: bool,
}

/// A user's cached collateral on every chain of a [`MultiChainCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiCachedEntry {
    /// The user.
    pub user: UserId,
    /// Each chain's entry, watermark and currency, ascending by chain.
    pub chains: BTreeMap<ChainId, ChainCacheEntry>,
}

impl MultiCachedEntry {
    /// Whether the entry is current for every chain.
    pub fn is_current(&self) -> bool {
        self.chains.values().all(|c| c.current)
    }

    /// The chains whose entry is current.
    pub fn current_chains(&self) -> Vec<ChainId> {
        self.chains
            .iter()
            .filter(|(_, c)| c.current)
            .map(|(chain, _)| *chain)
            .collect()
    }

    /// Each chain's watermark (chains without one are absent): which block of which chain
    /// the entry reflects.
    pub fn watermarks(&self) -> ChainHeads {
        self.chains
            .iter()
            .filter_map(|(chain, c)| c.watermark.map(|w| (*chain, w)))
            .collect()
    }
}

/// Whether a chain's cache, at `watermark`, is current for its store at `store` (`None`:
/// nothing applied, so nothing to be behind): the watermark's head is above the store's
/// head, or is the store's head (same height and hash) with a finalized height at or
/// above the store's. A watermark past the store state was written after the store moved
/// on from that state, so it holds every change up to it.
pub fn is_current(watermark: Option<&StateRef>, store: Option<&StateRef>) -> bool {
    let Some(store) = store else { return true };
    let Some(mark) = watermark else { return false };
    mark.head.number > store.head.number
        || (mark.head == store.head && mark.finalized >= store.finalized)
}

impl MultiChainCache {
    /// Over one cache per chain.
    pub fn new(caches: BTreeMap<ChainId, Arc<dyn CollateralCache>>) -> Self {
        Self {
            backing: Backing::Caches(caches),
        }
    }

    /// Over the multi-chain Redis layout of `cache`'s prefix (the hashes
    /// [`for_chain`](crate::cache::RedisCollateralCache::for_chain) caches write), for
    /// `chains`: each [`get`](Self::get) is one round trip.
    #[cfg(feature = "redis")]
    pub fn redis(
        cache: crate::cache::RedisCollateralCache,
        chains: impl IntoIterator<Item = ChainId>,
    ) -> Self {
        let mut chains: Vec<ChainId> = chains.into_iter().collect();
        chains.sort();
        chains.dedup();
        Self {
            backing: Backing::Redis { cache, chains },
        }
    }

    /// Over the multi-chain layout of a Redis Cluster cache's prefix (the hashes
    /// [`RedisClusterCache::for_chain`](crate::cache::RedisClusterCache::for_chain) caches
    /// write), for `chains`: each [`get`](Self::get) is
    /// [`RedisClusterCache::get_chains`](crate::cache::RedisClusterCache::get_chains), three
    /// round trips; a chain whose entry the cluster cannot show complete as of the chain's
    /// watermark (a write of it under way, a slot that lost one) has no watermark, so it
    /// is not current.
    #[cfg(feature = "redis-cluster")]
    pub fn redis_cluster(
        cache: crate::cache::RedisClusterCache,
        chains: impl IntoIterator<Item = ChainId>,
    ) -> Self {
        let mut chains: Vec<ChainId> = chains.into_iter().collect();
        chains.sort();
        chains.dedup();
        Self {
            backing: Backing::RedisCluster { cache, chains },
        }
    }

    /// The chains read, ascending.
    pub fn chains(&self) -> Vec<ChainId> {
        match &self.backing {
            Backing::Caches(caches) => caches.keys().copied().collect(),
            #[cfg(feature = "redis")]
            Backing::Redis { chains, .. } => chains.clone(),
            #[cfg(feature = "redis-cluster")]
            Backing::RedisCluster { chains, .. } => chains.clone(),
        }
    }

    /// `user`'s entry and watermark of every chain, each marked current or not against
    /// `store`, the state of each chain's store (what
    /// [`StoreWriter::window`](crate::traits::StoreWriter::window) says; read it before
    /// this call, so that a watermark at or past it holds every change up to it). A chain
    /// absent from `store` has nothing applied: its entry counts as current.
    ///
    /// From one cache state for the Redis layout; for the cluster layout each chain's entry
    /// is checked against its own watermark; chain by chain (each chain's entry with
    /// its own watermark) over per-chain caches.
    pub async fn get(
        &self,
        user: UserId,
        store: &ChainHeads,
    ) -> Result<MultiCachedEntry, CacheError> {
        let mut chains = BTreeMap::new();
        match &self.backing {
            Backing::Caches(caches) => {
                for (chain, cache) in caches {
                    let (entry, watermark) = cache.get_with_watermark(user).await?;
                    chains.insert(*chain, part(entry, watermark, store.get(chain)));
                }
            }
            #[cfg(feature = "redis")]
            Backing::Redis { cache, chains: ids } => {
                let read = cache.get_chains(user, ids).await?;
                parts(&mut chains, read, ids, store);
            }
            #[cfg(feature = "redis-cluster")]
            Backing::RedisCluster { cache, chains: ids } => {
                let read = cache.get_chains(user, ids).await?;
                parts(&mut chains, read, ids, store);
            }
        }
        Ok(MultiCachedEntry { user, chains })
    }
}

/// Each of `ids`' part of a [`get_chains`](crate::cache::RedisCollateralCache::get_chains)
/// read.
#[cfg(feature = "redis")]
fn parts(
    out: &mut BTreeMap<ChainId, ChainCacheEntry>,
    mut read: crate::cache::ChainEntries,
    ids: &[ChainId],
    store: &ChainHeads,
) {
    for chain in ids {
        let entry = read.entries.remove(chain).flatten();
        let watermark = read.watermarks.remove(chain).flatten();
        out.insert(*chain, part(entry, watermark, store.get(chain)));
    }
}

fn part(
    entry: Option<CachedCollateral>,
    watermark: Option<StateRef>,
    store: Option<&StateRef>,
) -> ChainCacheEntry {
    ChainCacheEntry {
        current: is_current(watermark.as_ref(), store),
        entry,
        watermark,
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};
    use rust_decimal::Decimal;

    use super::*;
    use crate::cache::MemoryCache;
    use crate::model::BlockRef;

    fn state(number: u64, hash: u8, finalized: Option<u64>) -> StateRef {
        StateRef {
            head: BlockRef {
                number,
                hash: B256::repeat_byte(hash),
            },
            finalized,
        }
    }

    fn entry(user: UserId, at: StateRef, value: i64) -> CachedCollateral {
        CachedCollateral {
            user,
            block: at.head.number,
            hash: at.head.hash,
            finalized: at.finalized,
            confirmed: Decimal::from(value),
            pending: Decimal::from(value),
            assets: BTreeMap::new(),
            complete: true,
        }
    }

    #[test]
    fn currency_compares_the_watermark_with_the_store() {
        let s = state(10, 1, Some(5));
        assert!(is_current(None, None));
        assert!(!is_current(None, Some(&s)));
        assert!(is_current(Some(&s), Some(&s)));
        assert!(is_current(Some(&state(11, 2, Some(5))), Some(&s)));
        assert!(!is_current(Some(&state(9, 1, Some(5))), Some(&s)));
        assert!(
            !is_current(Some(&state(10, 2, Some(5))), Some(&s)),
            "another block at 10"
        );
        assert!(
            !is_current(Some(&state(10, 1, Some(4))), Some(&s)),
            "finalized behind"
        );
    }

    #[tokio::test]
    async fn memory_caches_per_chain() {
        let user = Address::repeat_byte(0xb0);
        let (a, b) = (MemoryCache::default(), MemoryCache::default());
        let (sa, sb) = (state(10, 1, None), state(20, 2, Some(3)));
        a.write(&[entry(user, sa, 7)], Some(sa)).await.unwrap();
        b.write(&[entry(user, sb, 5)], Some(state(19, 9, Some(3))))
            .await
            .unwrap();
        let caches: BTreeMap<ChainId, Arc<dyn CollateralCache>> = [
            (ChainId(1), Arc::new(a) as Arc<dyn CollateralCache>),
            (ChainId(8453), Arc::new(b) as Arc<dyn CollateralCache>),
        ]
        .into();
        let multi = MultiChainCache::new(caches);
        assert_eq!(multi.chains(), vec![ChainId(1), ChainId(8453)]);
        let store: ChainHeads = [(ChainId(1), sa), (ChainId(8453), sb)].into();
        let got = multi.get(user, &store).await.unwrap();
        assert_eq!(got.current_chains(), vec![ChainId(1)]);
        assert!(
            !got.is_current(),
            "chain 8453's watermark is behind its store"
        );
        assert_eq!(
            got.chains[&ChainId(8453)]
                .entry
                .as_ref()
                .map(|e| e.confirmed),
            Some(Decimal::from(5))
        );
        assert_eq!(got.watermarks()[&ChainId(1)], sa);
        // Once chain 8453's cache catches up, the entry is current everywhere.
        let caches = multi.clone();
        if let Backing::Caches(c) = &caches.backing {
            c[&ChainId(8453)].write(&[], Some(sb)).await.unwrap();
        }
        assert!(multi.get(user, &store).await.unwrap().is_current());
        // A user without entries on a chain whose store has nothing applied is current.
        let other = Address::repeat_byte(0xc0);
        let got = multi.get(other, &ChainHeads::new()).await.unwrap();
        assert!(got.is_current());
        assert!(got.chains.values().all(|c| c.entry.is_none()));
    }
}
