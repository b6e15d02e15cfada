//! The one-statement read of [`CollateralReader`] on Postgres (feature `postgres`).
//!
//! When the reader's store, and every store its prices come from
//! ([`with_price_from`](CollateralReader::with_price_from)), is a
//! [`PostgresStore`](crate::store::PostgresStore) of one database (schemas of one chains
//! catalog, or stores connected to the same server, database and role), a collateral read
//! is ONE statement: every store's state (head, finalized height), the users' balances and
//! rebasing indexes, the prices of the keys they need (those of other chains from their
//! stores), the vault rates of the derived assets they hold and the quarantines. One
//! statement is one snapshot of every schema, so the values are of the state it reports,
//! with no before / after check and no retry. Any other store (the memory store, a
//! decorator) keeps the separate reads.

use std::collections::HashMap;
use std::sync::Arc;

use super::{CollateralReader, ValuationPoint};
use crate::error::{StoreError, ValuationError};
use crate::model::{AssetId, Collateral, PriceView, StateRef, UserId};
use crate::store::PostgresStore;
use crate::store::snapshot::{ChainInputs, ChainQuery, PriceQuery, SnapshotQuery, read_snapshot};
use crate::traits::BalanceStore;

/// A fixed-key price read of a reader's part: the read, and the local price key of each of
/// its keys (in the same order).
pub(crate) type RemoteRead = (PriceQuery, Vec<AssetId>);

/// `handles` as Postgres stores of one database, in the same order, or `None` when one is
/// not a Postgres store or is in another database (the separate reads then).
pub(crate) fn one_database<'a>(
    handles: &[&'a Arc<dyn BalanceStore>],
) -> Option<Vec<&'a PostgresStore>> {
    let stores: Vec<&PostgresStore> = handles
        .iter()
        .map(|h| h.as_postgres())
        .collect::<Option<_>>()?;
    let first = *stores.first()?;
    stores
        .iter()
        .all(|s| first.same_database(s))
        .then_some(stores)
}

impl CollateralReader {
    /// This reader's part of a [`SnapshotQuery`]: its chain's reads (its store at
    /// `index(store)`), and one fixed-key price read per other store its prices come from.
    pub(crate) fn snapshot_part(
        &self,
        index: impl Fn(&Arc<dyn BalanceStore>) -> usize,
    ) -> (ChainQuery, Vec<RemoteRead>) {
        let registry = self.valuator.assets();
        let mut chain = ChainQuery {
            store: index(&self.store),
            ..ChainQuery::default()
        };
        for asset in registry.iter() {
            let key = registry.price_key(&asset.id);
            if key != asset.id {
                chain.price_keys.push((asset.id, key));
            }
            if registry.is_derived(&asset.id) {
                chain.derived.push(asset.id);
            }
        }
        chain.remote_keys = self.remote_prices().map(|(k, _)| k).collect();
        let remote = self
            .remote
            .stores()
            .into_iter()
            .map(|(_, store)| {
                let (locals, keys): (Vec<AssetId>, Vec<AssetId>) = self
                    .remote_prices()
                    .filter(|(_, r)| Arc::ptr_eq(&r.store, store))
                    .map(|(local, r)| (local, r.key))
                    .unzip();
                let read = PriceQuery {
                    store: index(store),
                    keys,
                };
                (read, locals)
            })
            .collect();
        (chain, remote)
    }

    /// Values `users` at `at` from `inputs` (this reader's chain part of a snapshot) and
    /// the views of its fixed-key price reads (`remote[i]` answering `reads[i]`).
    pub(crate) fn value_inputs(
        &self,
        users: &[UserId],
        inputs: &ChainInputs,
        reads: &[RemoteRead],
        remote: &[HashMap<AssetId, PriceView>],
        at: ValuationPoint,
    ) -> Vec<Result<Collateral, ValuationError>> {
        let mut prices = inputs.prices.clone();
        for ((read, locals), views) in reads.iter().zip(remote) {
            for (local, there) in locals.iter().zip(&read.keys) {
                prices.insert(*local, views.get(there).copied().unwrap_or_default());
            }
        }
        self.value_many(
            users,
            inputs.balances.iter().map(Vec::as_slice),
            &prices,
            &inputs.rates,
            &inputs.states,
            at,
        )
    }

    /// The store handles a read of this reader depends on: its own, then the other stores
    /// its prices come from.
    pub(super) fn handles(&self) -> Vec<&Arc<dyn BalanceStore>> {
        let mut handles = vec![&self.store];
        for (_, store) in self.remote.stores() {
            if !handles.iter().any(|h| Arc::ptr_eq(h, store)) {
                handles.push(store);
            }
        }
        handles
    }

    /// [`collateral_snapshot`](Self::collateral_snapshot) in one statement, or `None` when
    /// the stores are not Postgres stores of one database.
    pub(crate) async fn snapshot_in_one_statement(
        &self,
        users: &[UserId],
    ) -> Option<Result<(Option<StateRef>, Vec<Result<Collateral, ValuationError>>), StoreError>>
    {
        let handles = self.handles();
        let stores = one_database(&handles)?;
        Some(self.read_one(users, &handles, stores, None).await)
    }

    /// [`collateral_many`](Self::collateral_many) in one statement (no state read), or
    /// `None` when the stores are not Postgres stores of one database.
    pub(crate) async fn many_in_one_statement(
        &self,
        users: &[UserId],
        at: ValuationPoint,
    ) -> Option<Result<Vec<Result<Collateral, ValuationError>>, StoreError>> {
        let handles = self.handles();
        let stores = one_database(&handles)?;
        Some(
            self.read_one(users, &handles, stores, Some(at))
                .await
                .map(|(_, values)| values),
        )
    }

    /// One statement over `stores` (`handles`' Postgres stores): valued at `at`, or, when
    /// `None`, at the head read in it, aged against the latest head timestamp of every
    /// store read.
    async fn read_one(
        &self,
        users: &[UserId],
        handles: &[&Arc<dyn BalanceStore>],
        stores: Vec<&PostgresStore>,
        at: Option<ValuationPoint>,
    ) -> Result<(Option<StateRef>, Vec<Result<Collateral, ValuationError>>), StoreError> {
        let index = |s: &Arc<dyn BalanceStore>| {
            handles
                .iter()
                .position(|h| Arc::ptr_eq(h, s))
                .unwrap_or_default()
        };
        let (chain, reads) = self.snapshot_part(index);
        let query = SnapshotQuery {
            stores,
            heads: at.is_none(),
            users,
            chains: vec![chain],
            prices: reads.iter().map(|(r, _)| r.clone()).collect(),
        };
        let what = format!(
            "read the collateral of {} users in one statement",
            users.len()
        );
        let snapshot = read_snapshot(&query, &what).await?;
        let own = snapshot.heads.first().copied().flatten();
        let at = at.unwrap_or_else(|| {
            let mut at = ValuationPoint::of(own.as_ref().map(|(h, _)| h));
            at.now = snapshot
                .heads
                .iter()
                .skip(1)
                .flatten()
                .map(|(h, _)| h.timestamp)
                .fold(at.now, u64::max);
            at
        });
        let inputs = snapshot.chains.into_iter().next().unwrap_or_default();
        let values = self.value_inputs(users, &inputs, &reads, &snapshot.prices, at);
        Ok((own.map(|(_, s)| s), values))
    }
}
