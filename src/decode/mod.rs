//! Decoding contract logs into balance events and oracle updates with alloy's `sol!` types
//! (never hand-parsed topics).
//!
//! A [`Decoders`] registry maps each tracked contract address to what it is: an ERC-20
//! token, canonical WETH9 ([`weth9`]), Tether's 2017 `TetherToken` ([`tether`]), a rebasing
//! token (Ampleforth's [`ufragments`], Lido's [`steth`]), an
//! ERC-4626 vault's shares ([`erc4626`]), a contract emitting the crate's own
//! `Deposit` / `Withdraw` / `BalanceSet` for an asset, a Chainlink-style price feed for an
//! asset (with its decimals), or a user-supplied [`LogDecoder`] (`docs/tokens.md` says
//! which kind well-known tokens are). Logs of other contracts, and events a contract emits
//! that we do not track (e.g. `Approval`, `NewRound`), decode to `None`; a tracked event
//! that does not decode (wrong topic count, short data) is a [`SourceError::Malformed`]
//! naming the block, transaction and log index, or, through
//! [`Decoders::decode_or_undecodable`] (what the RPC source calls), a
//! [`BalanceChange::Undecodable`] event of the contract's asset that quarantines it.
//!
//! The registry, the ERC-20, feed and own balance events are here; each token kind with
//! events of its own has a module; polled `latestRoundData` answers are checked in `round`.

pub mod erc4626;
mod round;
pub mod steth;
#[cfg(test)]
mod steth_tests;
#[cfg(test)]
mod tests;
pub mod tether;
#[cfg(test)]
mod token_kinds_tests;
pub mod ufragments;
#[cfg(test)]
mod ufragments_tests;
pub mod weth9;

pub use erc4626::ShareMints;
pub use round::{RoundRejection, round_data_update};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{Address, Log};
use alloy_sol_types::{SolEvent, sol};

use crate::error::SourceError;
use crate::model::{
    AssetId, BalanceChange, BalanceEvent, BlockRef, DecodeDetail, IndexFormula, LogId, PriceUpdate,
};

