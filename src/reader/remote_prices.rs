//! Prices from another chain's store: [`CollateralReader::with_price_from`].
//!
//! An asset of this chain (an L2's WETH) can be valued with a price another chain's store
//! ingested (Ethereum's Chainlink ETH/USD feed). The price view is read from the other
//! store, under the key it has there, instead of this store: the confirmed balance is
//! valued with the other chain's *confirmed* price, the pending balance with its *pending*
//! price (see docs/multichain.md). The two chains' finalized points are not synchronized
//! in time; a price's age is measured against the latest head timestamp of the chains
//! involved (see [`CollateralReader::collateral_snapshot`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::CollateralReader;
use crate::chains::{ChainId, ChainsError};
use crate::error::StoreError;
use crate::model::{AssetId, PriceSource, PriceView, StateRef};
use crate::traits::BalanceStore;

/// Where one of a reader's price keys is read from instead of its own store.
#[derive(Clone, Debug)]
pub struct RemotePrice {
    /// The other chain.
    pub chain: ChainId,
    /// The other chain's store (its [`PriceFeed`](crate::traits::PriceFeed) is read).
    pub store: Arc<dyn BalanceStore>,
    /// The key the price is stored under in the other store (the feed's asset there).
    pub key: AssetId,
}

/// A reader's remote price sources, by local price key.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemotePrices {
    by_key: BTreeMap<AssetId, RemotePrice>,
}

impl RemotePrices {
    /// The distinct other stores, in the order of their first key, with their chain: one
    /// read each. Stores are told apart by handle (`Arc::ptr_eq`).
    pub(crate) fn stores(&self) -> Vec<(ChainId, &Arc<dyn BalanceStore>)> {
        let mut out: Vec<(ChainId, &Arc<dyn BalanceStore>)> = Vec::new();
        for r in self.by_key.values() {
            if !out.iter().any(|(_, s)| Arc::ptr_eq(s, &r.store)) {
                out.push((r.chain, &r.store));
            }
        }
        out
    }
}

impl CollateralReader {
    /// Values `asset` with the prices another chain's store holds under `key_there`: its
    /// price view is read from `other.prices(&[key_there])` instead of this store's (one
    /// read per other store per [`collateral_many`](Self::collateral_many) call, the keys
    /// batched). Every asset whose price key
    /// ([`AssetRegistry::price_key`](crate::model::AssetRegistry::price_key)) is `asset`
    /// follows: a [`PriceSource::SameAs`] of it, a vault
    /// ([`PriceSource::Derived`]) over it. Setting `asset` again replaces its source.
    ///
    /// Confirmed balances are valued with the other chain's confirmed price, pending ones
    /// with its pending price. Refused (the reader unchanged, nothing read) when `asset`
    /// is not tracked ([`ChainsError::UnknownAsset`]) or is not its own price key
    /// ([`ChainsError::NotAPriceKey`]: its price already comes from another asset).
    pub fn with_price_from(
        mut self,
        asset: AssetId,
        other: Arc<dyn BalanceStore>,
        other_chain: ChainId,
        key_there: AssetId,
    ) -> Result<Self, ChainsError> {
        let registry = self.valuator.assets();
        if !registry.contains(&asset) {
            return Err(ChainsError::UnknownAsset { asset });
        }
        let price_source = registry.price_source(&asset);
        if price_source != PriceSource::Own {
            return Err(ChainsError::NotAPriceKey {
                asset,
                price_source,
            });
        }
        self.remote.by_key.insert(
            asset,
            RemotePrice {
                chain: other_chain,
                store: other,
                key: key_there,
            },
        );
        Ok(self)
    }

    /// The price keys read from another chain's store, ascending, with where from.
    pub fn remote_prices(&self) -> impl Iterator<Item = (AssetId, &RemotePrice)> {
        self.remote.by_key.iter().map(|(k, r)| (*k, r))
    }

    /// The price views of `keys` (price keys, distinct): those with a remote source from
    /// their other store (one read per store, keys batched), the others from this store
    /// (one read).
    pub(crate) async fn read_prices(
        &self,
        keys: &[AssetId],
    ) -> Result<HashMap<AssetId, PriceView>, StoreError> {
        let (remote, local): (Vec<AssetId>, Vec<AssetId>) = keys
            .iter()
            .copied()
            .partition(|k| self.remote.by_key.contains_key(k));
        let mut out: HashMap<AssetId, PriceView> = HashMap::with_capacity(keys.len());
        if !local.is_empty() {
            let views = self.store.prices(&local).await?;
            out.extend(local.into_iter().zip(views));
        }
        if remote.is_empty() {
            return Ok(out);
        }
        for (_, store) in self.remote.stores() {
            let mine: Vec<(AssetId, AssetId)> = remote
                .iter()
                .filter_map(|k| {
                    let r = &self.remote.by_key[k];
                    Arc::ptr_eq(&r.store, store).then_some((*k, r.key))
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let there: Vec<AssetId> = mine.iter().map(|(_, t)| *t).collect();
            let views = store.prices(&there).await?;
            out.extend(mine.iter().map(|(k, _)| *k).zip(views));
        }
        Ok(out)
    }

    /// The head states of the other stores prices are read from (in
    /// [`RemotePrices::stores`] order): `(chain, head timestamp, state)`, `None` for a
    /// store with no block applied.
    pub(crate) async fn remote_states(
        &self,
    ) -> Result<Vec<(ChainId, Option<(u64, StateRef)>)>, StoreError> {
        let mut out = Vec::new();
        for (chain, store) in self.remote.stores() {
            let state = store.head_state().await?;
            out.push((chain, state.map(|(h, s)| (h.timestamp, s))));
        }
        Ok(out)
    }
}

#[cfg(all(test, feature = "testing"))]
#[path = "remote_prices_tests.rs"]
mod tests;
