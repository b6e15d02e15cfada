//! The refresh pipeline: the writer commits a step and hands its touched users and
//! repriced assets to a queue; a refresher task values them from the store in chunks,
//! writes the cache and notifies subscribers. Ingestion never waits for the cache.
//!
//! # Consistency
//! The refresher reads the store under the read side of a gate whose write side the
//! writer holds while it commits, so every chunk is read from one committed state, and
//! stamped with that state (head, its hash, finalized height). Chunks are written in order
//! by one task, so a later write always reflects a later (or the same) state: an entry
//! never goes back in time. A refresher waits until the previous refresher of the same
//! cache (of a watcher dropped in this process) has stopped before it writes.
//! Each user's entry is one state's; a reader of several users during a price fan-out may
//! see some at the new price's block and others still at an earlier one (their stamp
//! says which). When the queue is empty after a chunk, the chunk's write also sets the
//! cache's watermark to its state: every change up to it is in the cache. While work keeps
//! coming, the watermark still advances: to the state at which the refresher last started
//! a barrier (the state and the work queued up to it), once that work is written.
//!
//! # Losses
//! The watcher marks the cache with its session
//! ([`begin_session`](crate::traits::CollateralCache::begin_session)) before it reads the
//! watermark at start, and the refresher writes through
//! [`write_in_session`](crate::traits::CollateralCache::write_in_session): a cache that
//! lost the mark (a `FLUSHALL`, a `clear`, another watcher) refuses the watermark, and the
//! refresher then queues every holder again, so the watermark is only set once every
//! entry written since the loss is back.
//!
//! # Failures
//! A failed cache write puts the chunk's users back in front of the queue and opens a
//! circuit breaker: the refresher waits (100 ms, doubling up to 5 s) before it tries
//! again, while ingestion goes on and new changes coalesce in the queue. Users in the
//! queue read from the store. The watermark stays behind until the cache has caught up,
//! so a restarted watcher, or a [`CollateralReader`] in another process, knows that the
//! cache is behind.

mod notify;
mod queue;
mod remote;
mod turns;
mod views;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, RwLock, broadcast, watch};
use tokio::time::Instant;

pub use notify::{CollateralUpdate, Notification, Subscription, UpdateCause, UserTotals};
pub(super) use queue::Queue;
pub(crate) use views::ViewDelta;

use self::turns::{new_session, turn};
use self::views::ViewMemo;
use crate::chains::ChainId;
use crate::error::{StoreError, ValuationError};
use crate::metrics::ChainMetrics;
use crate::model::{
    AssetId, BlockHeader, BlockNumber, BlockRef, CachedCollateral, Collateral, PriceView, StateRef,
    UserId, Window,
};
use crate::reader::{CollateralReader, ValuationPoint, assets_of};
use crate::traits::Touched;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where the refresh stands, as the refresher last reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshStatus {
    /// Every change up to this block is refreshed (and in the cache, if any).
    pub through: Option<BlockRef>,
    /// Whether the queue was empty at the last report.
    pub idle: bool,
    /// Users waiting for a refresh at the last report.
    pub queued: usize,
    /// The last cache write's error, while the cache is failing.
    pub failing: Option<String>,
    /// Refresh batches written.
    pub batches: u64,
    /// Cache writes that failed.
    pub cache_errors: u64,
    /// Users whose valuation failed (left out of the cache; read from the store).
    pub valuation_errors: u64,
}

/// The committed head and finalized height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tip {
    pub head: BlockHeader,
    pub finalized: Option<BlockNumber>,
}

impl Tip {
    /// The tip of `window`, if any block was applied.
    pub fn of(window: &Window) -> Option<Self> {
        window.head().map(|head| Self {
            head: *head,
            finalized: window.finalized_number(),
        })
    }

    /// The state it names.
    pub fn state(&self) -> StateRef {
        StateRef {
            head: self.head.id(),
            finalized: self.finalized,
        }
    }
}

