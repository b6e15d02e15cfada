//! Chain identity: which chain a block, a balance or a price belongs to.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::model::{BlockNumber, BlockRef, StateRef};

/// An EIP-155 chain id. A source without one (a simulated or scripted chain) is given one
/// by the user; [`ChainId::UNSPECIFIED`] (0) is what a store claimed with no chain id is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u64);

impl ChainId {
    /// The chain of a store claimed with no chain id (`StoreIdentity::chain_id == None`).
    pub const UNSPECIFIED: ChainId = ChainId(0);
    /// Ethereum mainnet.
    pub const ETHEREUM: ChainId = ChainId(1);

    /// The chain a store claimed with `chain_id` belongs to (`None`: [`Self::UNSPECIFIED`]).
    pub fn of(chain_id: Option<u64>) -> Self {
        Self(chain_id.unwrap_or(0))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain {}", self.0)
    }
}

impl From<u64> for ChainId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl FromStr for ChainId {
    type Err = std::num::ParseIntError;

    /// A decimal chain id (`"8453"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

/// A block of a named chain: what anything that crosses chains (stamps, watermarks,
/// notifications, errors above the engine) uses to name a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainBlock {
    /// The chain.
    pub chain: ChainId,
    /// The block's height on that chain.
    pub number: BlockNumber,
    /// The block's hash.
    pub hash: alloy_primitives::B256,
}

impl ChainBlock {
    /// `block` of `chain`.
    pub fn new(chain: ChainId, block: BlockRef) -> Self {
        Self {
            chain,
            number: block.number,
            hash: block.hash,
        }
    }

    /// The block without its chain.
    pub fn block(&self) -> BlockRef {
        BlockRef {
            number: self.number,
            hash: self.hash,
        }
    }
}

impl fmt::Display for ChainBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.chain, self.block())
    }
}

/// Per-chain stamps: the state (head and finalized height) of each chain a value reflects,
/// ascending by chain. A chain with nothing applied is absent.
pub type ChainHeads = BTreeMap<ChainId, StateRef>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_displays_and_orders() {
        assert_eq!("8453".parse::<ChainId>().unwrap(), ChainId(8453));
        assert!("0x1".parse::<ChainId>().is_err());
        assert_eq!(ChainId(10).to_string(), "chain 10");
        assert!(ChainId(1) < ChainId(10));
        assert_eq!(ChainId::of(None), ChainId::UNSPECIFIED);
        assert_eq!(ChainId::of(Some(1)), ChainId::ETHEREUM);
    }
}
