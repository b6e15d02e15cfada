use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use alloy_primitives::U256;
use alloy_primitives::map::{HashMap, HashSet};
use async_trait::async_trait;
use smallvec::SmallVec;

use crate::error::StoreError;
use crate::model::{
    AssetId, BalanceKey, BalanceView, BlockHeader, BlockNumber, Changeset, Price, PriceView,
    UserId, Window,
};
use crate::traits::{
    BalanceReader, LogReader, LogRecord, LogStatus, PriceFeed, StoreWriter, Touched,
};

const BACKEND: &str = "memory";

/// The embedded default store: the event log, confirmed balances, per-block pending
/// balances and prices, all in memory behind one lock.
///
/// Reorgs and confirmations cost O(rows of the affected blocks), lookups O(1), and a user's
/// balances O(assets of the user). Implements every store role, so it is a
/// [`BalanceStore`](crate::traits::BalanceStore).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

/// One balance: a base value and the value after each later block that touched it.
///
/// Finality is applied lazily: entries at or below the finalized height still in
/// `entries` are already confirmed; they are folded into `base` the next time the
/// balance is written, so finalizing a block costs O(1) per block, not per balance.
#[derive(Debug, Default)]
struct KeyState {
    /// Balance after every block at or below some finalized height.
    base: U256,
    /// `(block, balance after block)`, ascending by block; inline for the common case.
    entries: SmallVec<[(BlockNumber, U256); 2]>,
}

impl KeyState {
    /// Folds entries at or below `finalized` into `base`.
    fn compact(&mut self, finalized: Option<BlockNumber>) {
        let Some(fin) = finalized else { return };
        let upto = self.entries.partition_point(|(n, _)| *n <= fin);
        if upto > 0 {
            self.base = self.entries[upto - 1].1;
            self.entries.drain(..upto);
        }
    }

    /// The balance after block `at`.
    fn at(&self, at: BlockNumber) -> U256 {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| *n <= at)
            .map_or(self.base, |(_, v)| *v)
    }

    fn view(&self, finalized: Option<BlockNumber>) -> BalanceView {
        BalanceView {
            confirmed: finalized.map_or(self.base, |f| self.at(f)),
            pending: self.entries.last().map_or(self.base, |(_, v)| *v),
        }
    }
}

/// A user's balances, sorted by asset.
#[derive(Debug, Default)]
struct UserState {
    assets: SmallVec<[(AssetId, KeyState); 1]>,
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
    /// Index of the block's entry in the log.
    log: usize,
}

/// The log entry of one applied block: its events, kept as delivered, and its status.
#[derive(Debug)]
struct LogBlock {
    block: crate::model::BlockRef,
    events: Vec<crate::model::BalanceEvent>,
    status: LogStatus,
}

impl LogBlock {
    fn rows(&self) -> impl Iterator<Item = LogRecord> + '_ {
        self.events.iter().flat_map(move |event| {
            event
                .effects()
                .enumerate()
                .map(move |(ordinal, (key, effect))| LogRecord {
                    block: self.block,
                    log: event.log,
                    ordinal: ordinal as u8,
                    key,
                    effect,
                    status: self.status,
                })
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    window: Window,
    /// Per user, the state of each asset they hold, sorted by asset: one hash lookup and
    /// one or two cache lines per balance, which is what ingest speed depends on.
    users: HashMap<UserId, UserState>,
    holders: HashMap<AssetId, HashSet<UserId>>,
    prices: HashMap<AssetId, PriceState>,
    pending: BTreeMap<BlockNumber, PendingBlock>,
    /// The append-only event log, one entry per applied block (rows are expanded on read).
    log: Vec<LogBlock>,
    /// Log ranges per block height (reverted and canonical blocks alike).
    log_by_block: BTreeMap<BlockNumber, Vec<usize>>,
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
}

impl Inner {
    fn key(&self, key: &BalanceKey) -> Option<&KeyState> {
        let user = self.users.get(&key.user)?;
        user.assets
            .iter()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, s)| s)
    }

    fn key_mut(&mut self, key: &BalanceKey) -> Option<&mut KeyState> {
        let user = self.users.get_mut(&key.user)?;
        user.assets
            .iter_mut()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, s)| s)
    }

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
            if let Some(state) = self.key_mut(key) {
                state.entries.retain(|(n, _)| *n != header.number);
            }
        }
        for asset in &block.price_assets {
            if let Some(state) = self.prices.get_mut(asset) {
                state.pending.retain(|p| p.block != header.number);
            }
        }
        self.log[block.log].status = LogStatus::Reverted;
        self.window
            .unconfirmed
            .retain(|h| h.number != header.number);
    }

    fn append(&mut self, changes: &crate::model::BlockChanges) {
        let header = changes.block.header;
        let finalized = self.window.finalized_number();
        let log = self.log.len();
        self.log.push(LogBlock {
            block: header.id(),
            events: changes.block.events.clone(),
            status: LogStatus::Pending,
        });
        self.log_by_block
            .entry(header.number)
            .or_default()
            .push(log);
        let mut keys = Vec::with_capacity(changes.balances.len());
        for (key, balance) in &changes.balances {
            let user = self.users.entry(key.user).or_default();
            let state = match user.assets.binary_search_by_key(&key.asset, |(a, _)| *a) {
                Ok(at) => &mut user.assets[at].1,
                Err(at) => {
                    // First state of this user in this asset: index the holder once.
                    user.assets.insert(at, (key.asset, KeyState::default()));
                    self.holders.entry(key.asset).or_default().insert(key.user);
                    &mut user.assets[at].1
                }
            };
            state.compact(finalized);
            state.entries.push((header.number, *balance));
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

    /// A user's confirmed and pending balances, by asset.
    fn views(&self, user: UserId) -> Vec<(AssetId, BalanceView)> {
        let fin = self.window.finalized_number();
        self.users
            .get(&user)
            .map(|u| u.assets.iter().map(|(a, s)| (*a, s.view(fin))).collect())
            .unwrap_or_default()
    }

    fn finalize(&mut self, tip: BlockHeader) {
        let rest = self.pending.split_off(&(tip.number + 1));
        let done = std::mem::replace(&mut self.pending, rest);
        for block in done.into_values() {
            for asset in &block.price_assets {
                if let Some(state) = self.prices.get_mut(asset) {
                    let upto = state.pending.partition_point(|p| p.block <= tip.number);
                    if upto > 0 {
                        state.confirmed = Some(state.pending[upto - 1]);
                        state.pending.drain(..upto);
                    }
                }
            }
            self.log[block.log].status = LogStatus::Confirmed;
        }
        self.window.unconfirmed.retain(|h| h.number > tip.number);
        self.window.finalized = Some(tip);
    }
}

#[async_trait]
impl StoreWriter for MemoryStore {
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
        }
        Ok(touched)
    }
}

#[async_trait]
impl BalanceReader for MemoryStore {
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        let inner = self.read();
        let fin = inner.window.finalized_number();
        Ok(inner.key(&key).map(|s| s.view(fin)).unwrap_or_default())
    }

    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        Ok(self.read().views(user))
    }

    /// All users under one read lock: one state for the whole batch.
    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        let inner = self.read();
        Ok(users.iter().map(|u| inner.views(*u)).collect())
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

}

#[async_trait]
impl LogReader for MemoryStore {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        let inner = self.read();
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: Vec<LogRecord> = inner
            .log_by_block
            .range(blocks)
            .flat_map(|(_, entries)| entries.iter().flat_map(|i| inner.log[*i].rows()))
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
