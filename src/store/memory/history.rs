//! The [`MemoryStore`](super::MemoryStore)'s history: which log entries touch each user
//! (for `user_log`), and each user's balances (shares for a rebasing asset) and each
//! asset's prices, vault rates, rebasing indexes and quarantines after every finalized
//! block (for `history_at`), bounded by the store's [`Retention`](super::Retention).
//!
//! When retention drops the log at or below a cutoff, each user's balance points at or
//! below it are compacted to the last one per asset (the balance at the cutoff), likewise
//! prices, rates, indexes and states, so every block at or above the cutoff (the *retained horizon*) is still
//! answered exactly and older blocks are refused with [`HistoryError::NotRetained`].

use std::collections::{BTreeMap, HashSet};

use alloy_primitives::U256;
use alloy_primitives::map::HashMap;

use super::Inner;
use super::log::Log;
use crate::model::{
    AssetId, AssetIndex, AssetState, AssetStateView, BalanceEvent, BalanceKey, BlockHeader,
    BlockNumber, Price, RateUpdate, UserId,
};
use crate::traits::{HistoryAt, HistoryError, LogSide, LogStatus, UserLog};

/// What a finalized block wrote besides balances and prices: its rebasing indexes, vault
/// rates and asset states.
#[derive(Debug, Default)]
pub(super) struct BlockState {
    /// The index after the block of each rebasing asset it wrote one for.
    pub(super) indexes: Vec<(AssetId, AssetIndex)>,
    /// The rates it carried.
    pub(super) rates: Vec<RateUpdate>,
    /// The asset states it changed.
    pub(super) states: Vec<(AssetId, AssetState)>,
}

/// Keeps the last of the leading points at or below `cutoff` (the value at the cutoff).
fn compact<T>(points: &mut Vec<T>, cutoff: BlockNumber, block: impl Fn(&T) -> BlockNumber) {
    let split = points.partition_point(|p| block(p) <= cutoff);
    if split > 1 {
        points.drain(..split - 1);
    }
}

/// The last of `points` (ascending by block) at or below `at`.
fn last_at<T>(points: &[T], at: BlockNumber, block: impl Fn(&T) -> BlockNumber) -> Option<&T> {
    points[..points.partition_point(|p| block(p) <= at)].last()
}

/// Per-user and per-asset history of the memory store.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Per user, the ids of the log entries whose events touch them, in append order.
    by_user: HashMap<UserId, Vec<usize>>,
    /// Per user, `(block, asset, balance after the block)` of finalized blocks, ascending.
    balances: HashMap<UserId, Vec<(BlockNumber, AssetId, U256)>>,
    /// Per asset, the prices accepted in finalized blocks, ascending by block.
    prices: HashMap<AssetId, Vec<Price>>,
    /// Per rebasing asset, `(block, index after it)` of finalized blocks, ascending.
    indexes: HashMap<AssetId, Vec<(BlockNumber, AssetIndex)>>,
    /// Per vault, the rates accepted in finalized blocks, ascending by block.
    rates: HashMap<AssetId, Vec<RateUpdate>>,
    /// Per asset, `(block, state after it)` of finalized blocks that changed it, ascending.
    states: HashMap<AssetId, Vec<(BlockNumber, AssetState)>>,
    /// Finalized canonical headers at or above the horizon.
    headers: BTreeMap<BlockNumber, BlockHeader>,
    /// The lowest block answered since retention dropped older log.
    horizon: Option<BlockNumber>,
}