/// State shared by the writer and the refresher.
#[derive(Debug)]
pub(super) struct Shared {
    /// The committed tip; the writer holds the write side while it commits.
    pub gate: RwLock<Option<Tip>>,
    /// This watcher's cache session (see [Losses](self#losses)).
    pub session: u64,
    queue: Mutex<Queue>,
    wake: Notify,
    pub status: watch::Sender<RefreshStatus>,
    pub updates: broadcast::Sender<Notification>,
}

impl Shared {
    pub fn new(tip: Option<Tip>, capacity: usize) -> Self {
        let (updates, _) = broadcast::channel(capacity.max(1));
        Self {
            gate: RwLock::new(tip),
            session: new_session(),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            status: watch::Sender::new(RefreshStatus {
                idle: true,
                ..RefreshStatus::default()
            }),
            updates,
        }
    }

    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the refresher (a permit is kept if it is busy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Marks the status busy (work was queued).
    pub fn mark_busy(&self) {
        self.status
            .send_if_modified(|s| std::mem::replace(&mut s.idle, false));
    }
}

/// How the refresher runs.
#[derive(Clone, Debug)]
pub(super) struct RefreshSettings {
    pub chunk: usize,
    pub catch_up_interval: Duration,
    /// Users the view memo holds at most.
    pub memo: usize,
    /// The metrics it records.
    pub metrics: ChainMetrics,
    /// The watcher's chain, named by every update.
    pub chain: ChainId,
    /// How often remote prices are polled ([`remote::RemoteWatch`]).
    pub remote_price_interval: Duration,
}

/// The refresher task: runs until the watcher is dropped.
pub(super) async fn run(shared: Arc<Shared>, reader: CollateralReader, settings: RefreshSettings) {
    // Held while this task runs (it holds the cache, so the address stays its own).
    let _turn = match reader.cache() {
        Some(cache) => Some(turn(cache).await),
        None => None,
    };
    let mut backoff: Option<Duration> = None;
    let mut memo = ViewMemo::new(settings.memo);
    let mut last = Instant::now() - settings.catch_up_interval;
    let mut fan_out_started: Option<Instant> = None;
    let mut remote = remote::RemoteWatch::new(settings.remote_price_interval);
    loop {
        // Wait for work; during a catch-up, at most one refresh per interval.
        loop {
            // Before the first step there is nothing to refresh (nor a state to value at).
            let started = shared.gate.read().await.is_some();
            if let Some(touched) = if started {
                remote.poll(&reader).await
            } else {
                None
            } {
                shared.queue().add(touched);
                shared.mark_busy();
            }
            let (work, closed, catching_up) = {
                let q = shared.queue();
                (q.has_work(), q.closed, q.catching_up)
            };
            if closed {
                return;
            }
            let due = last + settings.catch_up_interval;
            if work && !(catching_up && Instant::now() < due) {
                break;
            }
            let due = match (work, remote.next_poll()) {
                (true, Some(poll)) => Some(due.min(poll)),
                (true, None) => Some(due),
                (false, poll) => poll,
            };
            match due {
                Some(due) => tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shared.wake.notified() => {}
                },
                None => shared.wake.notified().await,
            }
        }
        last = Instant::now();
        let listing = {
            let q = shared.queue();
            q.dirty.is_empty() && !q.repriced.is_empty()
        };
        fan_out_started = fan_out_started.or(listing.then_some(last));
        let ok = batch(
            &shared,
            &reader,
            &mut memo,
            settings.chunk,
            &settings.metrics,
            settings.chain,
        )
        .await;
        let (queued, fanned_out) = {
            let q = shared.queue();
            (
                q.len(),
                !q.listing && q.repriced.is_empty() && q.fan_out.is_empty(),
            )
        };
        settings.metrics.refreshed(last.elapsed(), !ok, queued);
        if let Some(started) = fan_out_started.filter(|_| fanned_out && ok) {
            settings.metrics.fan_out_done(started.elapsed());
            fan_out_started = None;
        }
        backoff = if ok {
            None
        } else {
            let wait = backoff.map_or(BACKOFF_START, |b| (b * 2).min(BACKOFF_MAX));
            tokio::time::sleep(wait).await;
            Some(wait)
        };
    }
}

