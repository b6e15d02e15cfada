//! [`RecordingStore`]: a store decorator that records every state the store commits (its
//! head, finalized height and canonical blocks), so a test can tell what a read taken
//! while the writer ran had to answer, and that yields to the scheduler on every call, so
//! a reader and the writer interleave even on a single-threaded runtime over memory
//! backends.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

use alloy_primitives::U256;
use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, BalanceKey, BalanceView, Block, BlockNumber, Changeset, Price, PriceView,
    RateView, StateRef, StoreIdentity, UserId, Window,
};
use crate::traits::{
    BalanceReader, BalanceStore, LogReader, LogRecord, PriceFeed, RateFeed, StoreWriter, Touched,
};

/// One committed state: what it names, and the canonical chain and finalized height the
/// oracle replays for it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The state (`None`: nothing applied yet).
    pub state: Option<StateRef>,
    /// The canonical blocks, ascending.
    pub chain: Arc<Vec<Block>>,
    /// The finalized height.
    pub finalized: Option<BlockNumber>,
}

/// Wraps a store (every role), recording each state it commits, in order; index 0 is the
/// state it held when wrapped (a fresh store: nothing applied). Every call first yields.
#[derive(Debug)]
pub struct RecordingStore {
    inner: Arc<dyn BalanceStore>,
    states: Mutex<Vec<Recorded>>,
}

impl RecordingStore {
    /// Wraps `inner`, which must be empty (no block applied).
    pub fn new(inner: Arc<dyn BalanceStore>) -> Self {
        Self {
            inner,
            states: Mutex::new(vec![Recorded {
                state: None,
                chain: Arc::new(Vec::new()),
                finalized: None,
            }]),
        }
    }

    /// The index of the state recorded last. A read bracketed by `seq()` before and after
    /// may have seen the states of those indices, and the next one (committed and not
    /// recorded yet when the read ended).
    pub fn seq(&self) -> usize {
        self.states().len() - 1
    }

    /// The states committed at indices `range`.
    pub fn recorded(&self, range: RangeInclusive<usize>) -> Vec<Recorded> {
        self.states()[range].to_vec()
    }

    fn states(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the state after `changes`, committed on top of the last one.
    fn record(&self, changes: &Changeset, window: &Window) {
        let mut states = self.states();
        let last = states.last().cloned();
        let mut chain: Vec<Block> = last.map(|r| r.chain.to_vec()).unwrap_or_default();
        if let Some(first) = changes.revert.first() {
            chain.retain(|b| b.header.number < first.number);
        }
        chain.extend(changes.blocks.iter().map(|b| b.block.clone()));
        states.push(Recorded {
            state: window.state(),
            chain: Arc::new(chain),
            finalized: window.finalized_number(),
        });
    }
}

#[async_trait]
impl StoreWriter for RecordingStore {
    async fn window(&self) -> Result<Window, StoreError> {
        tokio::task::yield_now().await;
        self.inner.window().await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.balances_at(keys, at).await
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.prices_at(assets, at).await
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<crate::model::AssetState>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.asset_states_at(assets, at).await
    }

    /// Applies, then records the new state (the store's single writer calls it, so no
    /// other commit comes between the two).
    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.indexes_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.inner.apply(changes).await?;
        let window = self.inner.window().await?;
        self.record(changes, &window);
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        tokio::task::yield_now().await;
        self.inner.touched(blocks).await
    }

    async fn head(&self) -> Result<Option<crate::model::BlockHeader>, StoreError> {
        self.inner.head().await
    }

    async fn head_state(
        &self,
    ) -> Result<Option<(crate::model::BlockHeader, crate::model::StateRef)>, StoreError> {
        self.inner.head_state().await
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.inner.claim_writer(identity).await
    }

    async fn release_writer(&self) -> Result<(), StoreError> {
        self.inner.release_writer().await
    }

    async fn resume_requests(&self) -> Result<Vec<crate::model::ResumeRequest>, StoreError> {
        self.inner.resume_requests().await
    }

    async fn remove_resume_request(
        &self,
        request: &crate::model::ResumeRequest,
    ) -> Result<(), StoreError> {
        self.inner.remove_resume_request(request).await
    }
}

#[async_trait]
impl BalanceReader for RecordingStore {
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.user_balances(user).await
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.holders(asset).await
    }

    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.user_balances_many(users).await
    }

    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        tokio::task::yield_now().await;
        self.inner.balance(key).await
    }
}

#[async_trait]
impl LogReader for RecordingStore {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.log(blocks).await
    }

    async fn user_log(
        &self,
        key: BalanceKey,
        side: crate::traits::LogSide,
        limit: usize,
    ) -> Result<crate::traits::UserLog, crate::traits::HistoryError> {
        self.inner.user_log(key, side, limit).await
    }

    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<crate::traits::HistoryAt, crate::traits::HistoryError> {
        self.inner.history_at(user, block).await
    }

    async fn history_prices(
        &self,
        assets: &[crate::model::AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<crate::model::Price>>, crate::traits::HistoryError> {
        self.inner.history_prices(assets, block).await
    }
}

#[async_trait]
impl PriceFeed for RecordingStore {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        tokio::task::yield_now().await;
        self.inner.price(asset).await
    }

    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.prices(assets).await
    }
}

#[async_trait]
impl crate::traits::AssetStateReader for RecordingStore {
    async fn asset_states(&self) -> Result<Vec<crate::model::AssetStateView>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.asset_states().await
    }
}

#[async_trait]
impl RateFeed for RecordingStore {
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.rates(assets).await
    }
}