sol! {
    /// ERC-20 transfer.
    #[derive(Debug)]
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// The crate's own balance event: `user` credited ([`Contract::BalanceEvents`]; not
    /// ERC-4626's `Deposit`, see [`erc4626::Deposit`]).
    #[derive(Debug)]
    event Deposit(address indexed user, uint256 amount);
    /// The crate's own balance event: `user` debited ([`Contract::BalanceEvents`]; not
    /// ERC-4626's `Withdraw`, see [`erc4626::Withdraw`]).
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

/// What one log decodes to: usually one event, sometimes several (a batch transfer, a
/// multi-holder rebase), in the order they apply.
pub type DecodedLog = smallvec::SmallVec<[Decoded; 1]>;

/// Most balance events one log may decode to: a log row's ordinal is `part << 1 | effect`
/// in a `SMALLINT`.
pub const MAX_EVENTS_PER_LOG: usize = 1 << 14;

/// A user-supplied decoder for their own contract's events.
pub trait LogDecoder: Send + Sync + fmt::Debug {
    /// Decodes `log` (with its on-chain id) or returns `Ok(None)` for events to ignore;
    /// `Err` is a description of why a tracked event is malformed.
    fn decode(&self, log: &Log, id: LogId) -> Result<Option<Decoded>, String>;

    /// Several events from one log, appended to `out` in the order they apply; default:
    /// [`decode`](Self::decode). Each event keeps the log's id; the registry numbers their
    /// [`part`](BalanceEvent::part)s (at most [`MAX_EVENTS_PER_LOG`]).
    fn decode_all(&self, log: &Log, id: LogId, out: &mut DecodedLog) -> Result<(), String> {
        out.extend(self.decode(log, id)?);
        Ok(())
    }

    /// The asset whose balances this contract's logs move, if it is one: a log the decoder
    /// rejects then quarantines that asset ([`Decoders::decode_or_undecodable`]) instead of
    /// failing the block. Default `None`: a rejected log stays a
    /// [`SourceError::Malformed`] (the block cannot be read).
    fn asset(&self) -> Option<AssetId> {
        None
    }
}

/// What a tracked contract is (`docs/tokens.md`: which kind well-known tokens are).
#[derive(Clone, Debug)]
pub enum Contract {
    /// An ERC-20 token: its `Transfer` events move balances of `asset` (usually its own address).
    Token {
        /// The asset the token is.
        asset: AssetId,
    },
    /// Canonical WETH9: `Transfer`, plus `Deposit(dst, wad)` crediting `dst` and
    /// `Withdrawal(src, wad)` debiting `src` (see [`weth9`]).
    Weth9 {
        /// The asset the token is (its own address).
        asset: AssetId,
    },
    /// Tether's 2017 `TetherToken`: `Transfer`, plus `Issue` / `Redeem` crediting / debiting
    /// `owner` and `DestroyedBlackFunds` zeroing the blacklisted holder (see [`tether`]).
    Tether {
        /// The asset the token is (its own address).
        asset: AssetId,
        /// The token's owner, whom `Issue` credits and `Redeem` debits (the events do not
        /// name it; read it with [`tether::Ownable::ownerCall`]).
        owner: Address,
    },
    /// An ERC-4626 vault: balances of its shares, minted and burned as `mints` says (see
    /// [`erc4626`]).
    Erc4626 {
        /// The asset the shares are (the vault's own address).
        asset: AssetId,
        /// Where share mints and burns are read from.
        mints: ShareMints,
    },
    /// A contract emitting the crate's own [`Deposit`] / [`Withdraw`] / [`BalanceSet`] for
    /// `asset` (not ERC-4626's events: use [`Contract::Erc4626`] for a vault).
    BalanceEvents {
        /// The asset whose balances it reports.
        asset: AssetId,
    },
    /// The former name of [`Contract::BalanceEvents`], decoded the same way.
    #[deprecated(
        since = "0.1.0",
        note = "renamed `Contract::BalanceEvents`; an ERC-4626 vault is `Contract::Erc4626`"
    )]
    Vault {
        /// The asset whose balances it reports.
        asset: AssetId,
    },
    /// A rebasing token whose balances are shares × an index: with
    /// [`IndexFormula::DivByIndex`], UFragments (see [`ufragments`]): `Transfer` moves
    /// shares at the index in effect, a rebase sets the index; decoded with
    /// [`Decoders::decode_all`] (the initial mint is two events). With
    /// [`IndexFormula::SharesRatio`], Lido's stETH (see [`steth`]): `TransferShares` and
    /// `SharesBurnt` move shares as they are, `TokenRebased` sets the index, `Transfer` is
    /// ignored.
    Rebasing {
        /// The asset the token is (its own address).
        asset: AssetId,
        /// How a rebase becomes an index (UFragments: [`IndexFormula::DivByIndex`] with the
        /// token's `TOTAL_GONS`, [`ufragments::total_gons`]; stETH:
        /// [`IndexFormula::SharesRatio`]).
        formula: IndexFormula,
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

    /// Decodes one log of `block` into every event it carries (appended to `out`, their
    /// [`part`](BalanceEvent::part)s numbered `0, 1, …` in order): what a block source
    /// calls. More than [`MAX_EVENTS_PER_LOG`] balance events is
    /// [`SourceError::Malformed`]; on error `out` may hold some of the log's events.
    pub fn decode_all(
        &self,
        block: BlockRef,
        log: &Log,
        id: LogId,
        out: &mut DecodedLog,
    ) -> Result<(), SourceError> {
        let Some(contract) = self.contracts.get(&log.address) else {
            return Ok(());
        };
        let malformed = |reason: String| SourceError::Malformed {
            block,
            tx_hash: id.tx_hash,
            log_index: id.log_index,
            reason,
        };
        let start = out.len();
        match contract {
            Contract::Rebasing {
                asset,
                formula: IndexFormula::SharesRatio,
            } => steth::decode(log, id, *asset, out).map_err(malformed)?,
            Contract::Rebasing { asset, formula } => {
                ufragments::decode(log, id, *asset, *formula, out).map_err(malformed)?
            }
            Contract::Custom(decoder) => decoder.decode_all(log, id, out).map_err(malformed)?,
            _ => out.extend(self.decode(block, log, id)?),
        }
        let mut part = 0usize;
        for decoded in &mut out[start..] {
            if let Decoded::Balance(event) = decoded {
                event.part = u16::try_from(part)
                    .ok()
                    .filter(|_| part < MAX_EVENTS_PER_LOG)
                    .ok_or_else(|| {
                        malformed(format!(
                            "more than {MAX_EVENTS_PER_LOG} balance events in one log"
                        ))
                    })?;
                part += 1;
            }
        }
        Ok(())
    }

    /// Like [`decode_all`](Self::decode_all), but a log of a tracked asset that does not
    /// decode becomes one [`BalanceChange::Undecodable`] event of that asset (with the
    /// decoder's message; any event the log decoded before the error is dropped) instead of
    /// an error, so the engine decides by the asset's
    /// [`FaultPolicy`](crate::model::FaultPolicy): quarantine it, or refuse the block. What
    /// a block source calls.
    ///
    /// # Errors
    /// [`SourceError::Malformed`] for a rejected log of a contract that names no asset (a
    /// [`Contract::Custom`] whose [`LogDecoder::asset`] is `None`).
    pub fn decode_or_undecodable(
        &self,
        block: BlockRef,
        log: &Log,
        id: LogId,
        out: &mut DecodedLog,
    ) -> Result<(), SourceError> {
        let start = out.len();
        let error = match self.decode_all(block, log, id, out) {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let asset = self.contracts.get(&log.address).and_then(Self::asset_of);
        let (Some(asset), SourceError::Malformed { reason, .. }) = (asset, &error) else {
            return Err(error);
        };
        tracing::warn!(block = block.number, log = %id, %asset, %reason, "a log of a tracked asset does not decode");
        out.truncate(start);
        out.push(Decoded::Balance(BalanceEvent {
            part: 0,
            log: id,
            asset,
            change: BalanceChange::Undecodable {
                detail: DecodeDetail::new(reason),
            },
        }));
        Ok(())
    }

    /// The asset whose balances (or price) a contract's logs are about.
    fn asset_of(contract: &Contract) -> Option<AssetId> {
        #[allow(deprecated)] // `Vault` is decoded as `BalanceEvents` until it is removed.
        match contract {
            Contract::Token { asset }
            | Contract::Weth9 { asset }
            | Contract::Tether { asset, .. }
            | Contract::Erc4626 { asset, .. }
            | Contract::BalanceEvents { asset }
            | Contract::Vault { asset }
            | Contract::Rebasing { asset, .. }
            | Contract::Feed { asset, .. } => Some(*asset),
            Contract::Custom(decoder) => decoder.asset(),
        }
    }

    /// Decodes one log of `block` (transaction `tx_hash`, index `log_index` in the block)
    /// that carries at most one event; a log that decodes to several (see
    /// [`decode_all`](Self::decode_all)) is [`SourceError::Malformed`].
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
        #[allow(deprecated)] // `Vault` is decoded as `BalanceEvents` until it is removed.
        let (asset, change) = match contract {
            Contract::Token { asset } => (asset, transfer(log)),
            Contract::Weth9 { asset } => (asset, weth9::change(log)),
            Contract::Tether { asset, owner } => (asset, tether::change(log, *owner)),
            Contract::Erc4626 { asset, mints } => (asset, erc4626::change(log, *mints)),
            Contract::BalanceEvents { asset } | Contract::Vault { asset } => {
                (asset, balance_events(log))
            }
            Contract::Feed { asset, decimals } if topic0 == Some(AnswerUpdated::SIGNATURE_HASH) => {
                return Self::answer(log, id, *asset, *decimals).map_err(malformed);
            }
            Contract::Feed { .. } => return Ok(None),
            Contract::Custom(decoder) => return decoder.decode(log, id).map_err(malformed),
            Contract::Rebasing { .. } => {
                let mut out = DecodedLog::new();
                self.decode_all(block, log, id, &mut out)?;
                if out.len() > 1 {
                    return Err(malformed(format!(
                        "{} events in one log: use `Decoders::decode_all`",
                        out.len()
                    )));
                }
                return Ok(out.pop());
            }
        };
        Ok(change.map_err(malformed)?.map(|change| {
            Decoded::Balance(BalanceEvent {
                part: 0,
                log: id,
                asset: *asset,
                change,
            })
        }))
    }

    /// A feed's `AnswerUpdated` as a price update of `asset`.
    fn answer(
        log: &Log,
        id: LogId,
        asset: AssetId,
        decimals: u8,
    ) -> Result<Option<Decoded>, String> {
        let a = AnswerUpdated::decode_log(log).map_err(|e| format!("AnswerUpdated: {e}"))?;
        let updated_at = u64::try_from(a.updatedAt)
            .map_err(|_| format!("updatedAt {} out of range", a.updatedAt))?;
        Ok(Some(Decoded::Price(PriceUpdate {
            log: id,
            asset,
            answer: a.current,
            decimals,
            round_id: a.roundId,
            updated_at,
        })))
    }
}

