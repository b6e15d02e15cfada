use std::collections::BTreeSet;

use alloy_primitives::B256;

use crate::model::{AssetId, BalanceKey, Block, BlockHeader, BlockNumber};

/// What the state machine decided to do with delivered blocks; a reorg is a value, not a
/// special case (after reth's `ChainCommitted` / `ChainReorged`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Every block is already applied (same hashes): nothing to do.
    Noop,
    /// The first block's parent is unknown but above the finalized height: the driver must
    /// fetch it (by hash) and deliver it in front, walking back to the fork point.
    NeedParent {
        /// Hash of the missing parent.
        hash: B256,
        /// Its height.
        number: BlockNumber,
    },
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
}

impl Transition {
    /// The blocks to apply.
    pub fn new_blocks(&self) -> &[Block] {
        match self {
            Transition::Commit { new } | Transition::Reorg { new, .. } => new,
            Transition::Noop | Transition::NeedParent { .. } => &[],
        }
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
