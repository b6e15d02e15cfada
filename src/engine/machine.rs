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
        let mut fold = Fold::new(base);
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
    /// unregistered assets.
    fn check_block(&self, block: &Block) -> Result<(), EngineError> {
        let id = block.id();
        let logs = block
            .events
            .iter()
            .map(|e| (e.log, e.asset))
            .chain(block.prices.iter().map(|p| (p.log, p.asset)));
        let mut indices = Vec::with_capacity(block.events.len() + block.prices.len());
        for (log, asset) in logs {
            if !self.config.assets.contains(&asset) {
                return Err(EngineError::UnknownAsset {
                    block: id,
                    log,
                    asset,
                });
            }
            indices.push((log.log_index, log));
        }
        indices.sort_unstable_by_key(|(i, _)| *i);
        if let Some(pair) = indices.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EngineError::DuplicateLog {
                block: id,
                log: pair[1].1,
            });
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
mod tests {
    use alloy_primitives::{Address, B256, U256};

    use super::*;
    use crate::model::{Asset, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, LogId};

    const ASSET: Address = Address::repeat_byte(0xA1);

    /// Plans a copy of `segment`.
    fn plan(engine: &Engine, segment: &[Block]) -> Result<Plan, EngineError> {
        engine.plan(segment.to_vec())
    }

    /// Plans `segment`, which must resolve to a transition.
    fn transition(engine: &Engine, segment: &[Block]) -> Transition {
        match plan(engine, segment).unwrap() {
            Plan::Apply(t) => t,
            other => panic!("expected a transition, got {other:?}"),
        }
    }

    fn config(confirmations: u64) -> EngineConfig {
        EngineConfig::new(
            AssetRegistry::new([Asset::new(ASSET, "TKN", 0, 10_000)]).unwrap(),
            confirmations,
        )
    }

    fn header(number: u64, fork: u8, parent: &BlockHeader) -> BlockHeader {
        BlockHeader {
            number,
            hash: B256::from(U256::from(number) << 8 | U256::from(fork)),
            parent_hash: parent.hash,
            timestamp: number * 12,
        }
    }

