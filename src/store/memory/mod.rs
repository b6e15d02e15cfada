//! The embedded default store, [`MemoryStore`]: one lock around the event log, confirmed
//! and per-block pending balances and prices. The store's state types are in `state`, the
//! write steps in `apply`, the reader sides in `read`, the log in `log`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use alloy_primitives::U256;
use alloy_primitives::map::{HashMap, HashSet};
use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, AssetState, AssetStateView, BalanceKey, BlockNumber, Changeset, Price,
    ResumeRequest, StoreIdentity, UserId, Window,
};
use crate::traits::{AssetStateReader, StoreWriter, Touched};

mod apply;
mod asset_state;
mod history;
mod indexes;
mod log;
mod rates;
mod read;
mod resume;
mod retention;
mod state;

use log::Log;
use state::{PendingBlock, PriceState, UserState};

const BACKEND: &str = "memory";

/// The embedded default store: the event log, confirmed balances, per-block pending
/// balances and prices, all in memory behind one lock.
///
/// Reorgs and confirmations cost O(rows of the affected blocks), lookups O(1), and a user's
/// balances O(assets of the user). Implements every store role, so it is a
/// [`BalanceStore`](crate::traits::BalanceStore).
///
/// [`claim_writer`](StoreWriter::claim_writer) records the first identity and refuses
/// another; writer ownership needs no lock here, since the store lives in one process and
/// every handle to it is the same object.
///
/// Its event log keeps the unconfirmed window and the last
/// [`DEFAULT_RETAINED_CONFIRMED_BLOCKS`] confirmed blocks ([`with_retention`](Self::with_retention)
/// sets another [`Retention`]), so it stays bounded on a long chain.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

pub use retention::{DEFAULT_RETAINED_CONFIRMED_BLOCKS, Retained, Retention};

/// Everything behind the store's lock.
#[derive(Debug, Default)]
struct Inner {
    window: Window,
    /// Per user, the state of each asset they hold, sorted by asset: one hash lookup and
    /// one or two cache lines per balance, which is what ingest speed depends on.
    users: HashMap<UserId, UserState>,
    holders: HashMap<AssetId, HashSet<UserId>>,
    prices: HashMap<AssetId, PriceState>,
    /// Rebasing assets' indexes.
    indexes: HashMap<AssetId, indexes::IndexState>,
    /// Vault rates, per asset (see `rates`).
    rates: HashMap<AssetId, rates::RateState>,
    pending: BTreeMap<BlockNumber, PendingBlock>,
    /// The append-only event log, one entry per block hash ever applied (rows are expanded
    /// on read); a block that comes back reuses its entry.
    log: Log,
    /// The identity recorded by the first `claim_writer`.
    identity: Option<StoreIdentity>,
    /// Log ranges per block height (reverted and canonical blocks alike).
    log_by_block: BTreeMap<BlockNumber, Vec<usize>>,
    /// How much of the confirmed log is kept.
    retention: Retention,
    /// The assets' quarantines.
    asset_states: asset_state::AssetStates,
    /// Per-user log positions and finalized balance and price points (`history_at`).
    history: history::History,
    /// Resume requests not yet written, oldest first (see `resume`).
    resume_requests: Vec<ResumeRequest>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of rows in the event log.
    pub fn log_len(&self) -> usize {
        self.read().log.iter().map(|b| b.rows().count()).sum()
    }

    /// An empty store keeping the log of `retention`'s confirmed blocks (see [`Retention`];
    /// [`new`](Self::new) keeps [`DEFAULT_RETAINED_CONFIRMED_BLOCKS`]).
    pub fn with_retention(retention: Retention) -> Self {
        let store = Self::default();
        store.write().retention = retention;
        store
    }
}

#[async_trait]
impl StoreWriter for MemoryStore {
    async fn window(&self) -> Result<Window, StoreError> {
        Ok(self.read().window.clone())
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        let mut inner = self.write();
        match inner.identity {
            None => {
                inner.identity = Some(*identity);
                Ok(())
            }
            Some(stored) if stored == *identity => Ok(()),
            Some(stored) => Err(StoreError::IdentityMismatch {
                backend: BACKEND,
                stored,
                claimed: *identity,
            }),
        }
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        let inner = self.read();
        Ok(keys
            .iter()
            .map(|k| inner.key(k).map_or(U256::ZERO, |s| s.at(at)))
            .collect())
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        let inner = self.read();
        Ok(assets
            .iter()
            .map(|a| inner.prices.get(a).and_then(|s| s.at(at)))
            .collect())
    }

    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        let inner = self.read();
        Ok(assets
            .iter()
            .map(|a| inner.indexes.get(a).and_then(|s| s.at(at)))
            .collect())
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<AssetState>, StoreError> {
        Ok(self.read().asset_states.at(assets, at))
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.validate(changes)?;
        for header in changes.revert.iter().rev() {
            inner.revert(header);
        }
        for block in &changes.blocks {
            inner.append(block);
        }
        if let Some(tip) = changes.finalize {
            inner.finalize(tip);
        }
        Ok(())
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        let inner = self.read();
        let mut touched = Touched::default();
        if blocks.is_empty() {
            return Ok(touched);
        }
        for block in inner.pending.range(blocks).map(|(_, b)| b) {
            touched.users.extend(block.keys.iter().map(|k| k.user));
            touched
                .price_assets
                .extend(block.price_assets.iter().copied());
            // A rebase changes every holder's balance, as a price changes their value.
            touched.price_assets.extend(block.rebased.iter().copied());
            touched
                .price_assets
                .extend(block.rate_assets.iter().copied());
        }
        Ok(touched)
    }

    async fn resume_requests(&self) -> Result<Vec<ResumeRequest>, StoreError> {
        Ok(self.read_resumes())
    }

    async fn remove_resume_request(&self, request: &ResumeRequest) -> Result<(), StoreError> {
        self.remove_resume(request);
        Ok(())
    }
}

#[async_trait]
impl AssetStateReader for MemoryStore {
    async fn asset_states(&self) -> Result<Vec<AssetStateView>, StoreError> {
        Ok(self.read().asset_states.views())
    }
}
