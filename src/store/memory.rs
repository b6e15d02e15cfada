use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use alloy_primitives::U256;
use async_trait::async_trait;

use crate::engine::{Changeset, Window};
use crate::error::StoreError;
use crate::model::{
    AssetId, BalanceKey, BalanceView, BlockHeader, BlockNumber, Price, PriceView, UserId,
};
use crate::traits::{BalanceStore, LogRecord, LogStatus, PriceFeed, Touched};

const BACKEND: &str = "memory";

/// The embedded default store: the event log, confirmed balances, per-block pending
/// balances and prices, all in memory behind one lock.
///
/// Reorgs and confirmations cost O(rows of the affected blocks), lookups O(1), and a user's
/// balances O(assets of the user). Implements both [`BalanceStore`] and [`PriceFeed`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

/// One balance: its confirmed value and the value after each pending block that touched it.
#[derive(Debug, Default)]
struct KeyState {
    confirmed: U256,
    /// `(block, balance after block)`, ascending by block.
    pending: Vec<(BlockNumber, U256)>,
}

impl KeyState {
    fn at(&self, at: BlockNumber) -> U256 {
        self.pending
            .iter()
            .rev()
            .find(|(n, _)| *n <= at)
            .map_or(self.confirmed, |(_, v)| *v)
    }

    fn view(&self) -> BalanceView {
        BalanceView {
            confirmed: self.confirmed,
            pending: self.pending.last().map_or(self.confirmed, |(_, v)| *v),
        }
    }
}

#[derive(Debug, Default)]
struct PriceState {
    confirmed: Option<Price>,
    /// Accepted pending prices, ascending by block.
    pending: Vec<Price>,
}

impl PriceState {
    fn at(&self, at: BlockNumber) -> Option<Price> {
        self.pending
            .iter()
            .rev()
            .find(|p| p.block <= at)
            .copied()
            .or(self.confirmed)
    }
}

/// What a pending block wrote, so it can be reverted or finalized without a scan.
#[derive(Debug)]
struct PendingBlock {
    header: BlockHeader,
    keys: Vec<BalanceKey>,
    price_assets: Vec<AssetId>,
    log: Range<usize>,
}

#[derive(Debug, Default)]
struct Inner {
    window: Window,
    balances: HashMap<BalanceKey, KeyState>,
    assets_by_user: HashMap<UserId, BTreeSet<AssetId>>,
    holders: HashMap<AssetId, HashSet<UserId>>,
    prices: HashMap<AssetId, PriceState>,
    pending: BTreeMap<BlockNumber, PendingBlock>,
    /// The append-only event log.
    log: Vec<LogRecord>,
    /// Log ranges per block height (reverted and canonical blocks alike).
    log_by_block: BTreeMap<BlockNumber, Vec<Range<usize>>>,
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
        self.read().log.len()
    }
}

impl Inner {
    /// Checks a changeset against the stored window before anything is mutated, so that
    /// `apply` is all-or-nothing.
    fn validate(&self, changes: &Changeset) -> Result<(), StoreError> {
        let inconsistent = |detail: String| StoreError::Inconsistent {
            backend: BACKEND,
            detail,
        };
        for h in &changes.revert {
            match self.pending.get(&h.number) {
                Some(p) if p.header.hash == h.hash => {}
                _ => {
                    return Err(inconsistent(format!(
                        "cannot revert block {}: not pending here",
                        h.id()
                    )));
                }
            }
        }
        let head = match changes.revert.first() {
            Some(first) => self
                .window
                .unconfirmed
                .iter()
                .chain(self.window.finalized.iter())
                .find(|h| h.number + 1 == first.number)
                .copied(),
            None => self.window.head().copied(),
        };
        if let (Some(head), Some(first)) = (head, changes.blocks.first()) {
            let h = &first.block.header;
            if h.number != head.number + 1 || h.parent_hash != head.hash {
                return Err(inconsistent(format!(
                    "block {} does not extend stored block {}",
                    h.id(),
                    head.id()
                )));
            }
        }
        Ok(())
    }

    fn revert(&mut self, header: &BlockHeader) {
        let Some(block) = self.pending.remove(&header.number) else {
            return;
        };
        for key in &block.keys {
            if let Some(state) = self.balances.get_mut(key) {
                state.pending.retain(|(n, _)| *n != header.number);
            }
        }
        for asset in &block.price_assets {
            if let Some(state) = self.prices.get_mut(asset) {
                state.pending.retain(|p| p.block != header.number);
            }
        }
        for row in &mut self.log[block.log] {
            row.status = LogStatus::Reverted;
        }
        self.window
            .unconfirmed
            .retain(|h| h.number != header.number);
    }

