//! Exchange rates read from the chain: an ERC-4626 vault's `convertToAssets` at one block.
//!
//! A rate is chain state without an event, so the block source reads it (by block hash)
//! and carries it in [`Block::rates`](super::Block::rates); the engine accepts it like an
//! oracle price and the store keeps it with its block (reverted and confirmed with it).

use alloy_primitives::U256;

use super::{AssetId, BlockNumber};

/// A vault's rate at one block: `convertToAssets(10^share_decimals)`, the underlying units
/// one whole share (`10^share_decimals` of its smallest units) is worth at that block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RateUpdate {
    /// The shares asset (the vault) the rate converts.
    pub asset: AssetId,
    /// Underlying units per whole share, as the vault answered.
    pub rate: U256,
    /// The block the rate was read at (the block that carries it).
    pub block: BlockNumber,
}

/// Why a rate was not used. Rejections are logged and reported, never applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RateRejection {
    /// The vault answered zero: its shares would be worth nothing, which a vault that
    /// holds assets never reports (a broken or paused vault, or a read of the wrong block).
    #[error("rate of {asset} at #{block} is zero")]
    Zero {
        /// The vault.
        asset: AssetId,
        /// The block it was read at.
        block: BlockNumber,
    },
}

impl RateUpdate {
    /// The rate as accepted in block `block`: any positive rate replaces the previous one
    /// (a later block's reading is newer by construction); zero is refused.
    pub fn accept(&self, block: BlockNumber) -> Result<RateUpdate, RateRejection> {
        if self.rate.is_zero() {
            return Err(RateRejection::Zero {
                asset: self.asset,
                block,
            });
        }
        Ok(RateUpdate { block, ..*self })
    }
}

/// The confirmed and pending rate of one vault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateView {
    /// Latest rate carried by a finalized block.
    pub confirmed: Option<RateUpdate>,
    /// Latest rate on the whole canonical chain (equals `confirmed` when no unconfirmed
    /// block carried one).
    pub pending: Option<RateUpdate>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    #[test]
    fn zero_is_refused_and_a_positive_rate_takes_the_carrying_block() {
        let asset = Address::repeat_byte(1);
        let r = RateUpdate {
            asset,
            rate: U256::from(7),
            block: 3,
        };
        assert_eq!(r.accept(5).unwrap().block, 5);
        let zero = RateUpdate {
            rate: U256::ZERO,
            ..r
        };
        assert_eq!(zero.accept(5), Err(RateRejection::Zero { asset, block: 5 }));
    }
}
