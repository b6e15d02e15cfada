//! Polled Chainlink answers: a `latestRoundData` result checked (positive, not carried
//! over, within the heartbeat) and turned into a [`PriceUpdate`].

use alloy_primitives::{I256, U256, aliases::U80};

use super::AggregatorV3Interface;
use crate::model::{AssetId, LogId, PriceUpdate};

/// Why a `latestRoundData` answer is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoundRejection {
    /// The answer is zero or negative.
    #[error("non-positive answer {0}")]
    NonPositive(I256),
    /// The answer was carried over from an older round (`answeredInRound < roundId`).
    #[error("answer of round {answered_in} reported for round {round}")]
    Carried {
        /// The round asked for.
        round: U80,
        /// The round that produced the answer.
        answered_in: U80,
    },
    /// `updatedAt` is older than the heartbeat allows at `now`.
    #[error("updated {age} s ago, heartbeat {heartbeat} s")]
    Stale {
        /// Seconds since the update.
        age: u64,
        /// The allowed age.
        heartbeat: u64,
    },
}

/// Turns a polled `latestRoundData` answer into a [`PriceUpdate`], rejecting non-positive
/// answers, carried-over rounds and answers older than `heartbeat` seconds at `now`.
pub fn round_data_update(
    log: LogId,
    asset: AssetId,
    decimals: u8,
    data: &AggregatorV3Interface::latestRoundDataReturn,
    now: u64,
    heartbeat: u64,
) -> Result<PriceUpdate, RoundRejection> {
    if data.answer <= I256::ZERO {
        return Err(RoundRejection::NonPositive(data.answer));
    }
    if data.answeredInRound < data.roundId {
        return Err(RoundRejection::Carried {
            round: data.roundId,
            answered_in: data.answeredInRound,
        });
    }
    let updated_at = u64::try_from(data.updatedAt).unwrap_or(u64::MAX);
    let age = now.saturating_sub(updated_at);
    if age > heartbeat {
        return Err(RoundRejection::Stale { age, heartbeat });
    }
    Ok(PriceUpdate {
        log,
        asset,
        answer: data.answer,
        decimals,
        round_id: U256::from(data.roundId),
        updated_at,
    })
}