/// One batch: list repriced holders if due, take a chunk, value it under the gate, write
/// it, notify. Returns whether the cache write (if any) succeeded.
async fn batch(
    shared: &Shared,
    reader: &CollateralReader,
    memo: &mut ViewMemo,
    chunk: usize,
    metrics: &ChainMetrics,
    chain: ChainId,
) -> bool {
    // Holders are listed outside the gate: a long read must not hold up the writer, and a
    // user who becomes a holder meanwhile is a touched user of that step anyway.
    let repriced = {
        let mut q = shared.queue();
        if q.dirty.is_empty() && !q.repriced.is_empty() {
            q.listing = true;
            std::mem::take(&mut q.repriced)
        } else {
            Default::default()
        }
    };
    let mut listed = Vec::new();
    // A new price or rate of a key revalues the holders of every asset priced from it.
    let registry = reader.valuator().assets();
    let priced: BTreeSet<AssetId> = repriced
        .iter()
        .flat_map(|key| registry.dependents(key))
        .collect();
    for asset in &priced {
        match reader.store().holders(*asset).await {
            Ok(holders) => listed.extend(holders),
            Err(error) => {
                tracing::warn!(%error, %asset, "listing holders for a price refresh failed");
                let mut q = shared.queue();
                q.repriced.extend(repriced.iter().copied());
                q.listing = false;
                return false;
            }
        }
    }
    if !repriced.is_empty() {
        metrics.fan_out_listed(listed.len());
        let mut q = shared.queue();
        q.listed(&repriced, &listed);
        q.listing = false;
    }
    let gate = shared.gate.read().await;
    // The memo catches up with the committed head first.
    for delta in shared.queue().take_deltas() {
        memo.apply(delta);
    }
    let Some(tip) = *gate else {
        shared.queue().advance = false;
        shared.status.send_modify(|s| s.idle = true);
        return true;
    };
    // Quarantines and resumes of the committed steps, queued under the writer's gate:
    // every update sent before was of an earlier state, every update after is of this one.
    for notice in shared.queue().take_notices() {
        let _ = shared.updates.send(notice);
    }
    let (head, state) = (tip.head, tip.state());
    let (users, fan_out) = {
        let mut q = shared.queue();
        q.start_barrier(state);
        q.take(chunk.max(1))
    };
    let valued = value(reader, memo, &users, ValuationPoint::of(Some(&head))).await;
    let (complete, barrier) = {
        let q = shared.queue();
        (!q.has_users(), q.barrier_reached())
    };
    drop(gate);
    let valued = match valued {
        Ok(v) => v,
        Err(error) => {
            tracing::warn!(%error, users = users.len(), "reading balances for a refresh failed");
            shared.queue().retry();
            return false;
        }
    };
    let mut entries = Vec::with_capacity(valued.len());
    let mut valuation_errors = 0;
    for (user, c) in users.iter().zip(valued) {
        match c {
            Ok(c) => entries.push(CachedCollateral::new(&c, Some(&state))),
            Err(error) => {
                valuation_errors += 1;
                tracing::warn!(%error, %user, "collateral cannot be valued; left out of the cache");
            }
        }
    }
    // Every change up to the head when the queue is empty, up to the barrier's state when
    // its work is written.
    let mark = if complete { Some(state) } else { barrier };
    let written = match reader.cache() {
        Some(cache) => cache.write_in_session(&entries, mark, shared.session).await,
        None => Ok(true),
    };
    let ok = written.is_ok();
    let intact = matches!(written, Ok(true));
    // A dropped watcher's refresher whose mark the next watcher replaced: not a loss.
    let lost = ok && !intact && !shared.queue().closed;
    let mark = mark.filter(|_| intact);
    {
        let mut q = shared.queue();
        if ok {
            q.done(mark)
        } else {
            q.retry()
        }
        if lost {
            // The cache lost entries written before (a flush, a clear, another watcher):
            // everyone again, before any watermark.
            q.barrier = None;
            q.add(Touched {
                users: BTreeSet::new(),
                price_assets: reader.valuator().assets().iter().map(|a| a.id).collect(),
            });
        }
    }
    if let Err(error) = &written {
        tracing::warn!(%error, users = entries.len(), "collateral cache write failed; ingestion continues");
    }
    if lost {
        tracing::warn!(
            head = head.number,
            "the cache lost its session mark (flushed, cleared, or taken by another watcher): refreshing every holder"
        );
    }
    let through = mark.map(|m| m.head);
    let complete = complete && intact;
    let queued = shared.queue().len();
    let idle = ok && complete && !shared.queue().has_work();
    let complete_through = through.filter(|_| complete);
    shared.status.send_modify(|s| {
        if ok {
            s.batches += 1;
            s.failing = None;
            if through.is_some() {
                s.through = through;
            }
        } else {
            s.cache_errors += 1;
            s.failing = written.as_ref().err().map(ToString::to_string);
        }
        s.valuation_errors += valuation_errors;
        s.queued = queued;
        s.idle = idle;
    });
    if entries.is_empty() {
        return ok;
    }
    // The values are the store's: subscribers get them even while the cache fails.
    let _ = shared
        .updates
        .send(Notification::Update(Arc::new(CollateralUpdate {
            chain,
            block: head.id(),
            cause: if fan_out {
                UpdateCause::PriceFanOut
            } else {
                UpdateCause::Step
            },
            users: entries.iter().map(UserTotals::from).collect(),
            complete_through,
        })));
    ok
}