    fn append(&mut self, changes: &crate::engine::BlockChanges) {
        let header = changes.block.header;
        let start = self.log.len();
        for event in &changes.block.events {
            for (ordinal, (key, effect)) in event.effects().enumerate() {
                self.log.push(LogRecord {
                    block: header.id(),
                    log: event.log,
                    ordinal: ordinal as u8,
                    key,
                    effect,
                    status: LogStatus::Pending,
                });
            }
        }
        let log = start..self.log.len();
        self.log_by_block
            .entry(header.number)
            .or_default()
            .push(log.clone());
        let mut keys = Vec::with_capacity(changes.balances.len());
        for (key, balance) in &changes.balances {
            self.balances
                .entry(*key)
                .or_default()
                .pending
                .push((header.number, *balance));
            self.assets_by_user
                .entry(key.user)
                .or_default()
                .insert(key.asset);
            self.holders.entry(key.asset).or_default().insert(key.user);
            keys.push(*key);
        }
        let mut price_assets = Vec::with_capacity(changes.prices.len());
        for price in &changes.prices {
            self.prices
                .entry(price.asset)
                .or_default()
                .pending
                .push(*price);
            price_assets.push(price.asset);
        }
        self.pending.insert(
            header.number,
            PendingBlock {
                header,
                keys,
                price_assets,
                log,
            },
        );
        self.window.unconfirmed.push(header);
    }

    fn finalize(&mut self, tip: BlockHeader) {
        let rest = self.pending.split_off(&(tip.number + 1));
        let done = std::mem::replace(&mut self.pending, rest);
        for block in done.into_values() {
            for key in &block.keys {
                if let Some(state) = self.balances.get_mut(key) {
                    let upto = state.pending.partition_point(|(n, _)| *n <= tip.number);
                    if upto > 0 {
                        state.confirmed = state.pending[upto - 1].1;
                        state.pending.drain(..upto);
                    }
                }
            }
            for asset in &block.price_assets {
                if let Some(state) = self.prices.get_mut(asset) {
                    let upto = state.pending.partition_point(|p| p.block <= tip.number);
                    if upto > 0 {
                        state.confirmed = Some(state.pending[upto - 1]);
                        state.pending.drain(..upto);
                    }
                }
            }
            for row in &mut self.log[block.log] {
                row.status = LogStatus::Confirmed;
            }
        }
        self.window.unconfirmed.retain(|h| h.number > tip.number);
        self.window.finalized = Some(tip);
    }
}

#[async_trait]
impl BalanceStore for MemoryStore {
    async fn window(&self) -> Result<Window, StoreError> {
        Ok(self.read().window.clone())
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        let inner = self.read();
        Ok(keys
            .iter()
            .map(|k| inner.balances.get(k).map_or(U256::ZERO, |s| s.at(at)))
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

    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        Ok(self
            .read()
            .balances
            .get(&key)
            .map(KeyState::view)
            .unwrap_or_default())
    }

    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        let inner = self.read();
        let Some(assets) = inner.assets_by_user.get(&user) else {
            return Ok(Vec::new());
        };
        Ok(assets
            .iter()
            .map(|asset| {
                let view = inner
                    .balances
                    .get(&BalanceKey {
                        user,
                        asset: *asset,
                    })
                    .map(KeyState::view)
                    .unwrap_or_default();
                (*asset, view)
            })
            .collect())
    }

    async fn touched(&self, from: BlockNumber, to: BlockNumber) -> Result<Touched, StoreError> {
        let inner = self.read();
        let mut touched = Touched::default();
        if from > to {
            return Ok(touched);
        }
        for block in inner.pending.range(from..=to).map(|(_, b)| b) {
            touched.users.extend(block.keys.iter().map(|k| k.user));
            touched
                .price_assets
                .extend(block.price_assets.iter().copied());
        }
        Ok(touched)
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        let inner = self.read();
        let mut users: Vec<UserId> = inner
            .holders
            .get(&asset)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        users.sort_unstable();
        Ok(users)
    }

    async fn log(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<LogRecord>, StoreError> {
        let inner = self.read();
        if from > to {
            return Ok(Vec::new());
        }
        let mut rows: Vec<LogRecord> = inner
            .log_by_block
            .range(from..=to)
            .flat_map(|(_, ranges)| {
                ranges
                    .iter()
                    .flat_map(|r| inner.log[r.clone()].iter().copied())
            })
            .collect();
        rows.sort_by_key(|r| {
            (
                r.block.number,
                r.log.log_index,
                r.ordinal,
                r.status != LogStatus::Reverted,
            )
        });
        Ok(rows)
    }
}

#[async_trait]
impl PriceFeed for MemoryStore {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        let inner = self.read();
        Ok(inner
            .prices
            .get(&asset)
            .map(|s| PriceView {
                confirmed: s.confirmed,
                pending: s.pending.last().copied().or(s.confirmed),
            })
            .unwrap_or_default())
    }

    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        let mut out = Vec::with_capacity(assets.len());
        for asset in assets {
            out.push(self.price(*asset).await?);
        }
        Ok(out)
    }
}
