use std::collections::BTreeSet;

use crate::model::{AssetId, BalanceKey, Block, BlockHeader, BlockNumber};

/// A change of the canonical chain the engine tracks; a reorg is a value, not a special
/// case (after reth's `ChainCommitted` / `ChainReorged` / `ChainReverted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The blocks extend the head.
    Commit {
        /// Blocks to apply, ascending.
        new: Vec<Block>,
    },
    /// The blocks replace the unconfirmed blocks above their fork point.
    Reorg {
        /// Blocks rolled back, ascending.
        old: Vec<BlockHeader>,
        /// Blocks applied in their place, ascending.
        new: Vec<Block>,
    },
    /// The source's canonical chain ends below our head: the blocks above its head are
    /// rolled back and nothing replaces them (yet).
    Revert {
        /// Blocks rolled back, ascending.
        old: Vec<BlockHeader>,
    },
}

impl Transition {
    /// The blocks to apply.
    pub fn new_blocks(&self) -> &[Block] {
        match self {
            Transition::Commit { new } | Transition::Reorg { new, .. } => new,
            Transition::Revert { .. } => &[],
        }
    }

    /// The blocks to apply, to add correction rows to before [`build`](crate::Engine::build)
    /// (the watcher's opening balances and drift corrections; `build` does not check the
    /// blocks again, so an added row must keep them valid: corrections first).
    pub fn new_blocks_mut(&mut self) -> &mut [Block] {
        match self {
            Transition::Commit { new } | Transition::Reorg { new, .. } => new,
            Transition::Revert { .. } => &mut [],
        }
    }

    /// The blocks rolled back.
    pub fn old_blocks(&self) -> &[BlockHeader] {
        match self {
            Transition::Reorg { old, .. } | Transition::Revert { old } => old,
            Transition::Commit { .. } => &[],
        }
    }

    /// Whether the transition only extends the head (no block is rolled back).
    pub fn extends_head(&self) -> bool {
        matches!(self, Transition::Commit { .. })
    }

    /// The height whose state the new blocks build on (their first block's parent).
    pub fn base(&self) -> Option<BlockNumber> {
        self.new_blocks()
            .first()
            .map(|b| b.header.number.saturating_sub(1))
    }

    /// Balances the new blocks touch: the base balances to read before [`build`](crate::Engine::build).
    pub fn keys(&self) -> Vec<BalanceKey> {
        let mut keys: Vec<BalanceKey> = self
            .new_blocks()
            .iter()
            .flat_map(|b| b.events.iter().flat_map(|e| e.effects().map(|(k, _)| k)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Assets the new blocks' balance events name: the base indexes to read before `build`
    /// (an asset without one is not rebasing).
    pub fn event_assets(&self) -> Vec<AssetId> {
        let set: BTreeSet<AssetId> = self
            .new_blocks()
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.asset))
            .collect();
        set.into_iter().collect()
    }

    /// Assets the new blocks carry prices for: the base prices to read before `build`.
    pub fn price_assets(&self) -> Vec<AssetId> {
        let set: BTreeSet<AssetId> = self
            .new_blocks()
            .iter()
            .flat_map(|b| b.prices.iter().map(|p| p.asset))
            .collect();
        set.into_iter().collect()
    }
}
