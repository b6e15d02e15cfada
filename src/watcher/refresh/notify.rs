//! Notifications: one [`CollateralUpdate`] per refresh batch, and one per quarantine or
//! resume of an asset, delivered to every [`Subscription`] in order; a subscriber that
//! falls behind is told so, with where to resync from.

use std::sync::Arc;

use rust_decimal::Decimal;
use tokio::sync::{broadcast, watch};

use super::RefreshStatus;
use crate::chains::ChainId;
use crate::model::{AssetId, BlockRef, CachedCollateral, Quarantine, UserId};

/// Why a batch of users was refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpdateCause {
    /// Their balances changed, or a reorg or a finalization touched them.
    Step,
    /// A price they hold changed: a chunk of that asset's holders.
    PriceFanOut,
}

/// A user's new totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserTotals {
    /// The user.
    pub user: UserId,
    /// Confirmed collateral total.
    pub confirmed: Decimal,
    /// Pending collateral total.
    pub pending: Decimal,
    /// Whether every price behind the totals was present and fresh.
    pub complete: bool,
    /// Whether an asset of the user is quarantined on either side (its value is left out
    /// of the totals; see [`Quarantine`](crate::model::Quarantine)).
    pub quarantined: bool,
}

impl From<&CachedCollateral> for UserTotals {
    fn from(c: &CachedCollateral) -> Self {
        Self {
            user: c.user,
            confirmed: c.confirmed,
            pending: c.pending,
            complete: c.complete,
            quarantined: c
                .assets
                .values()
                .any(|a| a.quarantined.confirmed.is_some() || a.quarantined.pending.is_some()),
        }
    }
}

/// One refresh: the users whose collateral was recomputed, all valued at `block`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollateralUpdate {
    /// The chain of the watcher that refreshed (its source's chain id;
    /// [`ChainId::UNSPECIFIED`] for a source without one): `block` is a block of it.
    pub chain: ChainId,
    /// The head block every value reflects.
    pub block: BlockRef,
    /// Why these users were refreshed.
    pub cause: UpdateCause,
    /// The users and their new totals, ascending by user.
    pub users: Vec<UserTotals>,
    /// Set when this refresh completed every change up to `block` (the cache's watermark,
    /// when a cache is attached).
    pub complete_through: Option<BlockRef>,
}

/// What a [`Subscription`] delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// A refresh.
    Update(Arc<CollateralUpdate>),
    /// The subscriber fell behind and `missed` updates were dropped for it. Resync: read
    /// the users you follow from the cache or the store (a
    /// [`CollateralReader`](crate::reader::CollateralReader)); every change up to
    /// `resync_from` is already in the cache, and updates after it follow.
    Lagged {
        /// The chain of the watcher whose updates were dropped (its source's chain id;
        /// [`ChainId::UNSPECIFIED`] for a source without one).
        chain: ChainId,
        /// Updates dropped.
        missed: u64,
        /// The block up to which the refresh had completed when the lag was noticed.
        resync_from: Option<BlockRef>,
    },
    /// An asset was quarantined in a committed block (a log of it could not be applied or
    /// decoded; its value is left out of every total until it is resumed). Delivered in
    /// order with the updates: after every update of an earlier state, before the updates
    /// that revalue its holders. A reorg that removes the block lifts the quarantine (the
    /// holders' next updates say so); a fault mined again is a new notification.
    Quarantined {
        /// The chain of the watcher (its source's chain id; [`ChainId::UNSPECIFIED`] for
        /// a source without one): the quarantine's block is a block of it.
        chain: ChainId,
        /// The quarantine: asset, block, log and reason.
        quarantine: Quarantine,
    },
    /// A quarantined asset was resumed in the committed block `block` (a
    /// [`Watcher::resume`](crate::Watcher::resume)); delivered like [`Quarantined`](Self::Quarantined).
    Resumed {
        /// The chain of the watcher, as in [`Quarantined`](Self::Quarantined).
        chain: ChainId,
        /// The resumed asset.
        asset: AssetId,
        /// The block that carries the resume.
        block: BlockRef,
    },
}

impl Notification {
    /// The chain the notification is about: the watcher's, for every kind (an update, a
    /// lag of its subscription, a quarantine or a resume). Always `Some` from a watcher;
    /// `None` is kept for notifications decoded from a publisher that did not name it.
    pub fn chain(&self) -> Option<ChainId> {
        match self {
            Notification::Update(u) => Some(u.chain),
            Notification::Quarantined { chain, .. }
            | Notification::Resumed { chain, .. }
            | Notification::Lagged { chain, .. } => Some(*chain),
        }
    }
}

/// A subscriber's end of the watcher's notifications
/// ([`Watcher::subscribe`](crate::watcher::Watcher::subscribe)).
///
/// Delivery: every update is delivered, in order, to every subscriber that keeps up;
/// one that falls more than the channel's capacity behind gets [`Notification::Lagged`]
/// instead of the updates it missed, never a silent gap.
#[derive(Debug)]
pub struct Subscription {
    updates: broadcast::Receiver<Notification>,
    status: watch::Receiver<RefreshStatus>,
    chain: ChainId,
}

impl Subscription {
    pub(in crate::watcher) fn new(
        updates: broadcast::Receiver<Notification>,
        status: watch::Receiver<RefreshStatus>,
        chain: ChainId,
    ) -> Self {
        Self {
            updates,
            status,
            chain,
        }
    }

    /// The chain of the watcher this subscription follows (named by every notification
    /// it delivers, lags included).
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The next notification; `None` once the watcher is gone and every update was read.
    pub async fn recv(&mut self) -> Option<Notification> {
        match self.updates.recv().await {
            Ok(notification) => Some(notification),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Notification::Lagged {
                chain: self.chain,
                missed,
                resync_from: self.status.borrow().through,
            }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next notification if one is ready (`None`: none ready, or the watcher is gone).
    pub fn try_recv(&mut self) -> Option<Notification> {
        match self.updates.try_recv() {
            Ok(notification) => Some(notification),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Notification::Lagged {
                chain: self.chain,
                missed,
                resync_from: self.status.borrow().through,
            }),
            Err(_) => None,
        }
    }
}