impl History {
    /// Indexes the log entry `id` (a block's events) under every user it touches.
    pub(super) fn note_entry(&mut self, id: usize, events: &[BalanceEvent]) {
        for event in events {
            for (key, _) in event.effects() {
                let ids = self.by_user.entry(key.user).or_default();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
    }

    /// Records a finalized block: its header, each balance it wrote (the value after it),
    /// each price it carried and its other asset state.
    pub(super) fn finalized(
        &mut self,
        header: BlockHeader,
        balances: impl IntoIterator<Item = (BalanceKey, U256)>,
        prices: impl IntoIterator<Item = Price>,
        state: BlockState,
    ) {
        for (asset, index) in state.indexes {
            self.indexes
                .entry(asset)
                .or_default()
                .push((header.number, index));
        }
        for rate in state.rates {
            self.rates.entry(rate.asset).or_default().push(rate);
        }
        for (asset, s) in state.states {
            self.states
                .entry(asset)
                .or_default()
                .push((header.number, s));
        }
        self.headers.insert(header.number, header);
        for (key, value) in balances {
            self.balances
                .entry(key.user)
                .or_default()
                .push((header.number, key.asset, value));
        }
        for price in prices {
            self.prices.entry(price.asset).or_default().push(price);
        }
    }

    /// Retention dropped the log at or below `cutoff` (whose entries touched `users`):
    /// compacts their history to the values at `cutoff` and raises the horizon to it.
    pub(super) fn prune(&mut self, cutoff: BlockNumber, users: HashSet<UserId>, log: &Log) {
        for user in users {
            if let Some(ids) = self.by_user.get_mut(&user) {
                ids.retain(|id| log.get(*id).is_some());
                if ids.is_empty() {
                    self.by_user.remove(&user);
                }
            }
            if let Some(points) = self.balances.get_mut(&user) {
                let split = points.partition_point(|(b, _, _)| *b <= cutoff);
                if split > 1 {
                    let mut last: BTreeMap<AssetId, (BlockNumber, U256)> = BTreeMap::new();
                    for (b, a, v) in points.drain(..split) {
                        last.insert(a, (b, v));
                    }
                    let mut kept: Vec<_> = last.into_iter().map(|(a, (b, v))| (b, a, v)).collect();
                    kept.sort_by_key(|(b, _, _)| *b);
                    points.splice(0..0, kept);
                }
            }
        }
        for prices in self.prices.values_mut() {
            compact(prices, cutoff, |p| p.block);
        }
        for indexes in self.indexes.values_mut() {
            compact(indexes, cutoff, |(b, _)| *b);
        }
        for rates in self.rates.values_mut() {
            compact(rates, cutoff, |r| r.block);
        }
        for states in self.states.values_mut() {
            compact(states, cutoff, |(b, _)| *b);
        }
        self.headers = self.headers.split_off(&cutoff);
        self.horizon = self.horizon.max(Some(cutoff));
    }

    /// The entries the history holds: log positions per user, balance points, prices,
    /// rates, indexes, states and headers (what [`Retained::history`](super::Retained)
    /// counts).
    pub(super) fn entries(&self) -> usize {
        self.by_user.values().map(Vec::len).sum::<usize>()
            + self.balances.values().map(Vec::len).sum::<usize>()
            + self.prices.values().map(Vec::len).sum::<usize>()
            + self.indexes.values().map(Vec::len).sum::<usize>()
            + self.rates.values().map(Vec::len).sum::<usize>()
            + self.states.values().map(Vec::len).sum::<usize>()
            + self.headers.len()
    }

    /// The latest price of `asset` accepted at or below `block`.
    fn price_at(&self, asset: &AssetId, block: BlockNumber) -> Option<Price> {
        self.prices
            .get(asset)
            .and_then(|ps| last_at(ps, block, |p| p.block).copied())
    }
}

impl Inner {
    /// See [`LogReader::user_log`](crate::traits::LogReader::user_log).
    pub(super) fn user_log(&self, key: BalanceKey, side: LogSide, limit: usize) -> UserLog {
        let mut ids: Vec<usize> = self
            .history
            .by_user
            .get(&key.user)
            .cloned()
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        let wanted = |status: LogStatus| match side {
            LogSide::Confirmed => status == LogStatus::Confirmed,
            LogSide::Canonical => status != LogStatus::Reverted,
        };
        let mut rows: Vec<_> = ids
            .iter()
            .filter_map(|id| self.log.get(*id))
            .filter(|entry| wanted(entry.status))
            .flat_map(|entry| entry.rows())
            .filter(|row| row.key == key)
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.block.number, r.log.log_index, r.ordinal)));
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        UserLog { rows, truncated }
    }

    /// The header of the finalized block `block`, or why its history is not answered.
    fn history_bounds(&self, block: BlockNumber) -> Result<BlockHeader, HistoryError> {
        let finalized = self.window.finalized_number();
        if finalized.is_none_or(|f| block > f) {
            return Err(HistoryError::NotFinal { block, finalized });
        }
        if let Some(horizon) = self.history.horizon
            && block < horizon
        {
            return Err(HistoryError::NotRetained { block, horizon });
        }
        self.history
            .headers
            .get(&block)
            .copied()
            .or(self.window.finalized.filter(|h| h.number == block))
            .ok_or(HistoryError::BeforeLog {
                block,
                first: self.history.headers.keys().next().copied(),
            })
    }

    /// See [`LogReader::history_at`](crate::traits::LogReader::history_at).
    pub(super) fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<HistoryAt, HistoryError> {
        let header = self.history_bounds(block)?;
        let mut last: BTreeMap<AssetId, U256> = BTreeMap::new();
        for (b, asset, value) in self.history.balances.get(&user).into_iter().flatten() {
            if *b > block {
                break;
            }
            last.insert(*asset, *value);
        }
        // A rebasing asset's points are shares: converted with its index after the block.
        for (asset, value) in last.iter_mut() {
            if let Some((_, index)) = self
                .history
                .indexes
                .get(asset)
                .and_then(|is| last_at(is, block, |(b, _)| *b))
            {
                *value = index.balance(*value).unwrap_or(U256::MAX);
            }
        }
        let prices = last
            .keys()
            .map(|asset| self.history.price_at(asset, block))
            .collect();
        let rates = last
            .keys()
            .map(|asset| {
                self.history
                    .rates
                    .get(asset)
                    .and_then(|rs| last_at(rs, block, |r| r.block).copied())
            })
            .collect();
        let states = last
            .keys()
            .filter_map(|asset| {
                let (_, state) = last_at(self.history.states.get(asset)?, block, |(b, _)| *b)?;
                state.is_quarantined().then(|| AssetStateView {
                    asset: *asset,
                    confirmed: state.clone(),
                    pending: state.clone(),
                })
            })
            .collect();
        Ok(HistoryAt {
            header,
            balances: last.into_iter().collect(),
            prices,
            rates,
            states,
        })
    }

    /// See [`LogReader::history_prices`](crate::traits::LogReader::history_prices).
    pub(super) fn history_prices(
        &self,
        assets: &[AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<Price>>, HistoryError> {
        self.history_bounds(block)?;
        Ok(assets
            .iter()
            .map(|a| self.history.price_at(a, block))
            .collect())
    }
}