/// Values `users` at the committed head (the caller holds the gate): views the memo holds
/// are used as they are, the others are read from the store in one read (and kept).
async fn value(
    reader: &CollateralReader,
    memo: &mut ViewMemo,
    users: &[UserId],
    at: ValuationPoint,
) -> Result<Vec<Result<Collateral, ValuationError>>, StoreError> {
    let missing: Vec<UserId> = users
        .iter()
        .filter(|u| memo.user(u).is_none())
        .copied()
        .collect();
    let read = if missing.is_empty() {
        Vec::new()
    } else {
        reader.store().user_balances_many(&missing).await?
    };
    for (user, views) in missing.iter().zip(&read) {
        memo.insert_user(*user, views);
    }
    // `missing` is a subsequence of `users`: walk both.
    let mut fetched = missing.iter().zip(&read).peekable();
    let held: Vec<&[_]> = users
        .iter()
        .map(|user| match fetched.next_if(|(u, _)| *u == user) {
            Some((_, views)) => views.as_slice(),
            None => memo.user(user).unwrap_or_default(),
        })
        .collect();
    let assets = assets_of(held.iter().copied());
    // Prices are memoized by price key (a feed's key, see `AssetRegistry::price_key`);
    // vault rates are read on every refresh.
    let keys = reader.price_keys(&assets);
    let unknown: Vec<AssetId> = keys
        .iter()
        .filter(|a| memo.price(a).is_none())
        .copied()
        .collect();
    let mut prices: HashMap<AssetId, PriceView> = keys
        .iter()
        .filter_map(|a| memo.price(a).map(|p| (*a, p)))
        .collect();
    // Prices from another chain's store are read each time (no delta tells the memo).
    let read_prices = if unknown.is_empty() {
        HashMap::new()
    } else {
        reader.read_prices(&unknown).await?
    };
    prices.extend(read_prices.iter().map(|(k, v)| (*k, *v)));
    let states = reader.store().asset_states().await?;
    let rates = reader.rates_of(&assets).await?;
    let valued = reader.value_many(users, held, &prices, &rates, &states, at);
    for (asset, view) in read_prices {
        if !reader.remote_prices().any(|(key, _)| key == asset) {
            memo.insert_price(asset, view);
        }
    }
    Ok(valued)
}
