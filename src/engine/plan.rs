use alloy_primitives::B256;

use super::Transition;
use crate::model::{Block, BlockNumber};

/// What [`Engine::plan`](super::Engine::plan) decided for delivered blocks: apply a
/// [`Transition`], fetch a missing parent first, or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every block is already applied (same hashes): nothing to do.
    UpToDate,
    /// The first block's parent is unknown but above the finalized height: the driver must
    /// fetch it (by hash), put it in front of `segment` and plan again, walking back to the
    /// fork point.
    NeedParent {
        /// Hash of the missing parent.
        hash: B256,
        /// Its height.
        number: BlockNumber,
        /// The delivered blocks, handed back unchanged.
        segment: Vec<Block>,
    },
    /// Apply this transition (the blocks already applied at the segment's front are dropped).
    Apply(Transition),
}
