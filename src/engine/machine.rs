use super::fold::Fold;
use super::{BaseState, EngineConfig, Plan, Transition};
use crate::error::EngineError;
use crate::model::{Block, BlockHeader, BlockNumber, Changeset, Window};

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
    /// Blocks already applied (same hash) at the front are skipped, so a redelivery is
    /// [`Plan::UpToDate`]; the new blocks move into the transition, and for
    /// [`Plan::NeedParent`] the segment is handed back to prepend the parent. Errors leave
    /// the engine unchanged.
    pub fn plan(&self, mut segment: Vec<Block>) -> Result<Plan, EngineError> {
        let (decision, applied) = self.decide(&segment)?;
        Ok(match decision {
            Decision::Noop => Plan::UpToDate,
            Decision::NeedParent { hash, number } => Plan::NeedParent {
                hash,
                number,
                segment,
            },
            Decision::Commit => Plan::Apply(Transition::Commit {
                new: segment.split_off(applied),
            }),
            Decision::Reorg(old) => Plan::Apply(Transition::Reorg {
                old,
                new: segment.split_off(applied),
            }),
        })
    }

    /// The transition that rolls the chain back to `number` when the source's canonical
    /// chain ends there (its head moved back with no new block): `None` if our head is at
    /// or below `number`. Refused like a reorg when it would undo a finalized block (or,
    /// with nothing finalized, the first block applied).
    pub fn revert_to(&self, number: BlockNumber) -> Result<Option<Transition>, EngineError> {
        let Some(head) = self.window.head().copied() else {
            return Ok(None);
        };
        if number >= head.number {
            return Ok(None);
        }
        let floor = self.window.floor().unwrap_or(head.number);
        if number < floor {
            return Err(EngineError::ReorgBeyondFinality {
                block: head.id(),
                finalized: floor,
            });
        }
        let old = self
            .window
            .unconfirmed
            .iter()
            .filter(|h| h.number > number)
            .copied()
            .collect();
        Ok(Some(Transition::Revert { old }))
    }

    /// The decision for `segment`, and how many of its leading blocks are already applied.
    fn decide(&self, segment: &[Block]) -> Result<(Decision, usize), EngineError> {
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
        let Some(first) = segment.get(applied) else {
            return Ok((Decision::Noop, applied));
        };
        let header = first.header;
        let Some(head) = self.window.head() else {
            return Ok((Decision::Commit, applied));
        };
        if header.number > head.number + 1 {
            return Err(EngineError::Gap {
                block: header.id(),
                expected: head.number + 1,
            });
        }
        if header.number == head.number + 1 && header.parent_hash == head.hash {
            return Ok((Decision::Commit, applied));
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
                Ok((Decision::Reorg(old), applied))
            }
            _ if header.number - 1 <= floor => Err(EngineError::ReorgBeyondFinality {
                block: header.id(),
                finalized: floor,
            }),
            _ => Ok((
                Decision::NeedParent {
                    hash: header.parent_hash,
                    number: header.number - 1,
                },
                applied,
            )),
        }
    }

    /// Folds a transition onto `base` (the balances and prices at [`Transition::base`]) and
    /// adds the finality the new head implies: its confirmation depth, and `known_final`
    /// (capped at the new head), a height the source already reports as final when the
    /// blocks are delivered (its head minus the confirmations during a catch-up, or its
    /// `finalized` tag). Blocks at or below it are then written as confirmed in this
    /// changeset instead of as pending state promoted by a later one. Finality never moves
    /// back, and a [`Transition::Revert`] finalizes nothing.
    ///
    /// Fails with a typed error (overflow, underflow) and no effect if any event cannot apply.
    pub fn build(
        &self,
        transition: Transition,
        base: BaseState,
        known_final: Option<BlockNumber>,
    ) -> Result<Changeset, EngineError> {
        let (revert, new) = match transition {
            Transition::Commit { new } => (Vec::new(), new),
            Transition::Reorg { old, new } => (old, new),
            Transition::Revert { old } => {
                return Ok(Changeset {
                    revert: old,
                    ..Changeset::default()
                });
            }
        };
        let mut fold = Fold::new(base, self.config.assets.clone());
        let mut blocks = Vec::with_capacity(new.len());
        for block in new {
            blocks.push(fold.block(block)?);
        }
        let mut changes = Changeset {
            revert,
            blocks,
            finalize: None,
        };
        if let Some(head) = changes.new_head().map(|h| h.number) {
            let by_depth = head.checked_sub(self.config.confirmations);
            let known = known_final.map(|k| k.min(head));
            if let Some(target) = by_depth.max(known) {
                changes.finalize = self.finalize_header(&changes, target);
            }
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

    /// Rejects malformed blocks: duplicate logs (log indices are unique within a block),
    /// unregistered assets, events or price updates out of log order (each list must
    /// ascend by log index: the fold follows it; correction rows form a prefix of the
    /// events, ascending among themselves).
    fn check_block(&self, block: &Block) -> Result<(), EngineError> {
        let id = block.id();
        // Events of one log (a decoder's `decode_all`) share its id and differ by `part`.
        let logs = block
            .events
            .iter()
            .map(|e| (e.log, e.part, e.asset))
            .chain(block.prices.iter().map(|p| (p.log, 0, p.asset)));
        let mut indices = Vec::with_capacity(block.events.len() + block.prices.len());
        for (log, part, asset) in logs {
            if !self.config.assets.contains(&asset) {
                return Err(EngineError::UnknownAsset {
                    block: id,
                    log,
                    asset,
                });
            }
            indices.push(((log.log_index, part), log));
        }
        indices.sort_unstable_by_key(|(i, _)| *i);
        if let Some(pair) = indices.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EngineError::DuplicateLog {
                block: id,
                log: pair[1].1,
            });
        }
        super::rates::check(&self.config.assets, block)?;
        // Correction rows (synthetic ids) come first and apply before the block's own
        // events; each part ascends by (log index, part).
        let corrections = block
            .events
            .iter()
            .take_while(|e| e.log.is_correction())
            .count();
        if let Some(late) = block.events[corrections..]
            .iter()
            .find(|e| e.log.is_correction())
        {
            return Err(EngineError::LogOutOfOrder {
                block: id,
                log: late.log,
                previous: block.events[corrections].log.log_index,
            });
        }
        let of = |events: &[crate::model::BalanceEvent]| {
            events.iter().map(|e| (e.log, e.part)).collect::<Vec<_>>()
        };
        let parts = [
            of(&block.events[..corrections]),
            of(&block.events[corrections..]),
            block.prices.iter().map(|p| (p.log, 0)).collect(),
        ];
        for logs in parts {
            if let Some(pair) = logs
                .windows(2)
                .find(|w| (w[0].0.log_index, w[0].1) > (w[1].0.log_index, w[1].1))
            {
                return Err(EngineError::LogOutOfOrder {
                    block: id,
                    log: pair[1].0,
                    previous: pair[0].0.log_index,
                });
            }
        }
        Ok(())
    }
}

/// What [`Engine::decide`] found, before the blocks are moved into a [`Plan`].
enum Decision {
    Noop,
    NeedParent {
        hash: alloy_primitives::B256,
        number: BlockNumber,
    },
    Commit,
    Reorg(Vec<BlockHeader>),
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

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
