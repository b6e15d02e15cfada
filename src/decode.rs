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

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{Address, I256, Log, U256, aliases::U80};
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

#[cfg(test)]
mod tests {
    use alloy_primitives::{B256, Bytes, LogData};
    use alloy_sol_types::SolEvent;

    use super::*;

    const TOKEN: Address = Address::repeat_byte(0xA1);
    const VAULT: Address = Address::repeat_byte(0xB1);
    const FEED: Address = Address::repeat_byte(0xF1);

    fn decoders() -> Decoders {
        Decoders::new()
            .with(TOKEN, Contract::Token { asset: TOKEN })
            .with(VAULT, Contract::Vault { asset: TOKEN })
            .with(
                FEED,
                Contract::Feed {
                    asset: TOKEN,
                    decimals: 8,
                },
            )
    }

    fn block() -> BlockRef {
        BlockRef {
            number: 7,
            hash: B256::repeat_byte(7),
        }
    }

    fn id(i: u64) -> LogId {
        LogId {
            tx_hash: B256::repeat_byte(0xCC),
            log_index: i,
        }
    }

    fn log<E: SolEvent>(address: Address, event: &E) -> Log {
        Log {
            address,
            data: event.encode_log_data(),
        }
    }

    #[test]
    fn decodes_transfer_vault_events_and_answers() {
        let d = decoders();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let t = log(
            TOKEN,
            &Transfer {
                from: a,
                to: b,
                value: U256::from(5),
            },
        );
        assert_eq!(
            d.decode(block(), &t, id(0)).unwrap(),
            Some(Decoded::Balance(BalanceEvent {
                log: id(0),
                asset: TOKEN,
                change: BalanceChange::Transfer {
                    from: a,
                    to: b,
                    amount: U256::from(5)
                }
            }))
        );
        let w = log(
            VAULT,
            &Withdraw {
                user: a,
                amount: U256::from(3),
            },
        );
        assert!(matches!(
            d.decode(block(), &w, id(1)).unwrap(),
            Some(Decoded::Balance(BalanceEvent {
                change: BalanceChange::Withdraw { .. },
                ..
            }))
        ));
        let s = log(
            VAULT,
            &BalanceSet {
                user: a,
                balance: U256::from(9),
            },
        );
        assert!(matches!(
            d.decode(block(), &s, id(2)).unwrap(),
            Some(Decoded::Balance(BalanceEvent {
                change: BalanceChange::Set { .. },
                ..
            }))
        ));
        let p = log(
            FEED,
            &AnswerUpdated {
                current: I256::try_from(123_456_789i64).unwrap(),
                roundId: U256::from(42),
                updatedAt: U256::from(1_700_000_000u64),
            },
        );
        assert_eq!(
            d.decode(block(), &p, id(3)).unwrap(),
            Some(Decoded::Price(PriceUpdate {
                log: id(3),
                asset: TOKEN,
                answer: I256::try_from(123_456_789i64).unwrap(),
                decimals: 8,
                round_id: U256::from(42),
                updated_at: 1_700_000_000,
            }))
        );
    }

    #[test]
    fn ignores_untracked_contracts_and_events() {
        let d = decoders();
        let other = log(
            Address::repeat_byte(0xEE),
            &Transfer {
                from: Address::ZERO,
                to: Address::ZERO,
                value: U256::ZERO,
            },
        );
        assert_eq!(d.decode(block(), &other, id(0)).unwrap(), None);
        let round = log(
            FEED,
            &NewRound {
                roundId: U256::from(1),
                startedBy: Address::ZERO,
                startedAt: U256::ZERO,
            },
        );
        assert_eq!(d.decode(block(), &round, id(1)).unwrap(), None);
    }

    #[test]
    fn malformed_logs_name_block_tx_and_index() {
        let d = decoders();
        // A Transfer with a missing indexed topic and short data.
        let bad = Log {
            address: TOKEN,
            data: LogData::new_unchecked(
                vec![Transfer::SIGNATURE_HASH, B256::ZERO],
                Bytes::from(vec![1u8; 3]),
            ),
        };
        let err = d.decode(block(), &bad, id(9)).unwrap_err();
        assert!(
            matches!(err, SourceError::Malformed { log_index: 9, block: b, .. } if b == block()),
            "{err}"
        );
        assert!(err.to_string().contains("log 9"), "{err}");
    }

    #[test]
    fn round_data_outcomes() {
        let data = |answer: i64, round: u64, answered: u64, updated: u64| {
            AggregatorV3Interface::latestRoundDataReturn {
                roundId: U80::from(round),
                answer: I256::try_from(answer).unwrap(),
                startedAt: U256::ZERO,
                updatedAt: U256::from(updated),
                answeredInRound: U80::from(answered),
            }
        };
        let ok = round_data_update(id(0), TOKEN, 8, &data(5, 3, 3, 100), 150, 60).unwrap();
        assert_eq!((ok.round_id, ok.updated_at), (U256::from(3), 100));
        assert!(matches!(
            round_data_update(id(0), TOKEN, 8, &data(0, 3, 3, 100), 150, 60),
            Err(RoundRejection::NonPositive(_))
        ));
        assert!(matches!(
            round_data_update(id(0), TOKEN, 8, &data(5, 3, 2, 100), 150, 60),
            Err(RoundRejection::Carried { .. })
        ));
        assert_eq!(
            round_data_update(id(0), TOKEN, 8, &data(5, 3, 3, 100), 200, 60),
            Err(RoundRejection::Stale {
                age: 100,
                heartbeat: 60
            })
        );
    }
}
