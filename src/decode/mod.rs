//! Decoding contract logs into balance events and oracle updates with alloy's `sol!` types
//! (never hand-parsed topics).
//!
//! A [`Decoders`] registry maps each tracked contract address to what it is: an ERC-20
//! token, a vault emitting `Deposit` / `Withdraw` / `BalanceSet` for an asset, a
//! Chainlink-style price feed for an asset (with its decimals), or a user-supplied
//! [`LogDecoder`]. Logs of other contracts, and events a contract emits that we do not
//! track (e.g. `Approval`, `NewRound`), decode to `None`; a tracked event that does not
//! decode (wrong topic count, short data) is a [`SourceError::Malformed`] naming the block,
//! transaction and log index.
//!
//! The registry and the `sol!` declarations are here; polled `latestRoundData` answers are
//! checked in `round`.

mod round;
#[cfg(test)]
mod tests;

pub use round::{RoundRejection, round_data_update};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{Address, Log};
use alloy_sol_types::{SolEvent, sol};

use crate::error::SourceError;
use crate::model::{AssetId, BalanceChange, BalanceEvent, BlockRef, LogId, PriceUpdate};

sol! {
    /// ERC-20 transfer.
    #[derive(Debug)]
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// A vault credited `user`.
    #[derive(Debug)]
    event Deposit(address indexed user, uint256 amount);
    /// A vault debited `user`.
    #[derive(Debug)]
    event Withdraw(address indexed user, uint256 amount);
    /// A contract reports `user`'s absolute balance.
    #[derive(Debug)]
    event BalanceSet(address indexed user, uint256 balance);
    /// Chainlink aggregator: a new answer for round `roundId`.
    #[derive(Debug)]
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    /// Chainlink aggregator: a round started (carries no answer).
    #[derive(Debug)]
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    /// The Chainlink `AggregatorV3Interface` read path, for polling feeds.
    interface AggregatorV3Interface {
        function decimals() external view returns (uint8);
        function latestRoundData() external view returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    }
}

/// What a log decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A balance event.
    Balance(BalanceEvent),
    /// An oracle update.
    Price(PriceUpdate),
}

/// A user-supplied decoder for their own contract's events.
pub trait LogDecoder: Send + Sync + fmt::Debug {
    /// Decodes `log` (with its on-chain id) or returns `Ok(None)` for events to ignore;
    /// `Err` is a description of why a tracked event is malformed.
    fn decode(&self, log: &Log, id: LogId) -> Result<Option<Decoded>, String>;
}

/// What a tracked contract is.
#[derive(Clone, Debug)]
pub enum Contract {
    /// An ERC-20 token: its `Transfer` events move balances of `asset` (usually its own address).
    Token {
        /// The asset the token is.
        asset: AssetId,
    },
    /// A contract emitting `Deposit` / `Withdraw` / `BalanceSet` for `asset`.
    Vault {
        /// The asset whose balances it reports.
        asset: AssetId,
    },
    /// A Chainlink-style aggregator pricing `asset` with `decimals` feed decimals.
    Feed {
        /// The priced asset.
        asset: AssetId,
        /// The feed's decimals (8 for Chainlink USD feeds).
        decimals: u8,
    },
    /// Anything else, decoded by the user's decoder.
    Custom(Arc<dyn LogDecoder>),
}

/// Contract address → how to decode its logs.
#[derive(Clone, Debug, Default)]
pub struct Decoders {
    contracts: HashMap<Address, Contract>,
}

impl Decoders {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tracks `address` as `contract`.
    pub fn with(mut self, address: Address, contract: Contract) -> Self {
        self.contracts.insert(address, contract);
        self
    }

    /// The tracked addresses (for `eth_getLogs` filters).
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.contracts.keys()
    }

    /// The tracked contracts and what each is (e.g. to check feeds' decimals on chain).
    pub fn contracts(&self) -> impl Iterator<Item = (&Address, &Contract)> {
        self.contracts.iter()
    }

    /// Decodes one log of `block` (transaction `tx_hash`, index `log_index` in the block).
    pub fn decode(
        &self,
        block: BlockRef,
        log: &Log,
        id: LogId,
    ) -> Result<Option<Decoded>, SourceError> {
        let Some(contract) = self.contracts.get(&log.address) else {
            return Ok(None);
        };
        let malformed = |reason: String| SourceError::Malformed {
            block,
            tx_hash: id.tx_hash,
            log_index: id.log_index,
            reason,
        };
        let topic0 = log.topics().first().copied();
        let event = |asset, change| {
            Ok(Some(Decoded::Balance(BalanceEvent {
                log: id,
                asset,
                change,
            })))
        };
        match contract {
            Contract::Token { asset } if topic0 == Some(Transfer::SIGNATURE_HASH) => {
                let t =
                    Transfer::decode_log(log).map_err(|e| malformed(format!("Transfer: {e}")))?;
                event(
                    *asset,
                    BalanceChange::Transfer {
                        from: t.from,
                        to: t.to,
                        amount: t.value,
                    },
                )
            }
            Contract::Vault { asset } if topic0 == Some(Deposit::SIGNATURE_HASH) => {
                let d = Deposit::decode_log(log).map_err(|e| malformed(format!("Deposit: {e}")))?;
                event(
                    *asset,
                    BalanceChange::Deposit {
                        user: d.user,
                        amount: d.amount,
                    },
                )
            }
            Contract::Vault { asset } if topic0 == Some(Withdraw::SIGNATURE_HASH) => {
                let w =
                    Withdraw::decode_log(log).map_err(|e| malformed(format!("Withdraw: {e}")))?;
                event(
                    *asset,
                    BalanceChange::Withdraw {
                        user: w.user,
                        amount: w.amount,
                    },
                )
            }
            Contract::Vault { asset } if topic0 == Some(BalanceSet::SIGNATURE_HASH) => {
                let s = BalanceSet::decode_log(log)
                    .map_err(|e| malformed(format!("BalanceSet: {e}")))?;
                event(
                    *asset,
                    BalanceChange::Set {
                        user: s.user,
                        balance: s.balance,
                    },
                )
            }
            Contract::Feed { asset, decimals } if topic0 == Some(AnswerUpdated::SIGNATURE_HASH) => {
                let a = AnswerUpdated::decode_log(log)
                    .map_err(|e| malformed(format!("AnswerUpdated: {e}")))?;
                let updated_at = u64::try_from(a.updatedAt)
                    .map_err(|_| malformed(format!("updatedAt {} out of range", a.updatedAt)))?;
                Ok(Some(Decoded::Price(PriceUpdate {
                    log: id,
                    asset: *asset,
                    answer: a.current,
                    decimals: *decimals,
                    round_id: a.roundId,
                    updated_at,
                })))
            }
            Contract::Custom(decoder) => decoder.decode(log, id).map_err(malformed),
            _ => Ok(None),
        }
    }
}
