use std::collections::BTreeSet;

use super::ViewDelta;
use crate::model::{AssetId, UserId};
use crate::traits::Touched;

/// Most entries the queued deltas hold before they are replaced by a reset (the memo then
/// reads from the store again): a refresher that waits out a failing cache must not
/// make the writer's deltas grow without bound.
const MAX_DELTA_ENTRIES: usize = 262_144;

/// The refresh work the writer has handed over and the refresher has not finished.
///
/// Invariant (kept because the writer changes it only while it holds the gate's write
/// lock, and the refresher reads it under the read lock): when it is empty, every change
/// up to the committed head is refreshed.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Users touched by a step: refreshed first.
    pub dirty: BTreeSet<UserId>,
    /// Repriced assets whose holders are still to be listed.
    pub repriced: BTreeSet<AssetId>,
    /// Listed holders of repriced assets: refreshed in chunks after `dirty`.
    pub fan_out: BTreeSet<UserId>,
    /// Users of the batch being read or written.
    pub in_flight: BTreeSet<UserId>,
    /// The head moved since the last watermark: a batch is due even without users.
    pub advance: bool,
    /// The refresher is listing the holders of repriced assets (outside the gate).
    pub listing: bool,
    /// Whether the writer is in a catch-up (refreshes are throttled).
    pub catching_up: bool,
    /// The watcher is gone: the refresher stops.
    pub closed: bool,
    /// The committed steps' view deltas the refresher has not applied, in commit order.
    deltas: Vec<ViewDelta>,
    /// Entries in `deltas`.
    delta_entries: usize,
}

impl Queue {
    /// Takes in what a step touched.
    pub fn add(&mut self, touched: Touched) {
        self.advance = true;
        self.dirty.extend(touched.users);
        self.repriced.extend(touched.price_assets);
    }

    /// Takes in a committed step's view delta (in commit order).
    pub fn add_delta(&mut self, delta: ViewDelta) {
        self.delta_entries += delta.len();
        if delta == ViewDelta::Reset || self.delta_entries > MAX_DELTA_ENTRIES {
            self.deltas.clear();
            self.deltas.push(ViewDelta::Reset);
            self.delta_entries = 0;
        } else {
            self.deltas.push(delta);
        }
    }

    /// The deltas not applied yet, in commit order.
    pub fn take_deltas(&mut self) -> Vec<ViewDelta> {
        self.delta_entries = 0;
        std::mem::take(&mut self.deltas)
    }

    /// Whether anything is left to refresh.
    pub fn has_work(&self) -> bool {
        self.advance || self.has_users()
    }

    /// Whether users (or repriced assets) wait for a refresh.
    pub fn has_users(&self) -> bool {
        self.listing
            || !(self.dirty.is_empty() && self.repriced.is_empty() && self.fan_out.is_empty())
    }

    /// Whether `user`'s cache entry reflects every change up to the committed head.
    pub fn is_current(&self, user: &UserId) -> bool {
        self.repriced.is_empty()
            && !self.listing
            && !self.dirty.contains(user)
            && !self.fan_out.contains(user)
            && !self.in_flight.contains(user)
    }

    /// Users waiting for a refresh (holders of repriced assets not yet listed aside).
    pub fn len(&self) -> usize {
        self.dirty.len() + self.fan_out.len() + self.in_flight.len()
    }

    /// Moves up to `n` users into flight: touched users first, then fan-out holders.
    /// Returns them ascending, and whether they came from a fan-out.
    pub fn take(&mut self, n: usize) -> (Vec<UserId>, bool) {
        let fan_out = self.dirty.is_empty();
        let from = if fan_out {
            &mut self.fan_out
        } else {
            &mut self.dirty
        };
        let mut users = Vec::with_capacity(n.min(from.len()));
        while users.len() < n {
            let Some(user) = from.pop_first() else { break };
            users.push(user);
        }
        // A user taken from `dirty` need not wait in `fan_out` too.
        for user in &users {
            self.fan_out.remove(user);
        }
        self.in_flight.extend(users.iter().copied());
        self.advance = false;
        (users, fan_out)
    }

    /// The batch in flight is done.
    pub fn done(&mut self) {
        self.in_flight.clear();
    }

    /// The batch in flight failed: its users wait again, first.
    pub fn retry(&mut self) {
        let users = std::mem::take(&mut self.in_flight);
        self.dirty.extend(users);
        self.advance = true;
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;

    fn u(i: u8) -> UserId {
        Address::repeat_byte(i)
    }

    #[test]
    fn touched_users_go_first_and_a_failed_batch_comes_back() {
        let mut q = Queue::default();
        q.fan_out.extend([u(1), u(2), u(3)]);
        q.add(Touched {
            users: [u(2), u(9)].into(),
            price_assets: BTreeSet::new(),
        });
        let (batch, fan_out) = q.take(10);
        assert_eq!((batch, fan_out), (vec![u(2), u(9)], false));
        assert!(!q.is_current(&u(2)), "in flight");
        q.retry();
        assert_eq!(q.dirty, [u(2), u(9)].into());
        let _ = q.take(10);
        q.done();
        assert!(q.is_current(&u(2)));
        let (batch, fan_out) = q.take(2);
        assert_eq!((batch, fan_out), (vec![u(1), u(3)], true));
        q.done();
        assert!(!q.has_work());
    }

    #[test]
    fn a_repriced_asset_makes_everyone_outdated_until_listed() {
        let mut q = Queue::default();
        q.add(Touched {
            users: BTreeSet::new(),
            price_assets: [Address::repeat_byte(0xA1)].into(),
        });
        assert!(q.has_work());
        assert!(!q.is_current(&u(1)));
    }
}
