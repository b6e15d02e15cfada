//! The write side of the [`MemoryStore`](super::MemoryStore): a changeset checked against
//! the stored window, then reverted, appended and finalized in place.

use crate::error::StoreError;
use crate::model::{BlockChanges, BlockHeader, Changeset};
use crate::traits::LogStatus;

use super::log::LogBlock;
use super::state::{KeyState, PendingBlock};
use super::{BACKEND, Inner};

impl Inner {
    /// Checks a changeset against the stored window before anything is mutated, so that
    /// `apply` is all-or-nothing.
    pub(super) fn validate(&self, changes: &Changeset) -> Result<(), StoreError> {
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

    pub(super) fn revert(&mut self, header: &BlockHeader) {
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
        self.revert_indexes(header.number, &block.index_assets);
        self.revert_rates(header.number, &block.rate_assets);
        if let Some(entry) = self.log.get_mut(block.log) {
            entry.status = LogStatus::Reverted;
        }
        self.asset_states.revert(header.number);
        self.window
            .unconfirmed
            .retain(|h| h.number != header.number);
    }

    pub(super) fn append(&mut self, changes: &BlockChanges) {
        let header = changes.block.header;
        let finalized = self.window.finalized_number();
        // One log entry per block hash: a block that comes back revives its reverted entry.
        let at_height = self.log_by_block.entry(header.number).or_default();
        let log = match at_height.iter().copied().find(|i| {
            self.log
                .get(*i)
                .is_some_and(|e| e.block.hash == header.hash)
        }) {
            Some(existing) => {
                if let Some(entry) = self.log.get_mut(existing) {
                    entry.events.clone_from(&changes.block.events);
                    entry.status = LogStatus::Pending;
                }
                existing
            }
            None => {
                let log = self.log.push(LogBlock {
                    block: header.id(),
                    events: changes.block.events.clone(),
                    status: LogStatus::Pending,
                });
                at_height.push(log);
                log
            }
        };
        self.history.note_entry(log, &changes.block.events);
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
        let index_assets = self.append_indexes(header.number, &changes.indexes);
        let rebased = changes
            .indexes
            .iter()
            .filter(|u| u.rebased)
            .map(|u| u.asset)
            .collect();
        self.asset_states.append(changes);
        let rate_assets = self.append_rates(changes);
        self.pending.insert(
            header.number,
            PendingBlock {
                header,
                keys,
                price_assets,
                rate_assets,
                log,
                index_assets,
                rebased,
            },
        );
        self.window.unconfirmed.push(header);
    }

    pub(super) fn finalize(&mut self, tip: BlockHeader) {
        let rest = self.pending.split_off(&(tip.number + 1));
        let done = std::mem::replace(&mut self.pending, rest);
        for block in done.values() {
            self.record_history(block);
        }
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
            self.finalize_indexes(tip.number, &block.index_assets);
            self.finalize_rates(tip.number, &block.rate_assets);
            if let Some(entry) = self.log.get_mut(block.log) {
                entry.status = LogStatus::Confirmed;
            }
        }
        self.window.unconfirmed.retain(|h| h.number > tip.number);
        self.window.finalized = Some(tip);
        self.asset_states.finalize(tip.number);
        self.prune(tip.number);
    }

    /// Records a block being finalized in the history (before its prices are promoted).
    fn record_history(&mut self, block: &PendingBlock) {
        let n = block.header.number;
        let balances: Vec<_> = block
            .keys
            .iter()
            .filter_map(|k| self.key(k).map(|s| (*k, s.at(n))))
            .collect();
        let mut assets = block.price_assets.clone();
        assets.sort_unstable();
        assets.dedup();
        let prices: Vec<_> = assets
            .iter()
            .filter_map(|a| self.prices.get(a))
            .flat_map(|s| s.pending.iter().filter(|p| p.block == n).copied())
            .collect();
        let indexes: Vec<_> = block
            .index_assets
            .iter()
            .filter_map(|a| {
                let i = self.indexes.get(a)?.written_at(n)?;
                Some((*a, i))
            })
            .collect();
        let rates: Vec<_> = block
            .rate_assets
            .iter()
            .filter_map(|a| self.rates.get(a)?.written_at(n))
            .collect();
        let states = self.asset_states.changed_at(n);
        self.history.finalized(
            block.header,
            balances,
            prices,
            super::history::BlockState {
                indexes,
                rates,
                states,
            },
        );
    }
}
