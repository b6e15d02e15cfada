use alloy_primitives::B256;

use super::{BlockHeader, BlockNumber, BlockRef};

/// One state of a store, as a value read from it names it: its head block and its
/// finalized height. The confirmed side of a collateral changes when the finalized height
/// moves, even when the head does not, so both name the state.
///
/// The store's state is a function of the two: the head's hash fixes the canonical chain,
/// the finalized height which of its blocks are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateRef {
    /// The head block.
    pub head: BlockRef,
    /// The finalized height, if any block is finalized.
    pub finalized: Option<BlockNumber>,
}

impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.finalized {
            Some(fin) => write!(f, "head {} finalized #{fin}", self.head),
            None => write!(f, "head {} nothing finalized", self.head),
        }
    }
}

/// The chain position the engine tracks and the store persists as its checkpoint:
/// the finalized block and the headers of the unconfirmed blocks above it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// The highest finalized block, if any.
    pub finalized: Option<BlockHeader>,
    /// Unconfirmed canonical headers, ascending and consecutive, all above `finalized`.
    pub unconfirmed: Vec<BlockHeader>,
}

impl Window {
    /// The latest applied block.
    pub fn head(&self) -> Option<&BlockHeader> {
        self.unconfirmed.last().or(self.finalized.as_ref())
    }

    /// The state this window names (its head and finalized height), if any block was
    /// applied.
    pub fn state(&self) -> Option<StateRef> {
        self.head().map(|h| StateRef {
            head: h.id(),
            finalized: self.finalized_number(),
        })
    }

    /// The finalized height, if any block is finalized.
    pub fn finalized_number(&self) -> Option<BlockNumber> {
        self.finalized.map(|h| h.number)
    }

    /// Whether nothing has been applied yet.
    pub fn is_empty(&self) -> bool {
        self.head().is_none()
    }

    /// The known block (finalized tip or unconfirmed) with this hash.
    pub fn find(&self, hash: &B256) -> Option<&BlockHeader> {
        self.unconfirmed
            .iter()
            .rev()
            .chain(self.finalized.iter())
            .find(|h| h.hash == *hash)
    }

    /// The known block at this height.
    pub fn at(&self, number: BlockNumber) -> Option<&BlockHeader> {
        self.unconfirmed
            .iter()
            .chain(self.finalized.iter())
            .find(|h| h.number == number)
    }

    /// The lowest height a reorg may replace: above the finalized block, or above the
    /// first block ever applied when nothing is finalized yet.
    pub fn floor(&self) -> Option<BlockNumber> {
        match (&self.finalized, self.unconfirmed.first()) {
            (Some(f), _) => Some(f.number),
            (None, Some(first)) => Some(first.number),
            (None, None) => None,
        }
    }
}
