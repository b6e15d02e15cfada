//! The [`MemoryStore`](super::MemoryStore)'s history: which log entries touch each user
//! (for `user_log`), and each user's balances and each asset's prices after every finalized
//! block (for `history_at`), bounded by the store's [`Retention`](super::Retention).
//!
//! When retention drops the log at or below a cutoff, each user's balance points at or
//! below it are compacted to the last one per asset (the balance at the cutoff), likewise
//! prices, so every block at or above the cutoff (the *retained horizon*) is still
//! answered exactly and older blocks are refused with [`HistoryError::NotRetained`].

use std::collections::{BTreeMap, HashSet};

use alloy_primitives::U256;
use alloy_primitives::map::HashMap;

use super::Inner;
use super::log::Log;
use crate::model::{AssetId, BalanceEvent, BalanceKey, BlockHeader, BlockNumber, Price, UserId};
use crate::traits::{HistoryAt, HistoryError, LogSide, LogStatus, UserLog};

/// Per-user and per-asset history of the memory store.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Per user, the ids of the log entries whose events touch them, in append order.
    by_user: HashMap<UserId, Vec<usize>>,
    /// Per user, `(block, asset, balance after the block)` of finalized blocks, ascending.
    balances: HashMap<UserId, Vec<(BlockNumber, AssetId, U256)>>,
    /// Per asset, the prices accepted in finalized blocks, ascending by block.
    prices: HashMap<AssetId, Vec<Price>>,
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

    /// Records a finalized block: its header, each balance it wrote (the value after it)
    /// and each price it carried.
    pub(super) fn finalized(
        &mut self,
        header: BlockHeader,
        balances: impl IntoIterator<Item = (BalanceKey, U256)>,
        prices: impl IntoIterator<Item = Price>,
    ) {
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
            let split = prices.partition_point(|p| p.block <= cutoff);
            if split > 1 {
                prices.drain(..split - 1);
            }
        }
        self.headers = self.headers.split_off(&cutoff);
        self.horizon = self.horizon.max(Some(cutoff));
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

    /// See [`LogReader::history_at`](crate::traits::LogReader::history_at).
    pub(super) fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<HistoryAt, HistoryError> {
        let finalized = self.window.finalized_number();
        if finalized.is_none_or(|f| block > f) {
            return Err(HistoryError::NotFinal { block, finalized });
        }
        if let Some(horizon) = self.history.horizon
            && block < horizon
        {
            return Err(HistoryError::NotRetained { block, horizon });
        }
        let header = self
            .history
            .headers
            .get(&block)
            .copied()
            .or(self.window.finalized.filter(|h| h.number == block))
            .ok_or(HistoryError::BeforeLog {
                block,
                first: self.history.headers.keys().next().copied(),
            })?;
        let mut last: BTreeMap<AssetId, U256> = BTreeMap::new();
        for (b, asset, value) in self.history.balances.get(&user).into_iter().flatten() {
            if *b > block {
                break;
            }
            last.insert(*asset, *value);
        }
        let prices = last
            .keys()
            .map(|asset| {
                self.history
                    .prices
                    .get(asset)
                    .and_then(|ps| ps.iter().rev().find(|p| p.block <= block).copied())
            })
            .collect();
        Ok(HistoryAt {
            header,
            balances: last.into_iter().collect(),
            prices,
        })
    }
}