    /// A chain `start..=end` on fork `fork`, branching from `parent`.
    fn chain(parent: &BlockHeader, len: u64, fork: u8) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::new();
        let mut prev = *parent;
        for i in 1..=len {
            let h = header(parent.number + i, fork, &prev);
            prev = h;
            out.push(Block::empty(h));
        }
        out
    }

    fn genesis() -> BlockHeader {
        BlockHeader {
            number: 10,
            hash: B256::repeat_byte(1),
            parent_hash: B256::ZERO,
            timestamp: 0,
        }
    }

    /// An engine that applied genesis + `len` blocks of fork 0.
    fn engine_with(len: u64, confirmations: u64) -> (Engine, Vec<Block>) {
        let mut engine = Engine::new(config(confirmations), Window::default());
        let mut blocks = vec![Block::empty(genesis())];
        blocks.extend(chain(&genesis(), len, 0));
        for b in &blocks {
            let t = transition(&engine, std::slice::from_ref(b));
            let c = engine.build(t, BaseState::default(), None).unwrap();
            engine.commit(&c);
        }
        (engine, blocks)
    }

    fn deposit(block: &mut Block, index: u64, user: u8, amount: U256) {
        block.events.push(BalanceEvent {
            log: LogId {
                tx_hash: B256::repeat_byte(index as u8),
                log_index: index,
            },
            asset: ASSET,
            change: BalanceChange::Deposit {
                user: Address::repeat_byte(user),
                amount,
            },
        });
    }

    #[test]
    fn first_block_commits_anything() {
        let engine = Engine::new(config(3), Window::default());
        let t = transition(&engine, &[Block::empty(genesis())]);
        assert!(matches!(t, Transition::Commit { ref new } if new.len() == 1));
    }

    #[test]
    fn child_of_head_commits_and_finalizes_at_depth() {
        let (engine, blocks) = engine_with(3, 3);
        let next = chain(&blocks.last().unwrap().header, 1, 0);
        let t = transition(&engine, &next);
        assert!(matches!(t, Transition::Commit { .. }));
        let c = engine.build(t, BaseState::default(), None).unwrap();
        assert_eq!(c.finalize_number(), Some(11), "head 14 - 3 confirmations");
    }

    #[test]
    fn known_finality_finalizes_new_blocks_at_once_capped_at_the_new_head() {
        let (engine, blocks) = engine_with(3, 3);
        let fin = engine.window().finalized_number().unwrap();
        let build = |len: u64, known: Option<u64>| {
            let next = chain(&blocks.last().unwrap().header, len, 0);
            let t = transition(&engine, &next);
            engine.build(t, BaseState::default(), known).unwrap()
        };
        // Head 13 + 5 = 18: by depth 15; the source knows 17 is final.
        assert_eq!(build(5, Some(17)).finalize_number(), Some(17));
        // Known finality beyond the new head finalizes the whole changeset.
        let c = build(5, Some(40));
        assert_eq!(c.finalize_number(), Some(18));
        assert_eq!(c.finalize, Some(c.blocks.last().unwrap().block.header));
        // Below the depth rule, or below what is already final: the depth rule decides.
        assert_eq!(build(5, Some(12)).finalize_number(), Some(15));
        assert_eq!(build(1, Some(fin - 1)).finalize_number(), Some(11));
        assert_eq!(build(5, None).finalize_number(), Some(15));
    }

    #[test]
    fn no_finality_before_enough_confirmations() {
        let (engine, _) = engine_with(2, 3);
        assert_eq!(engine.window().finalized_number(), None);
    }

    #[test]
    fn redelivery_is_noop_anywhere_in_the_window() {
        let (engine, blocks) = engine_with(5, 3);
        for b in &blocks[blocks.len() - 4..] {
            assert_eq!(
                plan(&engine, std::slice::from_ref(b)).unwrap(),
                Plan::UpToDate,
                "block #{}",
                b.header.number
            );
        }
        // A segment whose applied prefix is skipped commits only the rest.
        let mut seg = blocks[blocks.len() - 2..].to_vec();
        seg.extend(chain(&blocks.last().unwrap().header, 2, 0));
        let t = transition(&engine, &seg);
        assert!(matches!(t, Transition::Commit { ref new } if new.len() == 2));
    }

    #[test]
    fn reorg_of_every_depth_in_the_window() {
        let (engine, blocks) = engine_with(8, 5);
        let head = blocks.last().unwrap().header.number;
        let fin = engine.window().finalized_number().unwrap();
        for depth in 1..=(head - fin) {
            let fork_point = &blocks[blocks.len() - 1 - depth as usize].header;
            for new_len in 1..=depth + 1 {
                let new = chain(fork_point, new_len, 1);
                let t = transition(&engine, &new);
                let Transition::Reorg { old, new: applied } = &t else {
                    panic!("depth {depth}: {t:?}")
                };
                assert_eq!(old.len() as u64, depth);
                assert_eq!(old.first().unwrap().number, fork_point.number + 1);
                assert_eq!(applied.len() as u64, new_len);
                let c = engine.build(t.clone(), BaseState::default(), None).unwrap();
                let mut e = engine.clone();
                e.commit(&c);
                assert_eq!(e.window().head().unwrap(), &new.last().unwrap().header);
            }
        }
    }

    #[test]
    fn unknown_parent_asks_for_it() {
        let (engine, blocks) = engine_with(6, 5);
        let fork_point = &blocks[blocks.len() - 4].header;
        let new = chain(fork_point, 4, 1);
        let t = plan(&engine, &new[2..]).unwrap();
        assert_eq!(
            t,
            Plan::NeedParent {
                hash: new[1].header.hash,
                number: new[1].header.number,
                segment: new[2..].to_vec(),
            }
        );
    }

    #[test]
    fn gap_is_refused() {
        let (engine, blocks) = engine_with(3, 3);
        let ahead = chain(&blocks.last().unwrap().header, 2, 0);
        let err = plan(&engine, &ahead[1..]).unwrap_err();
        assert!(
            matches!(err, EngineError::Gap { expected: 14, .. }),
            "{err}"
        );
    }

    #[test]
    fn reorg_below_finality_is_refused() {
        let (engine, blocks) = engine_with(8, 3);
        let fin = engine.window().finalized_number().unwrap();
        // Forking off the finalized block itself is fine; forking below it is not.
        let below = &blocks[(fin - 10) as usize - 1].header;
        let new = chain(below, 3, 1);
        let err = plan(&engine, &new).unwrap_err();
        assert!(
            matches!(err, EngineError::AlreadyFinalized { finalized, .. } if finalized == fin),
            "{err}"
        );
        let err = plan(&engine, &new[1..]).unwrap_err();
        assert!(
            matches!(err, EngineError::ReorgBeyondFinality { finalized, .. } if finalized == fin),
            "{err}"
        );
        let err = engine
            .plan(chain(&blocks[(fin - 10) as usize].header, 1, 1))
            .map(|t| matches!(t, Plan::Apply(Transition::Reorg { .. })));
        assert_eq!(err, Ok(true));
        // A block just above finality whose parent is unknown cannot be resolved.
        let mut orphan = chain(&blocks[(fin - 10) as usize].header, 1, 1);
        orphan[0].header.parent_hash = B256::repeat_byte(0x77);
        let err = plan(&engine, &orphan).unwrap_err();
        assert!(
            matches!(err, EngineError::ReorgBeyondFinality { finalized, .. } if finalized == fin),
            "{err}"
        );
    }

    #[test]
    fn anchor_block_cannot_be_replaced_before_finality() {
        let (engine, _) = engine_with(2, 10);
        let other = Block::empty(BlockHeader {
            hash: B256::repeat_byte(9),
            ..genesis()
        });
        assert!(matches!(
            engine.plan(vec![other]),
            Err(EngineError::ReorgBeyondFinality { .. })
        ));
    }

    #[test]
    fn discontinuous_segment_is_refused() {
        let (engine, blocks) = engine_with(2, 3);
        let mut seg = chain(&blocks.last().unwrap().header, 3, 0);
        seg.remove(1);
        assert!(matches!(
            plan(&engine, &seg),
            Err(EngineError::Discontinuous { .. })
        ));
        assert_eq!(engine.plan(vec![]), Err(EngineError::Empty));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let (engine, blocks) = engine_with(1, 3);
        let mut b = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
        deposit(&mut b, 1, 1, U256::from(1));
        deposit(&mut b, 1, 2, U256::from(1));
        assert!(matches!(
            plan(&engine, std::slice::from_ref(&b)),
            Err(EngineError::DuplicateLog { .. })
        ));
        b.events.truncate(1);
        b.events[0].asset = Address::repeat_byte(0xEE);
        assert!(
            matches!(engine.plan(vec![b]), Err(EngineError::UnknownAsset { asset, .. }) if asset == Address::repeat_byte(0xEE))
        );
    }

    #[test]
    fn build_folds_on_base_and_types_overflow_and_underflow() {
        let (engine, blocks) = engine_with(1, 3);
        let mut b = chain(&blocks.last().unwrap().header, 1, 0).remove(0);
        deposit(&mut b, 1, 1, U256::from(5));
        deposit(&mut b, 2, 1, U256::from(7));
        let key = BalanceKey {
            user: Address::repeat_byte(1),
            asset: ASSET,
        };
        let base = BaseState {
            balances: [(key, U256::from(100))].into_iter().collect(),
            prices: Default::default(),
        };
        let c = engine
            .build(transition(&engine, std::slice::from_ref(&b)), base, None)
            .unwrap();
        assert_eq!(c.blocks[0].balances, vec![(key, U256::from(112))]);

        let base = BaseState {
            balances: [(key, U256::MAX - U256::from(6))].into_iter().collect(),
            prices: Default::default(),
        };
        let err = engine
            .build(transition(&engine, std::slice::from_ref(&b)), base, None)
            .unwrap_err();
        assert!(
            matches!(err, EngineError::BalanceOverflow(ref f) if f.amount == U256::from(7) && f.log.log_index == 2),
            "{err}"
        );

        b.events[1].change = BalanceChange::Withdraw {
            user: key.user,
            amount: U256::from(6),
        };
        let err = engine
            .build(transition(&engine, &[b]), BaseState::default(), None)
            .unwrap_err();
        assert!(
            matches!(err, EngineError::BalanceUnderflow(ref f) if f.balance == U256::from(5)),
            "{err}"
        );
    }

    #[test]
    fn revert_to_a_shorter_chain_rolls_back_above_it_and_never_below_finality() {
        let (engine, blocks) = engine_with(6, 4);
        let head = blocks.last().unwrap().header.number;
        let fin = engine.window().finalized_number().unwrap();
        assert_eq!(engine.revert_to(head).unwrap(), None);
        assert_eq!(engine.revert_to(head + 3).unwrap(), None);
        let Some(Transition::Revert { old }) = engine.revert_to(head - 2).unwrap() else {
            panic!("expected a revert")
        };
        assert_eq!(
            old.iter().map(|h| h.number).collect::<Vec<_>>(),
            vec![head - 1, head]
        );
        let c = engine
            .build(Transition::Revert { old }, BaseState::default(), Some(head))
            .unwrap();
        assert_eq!((c.blocks.len(), c.finalize), (0, None));
        let mut e = engine.clone();
        e.commit(&c);
        assert_eq!(e.window().head().unwrap().number, head - 2);
        // Back to the finalized block is allowed, below it is not.
        assert!(engine.revert_to(fin).unwrap().is_some());
        assert!(matches!(
            engine.revert_to(fin - 1),
            Err(EngineError::ReorgBeyondFinality { .. })
        ));
    }

    #[test]
    fn tag_finality_is_capped_at_head_and_never_regresses() {
        let (mut engine, blocks) = engine_with(4, 100);
        let head = blocks.last().unwrap().header.number;
        let c = engine.finalize(head + 50).unwrap();
        assert_eq!(c.finalize_number(), Some(head));
        engine.commit(&c);
        assert_eq!(engine.finalize(head - 1), None);
        assert_eq!(engine.window().unconfirmed, vec![]);
    }
}