/// An ERC-20 `Transfer` as a balance change; `None` for any other event (`Approval`, …).
fn transfer(log: &Log) -> Result<Option<BalanceChange>, String> {
    if log.topics().first() != Some(&Transfer::SIGNATURE_HASH) {
        return Ok(None);
    }
    let t = Transfer::decode_log(log).map_err(|e| format!("Transfer: {e}"))?;
    Ok(Some(BalanceChange::Transfer {
        from: t.from,
        to: t.to,
        amount: t.value,
    }))
}

/// The crate's own `Deposit` / `Withdraw` / `BalanceSet` as a balance change; `None` for
/// any other event.
fn balance_events(log: &Log) -> Result<Option<BalanceChange>, String> {
    let topic0 = log.topics().first().copied();
    if topic0 == Some(Deposit::SIGNATURE_HASH) {
        let d = Deposit::decode_log(log).map_err(|e| format!("Deposit: {e}"))?;
        Ok(Some(BalanceChange::Deposit {
            user: d.user,
            amount: d.amount,
        }))
    } else if topic0 == Some(Withdraw::SIGNATURE_HASH) {
        let w = Withdraw::decode_log(log).map_err(|e| format!("Withdraw: {e}"))?;
        Ok(Some(BalanceChange::Withdraw {
            user: w.user,
            amount: w.amount,
        }))
    } else if topic0 == Some(BalanceSet::SIGNATURE_HASH) {
        let s = BalanceSet::decode_log(log).map_err(|e| format!("BalanceSet: {e}"))?;
        Ok(Some(BalanceChange::Set {
            user: s.user,
            balance: s.balance,
        }))
    } else {
        Ok(None)
    }
}
