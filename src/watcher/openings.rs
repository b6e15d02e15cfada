//! Correction rows the watcher adds to the blocks it applies: opening balances (read
//! lazily for keys it has no balance for, or for the operator's holders at the start
//! block) and the drift corrections a [`Reconciler`](super::Reconciler) queued. Each is an
//! absolute `balanceOf` read at the parent of the block that carries it, placed before
//! the block's own events, so it is exact whatever the store held before.

use std::collections::HashSet;

use alloy_primitives::U256;
use futures::{StreamExt, TryStreamExt};

use super::Watcher;
use crate::engine::Transition;
use crate::error::Error;
use crate::model::{BalanceKey, Block, BlockRef, Correction, CorrectionOrigin};

/// Opening reads (one batch per block) in flight at once during a catch-up.
const OPENING_READS_IN_FLIGHT: usize = 8;

/// Whether the watcher reads opening balances from the chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Openings {
    /// Never: right for a watcher that starts at the token's deployment block (every
    /// balance then comes from events; not for a supply minted without one, e.g. Tether's
    /// constructor).
    Off,
    /// For each (user, asset) a block's events touch whose balance at the block's parent
    /// is zero in the store (never seen, or emptied), `balanceOf(user)` at the parent,
    /// one batched read per block; a value other than zero becomes a
    /// `Reconciled { origin: Opening }` row before the block's events (a key whose own
    /// `balanceOf` fails gets none, the others do). The default: a
    /// watcher that starts below the head needs it, one that starts at deployment pays
    /// one read per new key and writes nothing more.
    #[default]
    Lazy,
}

/// Drift corrections waiting for the block they apply to (the child of the block they
/// were read at).
#[derive(Debug, Default)]
pub(super) struct CorrectionQueue {
    queued: Vec<Correction>,
}

impl CorrectionQueue {
    /// Queues `corrections` (replacing any queued for the same key).
    pub(super) fn push(&mut self, corrections: impl IntoIterator<Item = Correction>) {
        for c in corrections {
            self.queued
                .retain(|q| (q.user, q.asset) != (c.user, c.asset));
            self.queued.push(c);
        }
    }

    /// How many wait.
    pub(super) fn len(&self) -> usize {
        self.queued.len()
    }
}

impl Watcher {
    /// Queues drift corrections (from [`Reconciler::run`](super::Reconciler::run)): each is
    /// written before the events of the next applied block whose parent is the block it was
    /// read at, and dropped if the next block builds on another one (the next
    /// reconciliation reads it again). Returns how many wait.
    pub fn queue_corrections(
        &mut self,
        corrections: impl IntoIterator<Item = Correction>,
    ) -> usize {
        self.corrections.push(corrections);
        self.corrections.len()
    }

    /// Puts the queued corrections into the first new block whose parent they were read
    /// at; drops the rest (read at a block the chain no longer builds on next).
    pub(super) fn add_queued_corrections(&mut self, transition: &mut Transition) {
        if self.corrections.queued.is_empty() {
            return;
        }
        let Some(first) = transition.new_blocks_mut().first_mut() else {
            return;
        };
        let parent = first.header.parent_hash;
        let (apply, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut self.corrections.queued)
            .into_iter()
            .partition(|c| c.read_at.hash == parent);
        for c in &stale {
            tracing::info!(asset = %c.asset, user = %c.user, read_at = %c.read_at, block = %first.id(), "drift correction dropped: the next block does not build on the block it was read at");
        }
        prepend(first, self.chain_id, apply);
    }

    /// Adds opening rows to the new blocks of `transition`, given the balances of `keys`
    /// at its base height.
    pub(super) async fn add_openings(
        &self,
        transition: &mut Transition,
        keys: &[BalanceKey],
        base: &[U256],
    ) -> Result<(), Error> {
        let lazy = self.config.openings == Openings::Lazy;
        let start = self.engine.window().head().is_none();
        let holders = start && !self.config.opening_holders.is_empty();
        if !lazy && !holders {
            return Ok(());
        }
        let source = self.source.clone();
        let Some(chain) = source.chain_balances() else {
            return Ok(());
        };
        let mut known: HashSet<BalanceKey> = keys
            .iter()
            .zip(base)
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, _)| *k)
            .collect();
        // Which keys each block asks for depends on the events only, so the reads of all
        // the blocks are planned first and run concurrently (one batch per block).
        let mut asks: Vec<(usize, BlockRef, Vec<BalanceKey>)> = Vec::new();
        for (i, block) in transition.new_blocks().iter().enumerate() {
            let number = block.header.number;
            if number == 0 {
                continue;
            }
            let mut wanted = Vec::new();
            if start && number == self.config.start_block {
                wanted.extend(self.config.opening_holders.iter().copied());
            }
            if lazy {
                for event in &block.events {
                    for (key, _) in event.effects() {
                        if event.log.is_correction() {
                            known.insert(key);
                        } else {
                            wanted.push(key);
                        }
                    }
                }
            }
            let ask: Vec<BalanceKey> = wanted
                .into_iter()
                .filter(|k| chain.reads(k.asset) && known.insert(*k))
                .collect();
            if !ask.is_empty() {
                let parent = BlockRef {
                    number: number - 1,
                    hash: block.header.parent_hash,
                };
                asks.push((i, parent, ask));
            }
        }
        if asks.is_empty() {
            return Ok(());
        }
        // The reads are made before the stream takes them: a closure over `&asks` kept in
        // the stream across the await made this future (and `Watcher::sync`'s) `Send` for
        // one lifetime only, so a watcher could not run on a spawned task.
        let reads: Vec<_> = asks
            .iter()
            .map(|(_, parent, ask)| chain.balances_each(ask, *parent))
            .collect();
        let reads = futures::stream::iter(reads)
            .buffered(OPENING_READS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        let blocks = transition.new_blocks_mut();
        for ((i, parent, ask), values) in asks.into_iter().zip(reads) {
            let rows: Vec<Correction> = ask
                .into_iter()
                .zip(values)
                .filter_map(|(key, read)| match read {
                    Ok(balance) => Some((key, balance)),
                    // That token's `balanceOf` failed: no opening for it (a debit it
                    // misses faults its asset alone); the others are written.
                    Err(e) => {
                        tracing::warn!(asset = %key.asset, user = %key.user, read_at = %parent, error = %e, "opening balance not read");
                        None
                    }
                })
                .filter(|(_, balance)| !balance.is_zero())
                .map(|(key, balance)| Correction {
                    asset: key.asset,
                    user: key.user,
                    balance,
                    origin: CorrectionOrigin::Opening,
                    read_at: parent,
                })
                .collect();
            if !rows.is_empty() {
                tracing::debug!(
                    block = parent.number + 1,
                    openings = rows.len(),
                    "opening balances read"
                );
            }
            prepend(&mut blocks[i], self.chain_id, rows);
        }
        Ok(())
    }
}

/// Adds `rows` after the block's existing corrections and before its own events.
fn prepend(block: &mut Block, chain: u64, rows: Vec<Correction>) {
    if rows.is_empty() {
        return;
    }
    let existing = block
        .events
        .iter()
        .take_while(|e| e.log.is_correction())
        .count();
    let events = rows
        .iter()
        .enumerate()
        .map(|(i, c)| c.event(chain, (existing + i) as u64));
    block.events.splice(existing..existing, events);
}
