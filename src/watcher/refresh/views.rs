//! The refresher's view memo: the balance views of users it has read from the store, and
//! the price views of assets, kept equal to the store by the deltas of every step the
//! writer commits, so a step at the head is valued without reading anything back.
//!
//! The writer is the store's single writer and hands each committed step's delta over in
//! commit order (under the gate's write lock, see [`Queue`](super::Queue)); the refresher
//! applies the deltas it finds under the read lock before it values a chunk, so the memo
//! then holds the store's state at the committed head. A step whose effect is not known
//! from the delta alone (a revert, a write of unknown outcome, a finalized block the
//! writer did not apply) resets it.

use std::collections::HashMap;

use alloy_primitives::U256;

use crate::model::{AssetId, BalanceKey, BalanceView, Price, PriceView, UserId};

/// What one committed step changed in the store's views, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ViewDelta {
    /// Not known: forget every view.
    Reset,
    /// Balances and prices written by the new blocks (pending), then promoted by the
    /// finalization (confirmed); each list ascends by block, a later value replacing an
    /// earlier one.
    Step {
        pending: Vec<(BalanceKey, U256)>,
        pending_prices: Vec<Price>,
        confirmed: Vec<(BalanceKey, U256)>,
        confirmed_prices: Vec<Price>,
    },
}

impl ViewDelta {
    /// Entries carried (a bound on what queued deltas hold).
    pub(crate) fn len(&self) -> usize {
        match self {
            ViewDelta::Reset => 0,
            ViewDelta::Step {
                pending,
                pending_prices,
                confirmed,
                confirmed_prices,
            } => pending.len() + pending_prices.len() + confirmed.len() + confirmed_prices.len(),
        }
    }
}

/// Per user, every asset's balance view, ascending by asset (as
/// [`user_balances_many`](crate::traits::BalanceReader::user_balances_many) returns them);
/// per asset, its price view.
///
/// Invariant: every user held is held with all of its assets, and every view equals the
/// store's at the last delta applied.
#[derive(Debug)]
pub(super) struct ViewMemo {
    users: HashMap<UserId, Vec<(AssetId, BalanceView)>>,
    prices: HashMap<AssetId, PriceView>,
    capacity: usize,
}

impl ViewMemo {
    /// An empty memo of at most `capacity` users (0 disables it: every read goes to the
    /// store).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            users: HashMap::new(),
            prices: HashMap::new(),
            capacity,
        }
    }

    /// Applies a committed step.
    pub(super) fn apply(&mut self, delta: ViewDelta) {
        let ViewDelta::Step {
            pending,
            pending_prices,
            confirmed,
            confirmed_prices,
        } = delta
        else {
            self.users.clear();
            self.prices.clear();
            return;
        };
        for (key, value) in pending {
            if let Some(view) = self.view_mut(key) {
                view.pending = value;
            }
        }
        for (key, value) in confirmed {
            if let Some(view) = self.view_mut(key) {
                view.confirmed = value;
            }
        }
        for p in pending_prices {
            if let Some(view) = self.prices.get_mut(&p.asset) {
                view.pending = Some(p);
            }
        }
        for p in confirmed_prices {
            if let Some(view) = self.prices.get_mut(&p.asset) {
                view.confirmed = Some(p);
            }
        }
    }

    /// The view of `key` if its user is held; a new asset of a held user starts at zero
    /// (no row in the store before this step).
    fn view_mut(&mut self, key: BalanceKey) -> Option<&mut BalanceView> {
        let assets = self.users.get_mut(&key.user)?;
        let i = match assets.binary_search_by_key(&key.asset, |(a, _)| *a) {
            Ok(i) => i,
            Err(i) => {
                assets.insert(i, (key.asset, BalanceView::default()));
                i
            }
        };
        Some(&mut assets[i].1)
    }

    /// The views of `user`, if held.
    pub(super) fn user(&self, user: &UserId) -> Option<&[(AssetId, BalanceView)]> {
        self.users.get(user).map(Vec::as_slice)
    }

    /// Takes in `user`'s views as read from the store (all of its assets), while there is
    /// room.
    pub(super) fn insert_user(&mut self, user: UserId, views: &[(AssetId, BalanceView)]) {
        if self.users.len() < self.capacity || self.users.contains_key(&user) {
            self.users.insert(user, views.to_vec());
        }
    }

    /// The price view of `asset`, if held.
    pub(super) fn price(&self, asset: &AssetId) -> Option<PriceView> {
        self.prices.get(asset).copied()
    }

    /// Takes in `asset`'s price view as read from the store.
    pub(super) fn insert_price(&mut self, asset: AssetId, view: PriceView) {
        if self.capacity > 0 {
            self.prices.insert(asset, view);
        }
    }
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
