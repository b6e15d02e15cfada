use alloy_primitives::{I256, U256};
use rust_decimal::Decimal;

use super::{AssetId, BlockNumber, LogId};

/// An oracle answer: Chainlink's `int256`, scaled by `10^decimals` of its feed.
///
/// One type for the decoded update ([`PriceUpdate::answer`], any sign, as the aggregator
/// reported it) and the accepted price ([`Price::answer`], positive by
/// [`PriceUpdate::accept`]), so no conversion sits between the two.
pub type Answer = I256;

/// The largest number of feed decimals a price may have: `rust_decimal`'s maximum scale.
pub const MAX_PRICE_DECIMALS: u8 = 28;

/// A decoded oracle update (Chainlink `AnswerUpdated`-style) for one asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PriceUpdate {
    /// Where the update was emitted; unique within a block.
    pub log: LogId,
    /// The asset the feed prices.
    pub asset: AssetId,
    /// The raw answer, scaled by `10^decimals`. Must be positive to be used.
    pub answer: Answer,
    /// The feed's decimals (Chainlink USD feeds use 8).
    pub decimals: u8,
    /// The oracle round; must increase for an update to be used.
    pub round_id: U256,
    /// When the oracle computed the answer (seconds since the Unix epoch).
    pub updated_at: u64,
}

/// An accepted price, as stored and used for valuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Price {
    /// The priced asset.
    pub asset: AssetId,
    /// The raw answer, scaled by `10^decimals`; positive for every price
    /// [`PriceUpdate::accept`] produced.
    pub answer: Answer,
    /// The feed's decimals.
    pub decimals: u8,
    /// The oracle round.
    pub round_id: U256,
    /// When the oracle computed the answer (seconds since the Unix epoch).
    pub updated_at: u64,
    /// The block that carried the update.
    pub block: BlockNumber,
}

impl Price {
    /// The price as an exact decimal (`answer / 10^decimals`), or `None` if the answer does
    /// not fit the 96-bit `Decimal` mantissa or the scale exceeds [`MAX_PRICE_DECIMALS`].
    pub fn to_decimal(&self) -> Option<Decimal> {
        let mantissa = i128::try_from(self.answer).ok()?;
        Decimal::try_from_i128_with_scale(mantissa, u32::from(self.decimals)).ok()
    }
}

/// Why an oracle update was not used. Rejections are reported, never silently applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PriceRejection {
    /// The answer was zero or negative.
    #[error("non-positive answer {answer}")]
    NonPositive {
        /// The rejected answer.
        answer: Answer,
    },
    /// The round is not newer than the current one for the asset.
    #[error("round {round_id} is not newer than current round {current}")]
    OldRound {
        /// The rejected round.
        round_id: U256,
        /// The round already in effect.
        current: U256,
    },
    /// The feed has more decimals than a `Decimal` can represent.
    #[error("{decimals} decimals exceed the maximum of {MAX_PRICE_DECIMALS}")]
    TooManyDecimals {
        /// The feed's decimals.
        decimals: u8,
    },
    /// The answer does not fit the 96-bit `Decimal` mantissa.
    #[error("answer {answer} is too large to value")]
    TooLarge {
        /// The rejected answer.
        answer: Answer,
    },
}

impl PriceUpdate {
    /// Validates this update against the asset's current price (if any) and turns it into a
    /// [`Price`] carried by `block`.
    pub fn accept(
        &self,
        current: Option<&Price>,
        block: BlockNumber,
    ) -> Result<Price, PriceRejection> {
        if self.answer <= I256::ZERO {
            return Err(PriceRejection::NonPositive {
                answer: self.answer,
            });
        }
        if self.decimals > MAX_PRICE_DECIMALS {
            return Err(PriceRejection::TooManyDecimals {
                decimals: self.decimals,
            });
        }
        if let Some(current) = current
            && self.round_id <= current.round_id
        {
            return Err(PriceRejection::OldRound {
                round_id: self.round_id,
                current: current.round_id,
            });
        }
        let price = Price {
            asset: self.asset,
            answer: self.answer,
            decimals: self.decimals,
            round_id: self.round_id,
            updated_at: self.updated_at,
            block,
        };
        match price.to_decimal() {
            Some(_) => Ok(price),
            None => Err(PriceRejection::TooLarge {
                answer: self.answer,
            }),
        }
    }
}

/// The confirmed and pending price of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PriceView {
    /// Latest price from a finalized block.
    pub confirmed: Option<Price>,
    /// Latest price from any canonical block (equals `confirmed` when nothing is pending).
    pub pending: Option<Price>,
}
