//! [`ComposedStore`]: one [`BalanceStore`](crate::traits::BalanceStore) handle from a writer
//! side and a reader side, so a decorator implements only the role it changes.

use std::ops::RangeInclusive;
use std::sync::Arc;

use alloy_primitives::U256;
use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, BalanceKey, BalanceView, BlockHeader, BlockNumber, Changeset, Price,
    PriceView, RateView, StateRef, StoreIdentity, UserId, Window,
};
use crate::traits::{
    BalanceReader, LogReader, LogRecord, PriceFeed, RateFeed, StoreWriter, Touched,
};

/// A store whose [`StoreWriter`] side is `W` and whose reader sides ([`BalanceReader`],
/// [`LogReader`], [`PriceFeed`], [`RateFeed`]) are `R`'s.
///
/// Every method, provided ones included, is forwarded to the side that owns it, so an
/// override in `W` or `R` (a batched `user_balances_many`, a `claim_writer` that takes a
/// lock) is never lost. The typical use is a decorator of the writer side around a store
/// that also serves the reads: `ComposedStore::new(Counting::new(memory.clone()), memory)`
/// (see `examples/custom_store.rs`).
///
/// The two sides must be views of one store: the contract of [`StoreWriter`] (reads see
/// what [`apply`](StoreWriter::apply) committed) holds only if `R` reads what `W` writes.
#[derive(Debug)]
pub struct ComposedStore<W, R: ?Sized> {
    writer: W,
    readers: Arc<R>,
}

impl<W, R: ?Sized> ComposedStore<W, R> {
    /// The store writing through `writer` and reading through `readers`.
    pub fn new(writer: W, readers: Arc<R>) -> Self {
        Self { writer, readers }
    }

    /// The writer side.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The reader side.
    pub fn readers(&self) -> &Arc<R> {
        &self.readers
    }
}

#[async_trait]
impl<W, R> StoreWriter for ComposedStore<W, R>
where
    W: StoreWriter,
    R: std::fmt::Debug + Send + Sync + ?Sized,
{
    async fn window(&self) -> Result<Window, StoreError> {
        self.writer.window().await
    }

    async fn head(&self) -> Result<Option<BlockHeader>, StoreError> {
        self.writer.head().await
    }

    async fn head_state(&self) -> Result<Option<(BlockHeader, StateRef)>, StoreError> {
        self.writer.head_state().await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        self.writer.balances_at(keys, at).await
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        self.writer.prices_at(assets, at).await
    }

    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        self.writer.indexes_at(assets, at).await
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<crate::model::AssetState>, StoreError> {
        self.writer.asset_states_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.writer.apply(changes).await
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        self.writer.touched(blocks).await
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.writer.claim_writer(identity).await
    }

    async fn release_writer(&self) -> Result<(), StoreError> {
        self.writer.release_writer().await
    }

    async fn resume_requests(&self) -> Result<Vec<crate::model::ResumeRequest>, StoreError> {
        self.writer.resume_requests().await
    }

    async fn remove_resume_request(
        &self,
        request: &crate::model::ResumeRequest,
    ) -> Result<(), StoreError> {
        self.writer.remove_resume_request(request).await
    }
}

#[async_trait]
impl<W, R> BalanceReader for ComposedStore<W, R>
where
    W: std::fmt::Debug + Send + Sync,
    R: BalanceReader + ?Sized,
{
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        self.readers.user_balances(user).await
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        self.readers.holders(asset).await
    }

    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        self.readers.user_balances_many(users).await
    }

    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        self.readers.balance(key).await
    }
}

#[async_trait]
impl<W, R> LogReader for ComposedStore<W, R>
where
    W: std::fmt::Debug + Send + Sync,
    R: LogReader + ?Sized,
{
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        self.readers.log(blocks).await
    }

    async fn user_log(
        &self,
        key: BalanceKey,
        side: crate::traits::LogSide,
        limit: usize,
    ) -> Result<crate::traits::UserLog, crate::traits::HistoryError> {
        self.readers.user_log(key, side, limit).await
    }

    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<crate::traits::HistoryAt, crate::traits::HistoryError> {
        self.readers.history_at(user, block).await
    }

    async fn history_prices(
        &self,
        assets: &[crate::model::AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<crate::model::Price>>, crate::traits::HistoryError> {
        self.readers.history_prices(assets, block).await
    }
}

#[async_trait]
impl<W, R> PriceFeed for ComposedStore<W, R>
where
    W: std::fmt::Debug + Send + Sync,
    R: PriceFeed + ?Sized,
{
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        self.readers.price(asset).await
    }

    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        self.readers.prices(assets).await
    }
}

#[async_trait]
impl<W, R> crate::traits::AssetStateReader for ComposedStore<W, R>
where
    W: std::fmt::Debug + Send + Sync,
    R: crate::traits::AssetStateReader + ?Sized,
{
    async fn asset_states(&self) -> Result<Vec<crate::model::AssetStateView>, StoreError> {
        self.readers.asset_states().await
    }
}

#[async_trait]
impl<W, R> RateFeed for ComposedStore<W, R>
where
    W: std::fmt::Debug + Send + Sync,
    R: RateFeed + ?Sized,
{
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError> {
        self.readers.rates(assets).await
    }
}
