use std::collections::BTreeSet;

use super::ViewDelta;
use crate::model::{AssetId, StateRef, UserId};
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
    /// What must be written before the watermark may name an earlier state than the head
    /// while work keeps coming (see [`Barrier`]).
    pub barrier: Option<Barrier>,
    /// Quarantine and resume notifications of committed steps, not sent yet (in commit
    /// order; sent before the next update).
    notices: Vec<super::Notification>,
}

/// A state the refresher has seen, and the work queued up to it that is not written yet:
/// once that work is written, every change up to the state is in the cache, and the
/// watermark may name it although later steps queued more (under sustained load the queue
/// may never be empty).
///
/// Invariant: `users` ⊆ `dirty` ∪ `fan_out` ∪ `in_flight`, and `assets` ⊆ `repriced` or
/// being listed; so an empty queue has reached its barrier.
#[derive(Debug)]
pub(crate) struct Barrier {
    /// The state the work was queued up to.
    pub state: StateRef,
    /// Users queued up to `state`, not written yet.
    pub users: BTreeSet<UserId>,
    /// Repriced assets queued up to `state` whose holders are not listed yet.
    pub assets: BTreeSet<AssetId>,
}

impl Queue {
    /// Takes in what a step touched.
    pub fn add(&mut self, touched: Touched) {
        self.advance = true;
        self.dirty.extend(touched.users);
        self.repriced.extend(touched.price_assets);
    }

    /// Takes in a committed step's quarantine or resume notification (in commit order).
    pub fn add_notice(&mut self, notice: super::Notification) {
        self.advance = true;
        self.notices.push(notice);
    }

    /// The notifications not sent yet, in commit order.
    pub fn take_notices(&mut self) -> Vec<super::Notification> {
        std::mem::take(&mut self.notices)
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

    /// Starts a barrier at `state` (the committed head, read under the gate) if none runs.
    pub fn start_barrier(&mut self, state: StateRef) {
        if self.barrier.is_none() {
            let mut users = self.dirty.clone();
            users.extend(self.fan_out.iter().copied());
            users.extend(self.in_flight.iter().copied());
            self.barrier = Some(Barrier {
                state,
                users,
                assets: self.repriced.clone(),
            });
        }
    }

    /// Holders of `assets` were listed into `fan_out`: those of barrier assets join the
    /// barrier.
    pub fn listed(&mut self, assets: &BTreeSet<AssetId>, holders: &[UserId]) {
        self.fan_out.extend(holders.iter().copied());
        if let Some(b) = &mut self.barrier {
            let before = b.assets.len();
            b.assets.retain(|a| !assets.contains(a));
            if b.assets.len() != before {
                b.users.extend(holders.iter().copied());
            }
        }
    }

    /// The barrier's state if writing the batch in flight reaches it.
    pub fn barrier_reached(&self) -> Option<StateRef> {
        let b = self.barrier.as_ref()?;
        (b.assets.is_empty() && b.users.iter().all(|u| self.in_flight.contains(u)))
            .then_some(b.state)
    }

    /// Moves up to `n` users into flight: touched users first, then fan-out holders, but
    /// the users a barrier waits for before the others, so that new work cannot keep the
    /// watermark from advancing. Returns them ascending, and whether they came from a
    /// fan-out.
    pub fn take(&mut self, n: usize) -> (Vec<UserId>, bool) {
        let waiting = |set: &BTreeSet<UserId>, b: &Option<Barrier>| {
            b.as_ref()
                .map_or(0, |b| b.users.iter().filter(|u| set.contains(*u)).count())
        };
        let fan_out = self.dirty.is_empty()
            || (waiting(&self.dirty, &self.barrier) == 0
                && waiting(&self.fan_out, &self.barrier) > 0);
        let from = if fan_out {
            &mut self.fan_out
        } else {
            &mut self.dirty
        };
        let mut users = Vec::with_capacity(n.min(from.len()));
        if let Some(b) = &self.barrier {
            for user in &b.users {
                if users.len() >= n {
                    break;
                }
                if from.remove(user) {
                    users.push(*user);
                }
            }
        }
        while users.len() < n {
            let Some(user) = from.pop_first() else { break };
            users.push(user);
        }
        users.sort_unstable();
        // A user taken from `dirty` need not wait in `fan_out` too.
        for user in &users {
            self.fan_out.remove(user);
        }
        self.in_flight.extend(users.iter().copied());
        self.advance = false;
        (users, fan_out)
    }

    /// The batch in flight is written (`through`: with this watermark).
    pub fn done(&mut self, through: Option<StateRef>) {
        if let Some(b) = &mut self.barrier {
            b.users.retain(|u| !self.in_flight.contains(u));
        }
        if through.is_some() {
            self.barrier = None;
        }
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
        q.done(None);
        assert!(q.is_current(&u(2)));
        let (batch, fan_out) = q.take(2);
        assert_eq!((batch, fan_out), (vec![u(1), u(3)], true));
        q.done(None);
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

    #[test]
    fn a_barrier_goes_first_and_is_reached_while_new_work_keeps_coming() {
        use crate::model::{BlockRef, StateRef};
        let state = |n| StateRef {
            head: BlockRef {
                number: n,
                hash: alloy_primitives::B256::repeat_byte(n as u8),
            },
            finalized: None,
        };
        let touched = |users: &[u8]| Touched {
            users: users.iter().map(|i| u(*i)).collect(),
            price_assets: BTreeSet::new(),
        };
        let mut q = Queue::default();
        q.add(touched(&[8, 9]));
        q.start_barrier(state(1));
        q.add(touched(&[1, 2]));
        q.start_barrier(state(2));
        assert_eq!(
            q.barrier.as_ref().map(|b| b.state),
            Some(state(1)),
            "one at a time"
        );
        let (batch, _) = q.take(2);
        assert_eq!(
            batch,
            vec![u(8), u(9)],
            "the barrier's users before lower addresses"
        );
        assert_eq!(q.barrier_reached(), Some(state(1)));
        q.done(Some(state(1)));
        assert!(q.barrier.is_none());
        assert!(q.has_users(), "later work is still queued");
    }
}
