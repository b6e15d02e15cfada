//! A user-defined store plugged into the watcher: `CountingWriter` decorates the writer side
//! of any store (here the in-memory one) with counters, like object_store's `LimitStore` /
//! `ThrottledStore` wrap another store. A decorator implements only the role it changes
//! ([`StoreWriter`]); `ComposedStore` joins it with the inner store's reader sides into one
//! `BalanceStore`. It then passes the conformance suite against the replay oracle, which is
//! how you check your own backend.
//!
//! ```sh
//! cargo run --example custom_store --features testing
//! ```

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use alloy_primitives::U256;
use async_trait::async_trait;
use reorg_collateral::StoreError;
use reorg_collateral::model::{AssetId, AssetIndex, BalanceKey, BlockNumber, Changeset, Price};
use reorg_collateral::model::{StoreIdentity, Window};
use reorg_collateral::prelude::*;
use reorg_collateral::store::{ComposedStore, MemoryStore};
use reorg_collateral::testing::{Backends, conformance};
use reorg_collateral::traits::Touched;

/// Changesets, reverted blocks and base-state reads seen by a [`CountingWriter`].
#[derive(Debug, Default)]
struct Counts {
    applies: AtomicU64,
    reverted_blocks: AtomicU64,
    reads: AtomicU64,
}

/// Counts what the watcher writes and reads, then delegates.
#[derive(Debug)]
struct CountingWriter<S: ?Sized> {
    counts: Counts,
    inner: Arc<S>,
}

/// Every method is forwarded, the required `claim_writer` too: it is the inner store's
/// writer lock and identity check.
#[async_trait]
impl<S: StoreWriter + ?Sized> StoreWriter for CountingWriter<S> {
    async fn window(&self) -> Result<Window, StoreError> {
        self.inner.window().await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
        self.inner.balances_at(keys, at).await
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
        self.inner.prices_at(assets, at).await
    }

    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
        self.inner.indexes_at(assets, at).await
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<reorg_collateral::model::AssetState>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
        self.inner.asset_states_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.counts.applies.fetch_add(1, Relaxed);
        self.counts
            .reverted_blocks
            .fetch_add(changes.revert.len() as u64, Relaxed);
        self.inner.apply(changes).await
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        self.inner.touched(blocks).await
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.inner.claim_writer(identity).await
    }
}

type Counted = ComposedStore<CountingWriter<MemoryStore>, MemoryStore>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut stores: Vec<Arc<Counted>> = Vec::new();
    conformance::run_all(|| {
        let memory = Arc::new(MemoryStore::new());
        let writer = CountingWriter {
            counts: Counts::default(),
            inner: memory.clone(),
        };
        let store = Arc::new(ComposedStore::new(writer, memory));
        stores.push(store.clone());
        async move { Backends::new(store) }
    })
    .await;
    let sum = |f: fn(&Counts) -> &AtomicU64| {
        stores
            .iter()
            .map(|s| f(&s.writer().counts).load(Relaxed))
            .sum::<u64>()
    };
    println!(
        "conformance suite passed on CountingWriter<MemoryStore> ({} scenarios)",
        stores.len()
    );
    println!("  changesets applied: {}", sum(|c| &c.applies));
    println!(
        "  blocks reverted by reorgs: {}",
        sum(|c| &c.reverted_blocks)
    );
    println!("  base-state reads: {}", sum(|c| &c.reads));
}
