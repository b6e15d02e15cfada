//! A user-defined store plugged into the watcher: `CountingStore` decorates any
//! `BalanceStore` (here the in-memory one) with counters, like object_store's
//! `LimitStore` / `ThrottledStore` wrap another store. It then passes the conformance suite
//! against the replay oracle, which is how you check your own backend.
//!
//! ```sh
//! cargo run --example custom_store --features testing
//! ```

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_primitives::U256;
use async_trait::async_trait;
use reorg_collateral::StoreError;
use reorg_collateral::model::{
    AssetId, BalanceKey, BalanceView, BlockNumber, Changeset, Price, PriceView, UserId, Window,
};
use reorg_collateral::prelude::*;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance};
use reorg_collateral::traits::{LogRecord, Touched};

/// Counts changesets, reverted blocks and reads, then delegates.
#[derive(Debug, Default)]
struct CountingStore<S> {
    inner: S,
    applies: AtomicU64,
    reverted_blocks: AtomicU64,
    reads: AtomicU64,
}

impl<S> CountingStore<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            applies: AtomicU64::new(0),
            reverted_blocks: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn read_count(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// The writer's side is where the counters are; the reads are forwarded unchanged.
#[async_trait]
impl<S: BalanceStore> StoreWriter for CountingStore<S> {
    async fn window(&self) -> Result<Window, StoreError> {
        self.inner.window().await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        self.read();
        self.inner.balances_at(keys, at).await
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        self.read();
        self.inner.prices_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.applies.fetch_add(1, Ordering::Relaxed);
        self.reverted_blocks
            .fetch_add(changes.revert.len() as u64, Ordering::Relaxed);
        self.inner.apply(changes).await
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        self.inner.touched(blocks).await
    }
}

#[async_trait]
impl<S: BalanceStore> BalanceReader for CountingStore<S> {
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        self.read();
        self.inner.user_balances(user).await
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        self.inner.holders(asset).await
    }
}

#[async_trait]
impl<S: BalanceStore> LogReader for CountingStore<S> {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        self.inner.log(blocks).await
    }
}

#[async_trait]
impl<S: BalanceStore> PriceFeed for CountingStore<S> {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        self.read();
        self.inner.price(asset).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut stores = Vec::new();
    conformance::run_all(|| {
        let store = Arc::new(CountingStore::new(MemoryStore::new()));
        stores.push(store.clone());
        async move { Backends::new(store.clone(), store) }
    })
    .await;
    let sum = |f: fn(&CountingStore<MemoryStore>) -> u64| stores.iter().map(|s| f(s)).sum::<u64>();
    println!(
        "conformance suite passed on CountingStore<MemoryStore> ({} scenarios)",
        stores.len()
    );
    println!(
        "  changesets applied: {}",
        sum(|s| s.applies.load(Ordering::Relaxed))
    );
    println!(
        "  blocks reverted by reorgs: {}",
        sum(|s| s.reverted_blocks.load(Ordering::Relaxed))
    );
    println!("  reads: {}", sum(|s| s.read_count()));
}
