//! Backends that fail on demand: a simulated chain whose head fails or that delivers
//! blocks only up to a height, a memory cache whose writes fail, a memory store whose
//! window read fails.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloy_primitives::{B256, U256};
use async_trait::async_trait;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::error::{CacheError, SourceError, StoreError};
use reorg_collateral::model::{
    AssetId, AssetIndex, BalanceKey, Block, BlockId, BlockNumber, CachedCollateral, Changeset,
    Price, StateRef, StoreIdentity, UserId, Window,
};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{ComposedStore, MemoryStore};
use reorg_collateral::traits::Touched;
use reorg_collateral::{BlockSource, CollateralCache, StoreWriter};

/// The chain id the flaky source reports.
pub const CHAIN_ID: u64 = 31_337;

/// A simulated chain with a chain id; `head` fails while `failing` is set, and blocks
/// above `deliver_up_to` are not found.
#[derive(Debug)]
pub struct Flaky {
    pub chain: Arc<SimulatedChain>,
    pub failing: AtomicBool,
    pub deliver_up_to: AtomicU64,
}

impl Flaky {
    pub fn new(chain: Arc<SimulatedChain>) -> Self {
        Self {
            chain,
            failing: AtomicBool::new(false),
            deliver_up_to: AtomicU64::new(u64::MAX),
        }
    }

    fn check(&self, n: BlockNumber) -> Result<(), SourceError> {
        if n > self.deliver_up_to.load(Ordering::SeqCst) {
            return Err(SourceError::NotFound(BlockId::Number(n)));
        }
        Ok(())
    }
}

#[async_trait]
impl BlockSource for Flaky {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SourceError::Transport {
                operation: "head".into(),
                source: "connection refused".into(),
            });
        }
        self.chain.head().await
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.check(n)?;
        self.chain.block_by_number(n).await
    }
    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(hash).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(Some(CHAIN_ID))
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }
}

/// A memory cache whose writes fail while `failing` is set.
#[derive(Debug, Default)]
pub struct FlakyCache {
    pub inner: MemoryCache,
    pub failing: AtomicBool,
}

#[async_trait]
impl CollateralCache for FlakyCache {
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CacheError::Backend {
                backend: "flaky",
                operation: "write".into(),
                source: "down".into(),
            });
        }
        self.inner.write(entries, watermark).await
    }
    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        self.inner.get(user).await
    }
    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        self.inner.watermark().await
    }
    async fn clear(&self) -> Result<(), CacheError> {
        self.inner.clear().await
    }
}

/// The memory store's writer side, whose `window` fails while `failing` is set.
#[derive(Debug)]
pub struct FlakyWriter {
    pub inner: Arc<MemoryStore>,
    pub failing: Arc<AtomicBool>,
}

/// A memory store whose window read fails while the returned flag is set.
pub fn flaky_store() -> (
    Arc<ComposedStore<FlakyWriter, MemoryStore>>,
    Arc<AtomicBool>,
) {
    let memory = Arc::new(MemoryStore::new());
    let failing = Arc::new(AtomicBool::new(false));
    let writer = FlakyWriter {
        inner: memory.clone(),
        failing: failing.clone(),
    };
    (Arc::new(ComposedStore::new(writer, memory)), failing)
}

#[async_trait]
impl StoreWriter for FlakyWriter {
    async fn window(&self) -> Result<Window, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                backend: "flaky",
                operation: "read the window".into(),
                source: "connection refused".into(),
            });
        }
        self.inner.window().await
    }
    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        self.inner.balances_at(keys, at).await
    }
    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        self.inner.prices_at(assets, at).await
    }
    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        self.inner.indexes_at(assets, at).await
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<reorg_collateral::model::AssetState>, StoreError> {
        self.inner.asset_states_at(assets, at).await
    }
    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.inner.apply(changes).await
    }
    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        self.inner.touched(blocks).await
    }
    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.inner.claim_writer(identity).await
    }
}
