//! How much history the [`MemoryStore`](super::MemoryStore) keeps: the unconfirmed window
//! and a configurable number of confirmed blocks of the event log, so the embedded default
//! stays bounded on a long chain.
//!
//! Balances and prices need no policy: confirmed values are folded into one value per
//! balance and per asset (a user's state is as large as the assets they hold), pending
//! ones are kept per unconfirmed block and dropped when it is finalized. The log is the
//! only part that grows with the chain; its entries at or below
//! `finalized − confirmed_blocks` are dropped at each finalization.

use super::{Inner, MemoryStore};
use crate::model::BlockNumber;

/// Confirmed blocks of log [`MemoryStore::new`] keeps.
pub const DEFAULT_RETAINED_CONFIRMED_BLOCKS: u64 = 10_000;

/// The memory store's retention policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Confirmed blocks whose event log is kept below the finalized height (the finalized
    /// block included); `u64::MAX` keeps the whole log. Blocks of reorged-away forks at
    /// those heights go with them. [`LogReader::log`](crate::traits::LogReader::log) of
    /// an older range answers only what is kept.
    pub confirmed_blocks: u64,
}

impl Retention {
    /// Keeps the whole log (grows with the chain).
    pub const UNBOUNDED: Self = Self {
        confirmed_blocks: u64::MAX,
    };
}

impl Default for Retention {
    /// [`DEFAULT_RETAINED_CONFIRMED_BLOCKS`].
    fn default() -> Self {
        Self {
            confirmed_blocks: DEFAULT_RETAINED_CONFIRMED_BLOCKS,
        }
    }
}

/// What a [`MemoryStore`] holds now, in entries (for tests and memory accounting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Log entries (one per block hash applied and kept).
    pub log_blocks: usize,
    /// Heights with log entries.
    pub log_heights: usize,
    /// Pending blocks (the unconfirmed window).
    pub pending_blocks: usize,
    /// Pending balance values over every balance (one per unconfirmed block that wrote it).
    pub pending_balances: usize,
    /// Price values kept over every asset (confirmed and pending).
    pub prices: usize,
    /// Users with a balance state.
    pub users: usize,
    /// History entries behind `explain` and `collateral_at_block`: per-user log positions
    /// and balance points, finalized prices, rates, indexes, asset states and headers,
    /// bounded by the same [`Retention`].
    pub history: usize,
}

impl MemoryStore {
    /// The entries the store holds now.
    pub fn retained(&self) -> Retained {
        let inner = self.read();
        Retained {
            log_blocks: inner.log.len(),
            log_heights: inner.log_by_block.len(),
            pending_blocks: inner.pending.len(),
            pending_balances: inner
                .users
                .values()
                .flat_map(|u| u.assets.iter())
                .map(|(_, s)| s.entries.len())
                .sum(),
            prices: inner
                .prices
                .values()
                .map(|p| p.pending.len() + usize::from(p.confirmed.is_some()))
                .sum(),
            users: inner.users.len(),
            history: inner.history.entries(),
        }
    }
}

impl Inner {
    /// Drops the log at or below `finalized − confirmed_blocks`.
    pub(super) fn prune(&mut self, finalized: BlockNumber) {
        let Some(cutoff) = finalized.checked_sub(self.retention.confirmed_blocks) else {
            return;
        };
        let kept = self.log_by_block.split_off(&(cutoff + 1));
        let mut users = std::collections::HashSet::new();
        for id in std::mem::replace(&mut self.log_by_block, kept)
            .into_values()
            .flatten()
        {
            if let Some(entry) = self.log.get(id) {
                users.extend(
                    entry
                        .events
                        .iter()
                        .flat_map(|e| e.effects().map(|(k, _)| k.user)),
                );
            }
            self.log.remove(id);
        }
        self.history.prune(cutoff, users, &self.log);
    }
}
