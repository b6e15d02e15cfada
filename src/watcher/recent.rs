//! The recent blocks: what each unconfirmed block this watcher applied wrote, so the
//! refresh knows whom a revert or a finalization touches, and the confirmed values a
//! finalization promotes, without reading them back from the store.
//!
//! The watcher is the store's single writer: a block it applied and has not seen reverted
//! or finalized is pending in the store exactly as it was written. A block it did not apply
//! in this process (applied before a restart, or while no refresh was wanted) is missing
//! here, and the caller falls back to the store
//! ([`StoreWriter::touched`](crate::traits::StoreWriter::touched)).

use std::collections::BTreeMap;

use alloy_primitives::{B256, U256};

use super::refresh::ViewDelta;
use crate::model::{AssetId, BalanceKey, BlockNumber, Changeset, Price, Window};
use crate::traits::Touched;

/// Most unconfirmed blocks remembered: a chain whose finality stalls must not grow the
/// record without bound (the oldest are forgotten; finalizing them falls back to the store).
const MAX_BLOCKS: usize = 4_096;

/// What one applied block wrote.
#[derive(Debug)]
struct Written {
    hash: B256,
    balances: Vec<(BalanceKey, U256)>,
    prices: Vec<Price>,
    /// Assets whose vault rate the block wrote.
    rate_assets: Vec<AssetId>,
}

/// Per unconfirmed block this watcher applied, what it wrote.
///
/// Invariant: every entry is a block that is pending in the store at its height with this
/// hash, and its balances and prices are the values the block wrote.
#[derive(Debug, Default)]
pub(super) struct RecentBlocks {
    blocks: BTreeMap<BlockNumber, Written>,
}

impl RecentBlocks {
    /// Whom `changes` touches through its revert and its finalization (its new blocks are
    /// the caller's), if every block involved is recorded; `None` sends the caller to the
    /// store. `window` is the chain position before `changes`.
    pub(super) fn touched(&self, changes: &Changeset, window: &Window) -> Option<Touched> {
        let mut touched = Touched::default();
        let fin = changes.finalize_number();
        let kept = window.unconfirmed.iter().filter(|h| {
            fin.is_some_and(|f| h.number <= f)
                && !changes.revert.iter().any(|r| r.number == h.number)
        });
        for header in changes.revert.iter().chain(kept) {
            let w = self.blocks.get(&header.number)?;
            if w.hash != header.hash {
                return None;
            }
            touched.merge(w.touched());
        }
        Some(touched)
    }

    /// Takes in a changeset the store committed (`window`: the chain position before it)
    /// and returns what it changed in users' balance views and assets' price views, in
    /// order; [`ViewDelta::Reset`] when that is not known from the record alone (a revert,
    /// or a finalized block that is not recorded).
    pub(super) fn commit(&mut self, changes: &Changeset, window: &Window) -> ViewDelta {
        // Finalized heights the store held before: they must all be recorded.
        let fin = changes.finalize_number();
        // A block that touches a rebasing asset wrote shares, not balances: the views are
        // read back from the store (which converts them) instead.
        let exact = changes.revert.is_empty()
            && changes.blocks.iter().all(|b| b.indexes.is_empty())
            && window
                .unconfirmed
                .iter()
                .filter(|h| fin.is_some_and(|f| h.number <= f))
                .all(|h| self.blocks.get(&h.number).is_some_and(|w| w.hash == h.hash));
        if let Some(first) = changes.revert.first() {
            self.blocks.split_off(&first.number);
        }
        let mut pending = Vec::new();
        let mut pending_prices = Vec::new();
        for b in &changes.blocks {
            pending.extend_from_slice(&b.balances);
            pending_prices.extend_from_slice(&b.prices);
            if !b.indexes.is_empty() {
                // Not recorded: its revert or finalization is read from the store.
                self.blocks.remove(&b.block.header.number);
                continue;
            }
            self.blocks.insert(
                b.block.header.number,
                Written {
                    hash: b.block.header.hash,
                    balances: b.balances.clone(),
                    prices: b.prices.clone(),
                    rate_assets: b.rates.iter().map(|r| r.asset).collect(),
                },
            );
        }
        let mut confirmed = Vec::new();
        let mut confirmed_prices = Vec::new();
        if let Some(fin) = fin {
            let rest = self.blocks.split_off(&(fin + 1));
            // Ascending: a later block's value replaces an earlier one.
            for w in std::mem::replace(&mut self.blocks, rest).into_values() {
                confirmed.extend(w.balances);
                confirmed_prices.extend(w.prices);
            }
        }
        while self.blocks.len() > MAX_BLOCKS {
            self.blocks.pop_first();
        }
        if !exact {
            return ViewDelta::Reset;
        }
        ViewDelta::Step {
            pending,
            pending_prices,
            confirmed,
            confirmed_prices,
        }
    }

    /// Forgets everything (after a write of unknown outcome, or while no refresh is wanted).
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
    }
}

impl Written {
    fn touched(&self) -> Touched {
        Touched {
            users: self.balances.iter().map(|(k, _)| k.user).collect(),
            price_assets: self
                .prices
                .iter()
                .map(|p| p.asset)
                .chain(self.rate_assets.iter().copied())
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "recent_tests.rs"]
mod tests;
