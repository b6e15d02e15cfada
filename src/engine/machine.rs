use std::collections::{BTreeMap, HashMap, HashSet};

use alloy_primitives::U256;

use super::{BaseState, BlockChanges, Changeset, EngineConfig, Transition, Window};
use crate::error::{BalanceFault, EngineError};
use crate::model::{Block, BlockHeader, BlockNumber, Effect, LogId, Price};

/// The pure, synchronous state machine: it decides what a delivered block means for the
/// chain it tracks and computes the resulting writes. It does no I/O; the
/// [`Watcher`](crate::Watcher) feeds it and applies its [`Changeset`]s.
#[derive(Clone, Debug)]
pub struct Engine {
    config: EngineConfig,
    window: Window,
}

impl Engine {
    /// An engine resuming from `window` (the store's checkpoint; empty for a fresh start).
    pub fn new(config: EngineConfig, window: Window) -> Self {
        Self { config, window }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The tracked chain position.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Decides what delivering `segment` (one block, or several linked ones, ascending) does.
    ///
    /// Blocks already applied (same hash) at the front are skipped, so a redelivery is a
    /// [`Transition::Noop`]. Errors leave the engine unchanged.
    pub fn plan(&self, segment: &[Block]) -> Result<Transition, EngineError> {
        if segment.is_empty() {
            return Err(EngineError::Empty);
        }
        check_linked(segment)?;
        for block in segment {
            self.check_block(block)?;
        }
        let applied = segment
            .iter()
            .take_while(|b| {
                self.window
                    .at(b.header.number)
                    .is_some_and(|h| h.hash == b.header.hash)
            })
            .count();
        let new: Vec<Block> = segment[applied..].to_vec();
        let Some(first) = new.first() else {
            return Ok(Transition::Noop);
        };
        let header = first.header;
        let Some(head) = self.window.head() else {
            return Ok(Transition::Commit { new });
        };
        if header.number > head.number + 1 {
            return Err(EngineError::Gap {
                block: header.id(),
                expected: head.number + 1,
            });
        }
        if header.number == head.number + 1 && header.parent_hash == head.hash {
            return Ok(Transition::Commit { new });
        }
        let floor = self.window.floor().unwrap_or(head.number);
        if let Some(fin) = self.window.finalized {
            if header.number <= fin.number {
                return Err(EngineError::AlreadyFinalized {
                    block: header.id(),
                    finalized: fin.number,
                });
            }
        } else if header.number <= floor {
            // Nothing finalized yet: the first applied block is the anchor and cannot be replaced.
            return Err(EngineError::ReorgBeyondFinality {
                block: header.id(),
                finalized: floor,
            });
        }
        match self.window.find(&header.parent_hash) {
            Some(parent) if parent.number + 1 == header.number => {
                let old = self
                    .window
                    .unconfirmed
                    .iter()
                    .filter(|h| h.number > parent.number)
                    .copied()
                    .collect();
                Ok(Transition::Reorg { old, new })
            }
            _ if header.number - 1 <= floor => Err(EngineError::ReorgBeyondFinality {
                block: header.id(),
                finalized: floor,
            }),
            _ => Ok(Transition::NeedParent {
                hash: header.parent_hash,
                number: header.number - 1,
            }),
        }
    }

    /// Folds a [`Transition::Commit`] or [`Transition::Reorg`] onto `base` (the balances and
    /// prices at [`Transition::base`]) and adds the finality the new head implies.
    ///
    /// Fails with a typed error (overflow, underflow) and no effect if any event cannot apply.
    pub fn build(
        &self,
        transition: Transition,
        base: &BaseState,
    ) -> Result<Changeset, EngineError> {
        let (revert, new) = match transition {
            Transition::Commit { new } => (Vec::new(), new),
            Transition::Reorg { old, new } => (old, new),
            Transition::Noop | Transition::NeedParent { .. } => return Ok(Changeset::default()),
        };
        let mut balances = base.balances.clone();
        let mut prices: HashMap<_, Price> = base.prices.clone();
        let mut blocks = Vec::with_capacity(new.len());
        for block in new {
            blocks.push(fold_block(block, &mut balances, &mut prices)?);
        }
        let mut changes = Changeset {
            revert,
            blocks,
            finalize: None,
        };
        if let Some(target) = changes
            .new_head()
            .and_then(|h| h.number.checked_sub(self.config.confirmations))
        {
            changes.finalize = self.finalize_header(&changes, target);
        }
        Ok(changes)
    }

    /// A changeset that finalizes up to `number` (e.g. the node's `finalized` tag), capped at
    /// the head; `None` if finality would not advance.
    pub fn finalize(&self, number: BlockNumber) -> Option<Changeset> {
        let head = self.window.head()?.number;
        let changes = Changeset::default();
        self.finalize_header(&changes, number.min(head))
            .map(|h| Changeset {
                finalize: Some(h),
                ..changes
            })
    }

    /// Advances the window after the store applied `changes`.
    pub fn commit(&mut self, changes: &Changeset) {
        if let Some(first) = changes.revert.first() {
            self.window.unconfirmed.retain(|h| h.number < first.number);
        }
        for b in &changes.blocks {
            let n = b.block.header.number;
            self.window.unconfirmed.retain(|h| h.number < n);
            self.window.unconfirmed.push(b.block.header);
        }
        if let Some(fin) = changes.finalize {
            self.window.unconfirmed.retain(|h| h.number > fin.number);
            self.window.finalized = Some(fin);
        }
    }

    /// The header at `target` on the chain as it will be after `changes`, if `target` is
    /// above the current finalized height.
    fn finalize_header(&self, changes: &Changeset, target: BlockNumber) -> Option<BlockHeader> {
        if self.window.finalized_number().is_some_and(|f| target <= f) {
            return None;
        }
        let reverted_from = changes
            .revert
            .first()
            .map(|h| h.number)
            .unwrap_or(BlockNumber::MAX);
        let new_from = changes
            .blocks
            .first()
            .map(|b| b.block.header.number)
            .unwrap_or(BlockNumber::MAX);
        changes
            .blocks
            .iter()
            .map(|b| b.block.header)
            .find(|h| h.number == target)
            .or_else(|| {
                self.window
                    .unconfirmed
                    .iter()
                    .find(|h| h.number == target && h.number < reverted_from && h.number < new_from)
                    .copied()
            })
    }

    /// Rejects malformed blocks: duplicate logs, unregistered assets.
    fn check_block(&self, block: &Block) -> Result<(), EngineError> {
        let id = block.id();
        let mut seen: HashSet<LogId> =
            HashSet::with_capacity(block.events.len() + block.prices.len());
        let logs = block
            .events
            .iter()
            .map(|e| (e.log, e.asset))
            .chain(block.prices.iter().map(|p| (p.log, p.asset)));
        for (log, asset) in logs {
            if !seen.insert(log) {
                return Err(EngineError::DuplicateLog { block: id, log });
            }
            if !self.config.assets.contains(&asset) {
                return Err(EngineError::UnknownAsset {
                    block: id,
                    log,
                    asset,
                });
            }
        }
        Ok(())
    }
}

/// Checks that a segment is ascending and linked parent to child.
fn check_linked(segment: &[Block]) -> Result<(), EngineError> {
    for pair in segment.windows(2) {
        let (prev, next) = (&pair[0].header, &pair[1].header);
        if next.number != prev.number + 1 || next.parent_hash != prev.hash {
            return Err(EngineError::Discontinuous {
                block: next.id(),
                parent_hash: next.parent_hash,
                expected: prev.hash,
            });
        }
    }
    Ok(())
}

/// Applies one block's events and prices to the running state and records what it wrote.
fn fold_block(
    block: Block,
    balances: &mut HashMap<crate::model::BalanceKey, U256>,
    prices: &mut HashMap<crate::model::AssetId, Price>,
) -> Result<BlockChanges, EngineError> {
    let id = block.id();
    let mut touched = BTreeMap::new();
    for event in &block.events {
        for (key, effect) in event.effects() {
            let before = balances.get(&key).copied().unwrap_or(U256::ZERO);
            let Some(after) = effect.apply(before) else {
                let (overflow, amount) = match effect {
                    Effect::Debit(amount) => (false, amount),
                    Effect::Credit(amount) | Effect::Set(amount) => (true, amount),
                };
                let fault = Box::new(BalanceFault {
                    block: id,
                    log: event.log,
                    user: key.user,
                    asset: key.asset,
                    balance: before,
                    amount,
                });
                return Err(if overflow {
                    EngineError::BalanceOverflow(fault)
                } else {
                    EngineError::BalanceUnderflow(fault)
                });
            };
            balances.insert(key, after);
            touched.insert(key, after);
        }
    }
    let mut accepted = BTreeMap::new();
    let mut rejected_prices = Vec::new();
    for update in &block.prices {
        match update.accept(prices.get(&update.asset), id.number) {
            Ok(price) => {
                prices.insert(update.asset, price);
                accepted.insert(update.asset, price);
            }
            Err(why) => {
                tracing::warn!(block = id.number, log = %update.log, asset = %update.asset, %why, "oracle update rejected");
                rejected_prices.push((update.log, why));
            }
        }
    }
    Ok(BlockChanges {
        block,
        balances: touched.into_iter().collect(),
        prices: accepted.into_values().collect(),
        rejected_prices,
    })
}
