use std::fmt;

use alloy_primitives::B256;

use super::{BalanceEvent, PriceUpdate, RateUpdate};

/// A block height.
pub type BlockNumber = u64;

/// The header fields the engine needs to follow a chain and detect reorgs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// Height of the block.
    pub number: BlockNumber,
    /// Hash of the block.
    pub hash: B256,
    /// Hash of the parent block; a mismatch with our head means a reorg.
    pub parent_hash: B256,
    /// Block timestamp in seconds since the Unix epoch; the engine's notion of "now".
    pub timestamp: u64,
}

impl BlockHeader {
    /// The `(number, hash)` pair identifying this block, for messages.
    pub fn id(&self) -> BlockRef {
        BlockRef {
            number: self.number,
            hash: self.hash,
        }
    }
}

/// A `(number, hash)` pair that names one block in errors and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Height of the block.
    pub number: BlockNumber,
    /// Hash of the block.
    pub hash: B256,
}

impl fmt::Display for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} ({})", self.number, self.hash)
    }
}

/// A block with the decoded events the engine cares about, as a [`BlockSource`] yields it.
///
/// [`BlockSource`]: crate::BlockSource
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block header.
    pub header: BlockHeader,
    /// Balance events of tracked tokens, in log order.
    pub events: Vec<BalanceEvent>,
    /// Oracle price updates of tracked feeds, in log order.
    pub prices: Vec<PriceUpdate>,
    /// Vault rates read at this block (at most one per asset), for assets priced
    /// [`PriceSource::Derived`](super::PriceSource::Derived).
    pub rates: Vec<RateUpdate>,
}

impl Block {
    /// A block with no events.
    pub fn empty(header: BlockHeader) -> Self {
        Self {
            header,
            events: Vec::new(),
            prices: Vec::new(),
            rates: Vec::new(),
        }
    }

    /// The `(number, hash)` of this block.
    pub fn id(&self) -> BlockRef {
        self.header.id()
    }
}

/// Which block (or range) a lookup asked for, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockId {
    /// By height.
    Number(BlockNumber),
    /// By hash.
    Hash(alloy_primitives::B256),
    /// A range of heights.
    Range {
        /// First height.
        from: BlockNumber,
        /// Last height.
        to: BlockNumber,
    },
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockId::Number(n) => write!(f, "#{n}"),
            BlockId::Hash(h) => write!(f, "{h}"),
            BlockId::Range { from, to } => write!(f, "#{from}..=#{to}"),
        }
    }
}
