//! Quarantine: what happens to one asset whose log cannot be applied, so that one asset
//! never stalls the rest (issue #19 item 1, design §6).
//!
//! An asset's [`FaultPolicy`] decides: [`FaultPolicy::Strict`] refuses the step (the
//! watcher retries it forever, today's behaviour); [`FaultPolicy::Quarantine`] (the
//! default) stops folding that asset at the faulting log and lets every other asset go on;
//! [`FaultPolicy::Reconcile`] quarantines it the same way, and the watcher then repairs it
//! from the chain (see [`fault_correction_log`](super::fault_correction_log) and
//! `docs/reconcile.md`).
//! The quarantine is block-scoped state: a reorg of the faulting block lifts it,
//! finalization confirms it, and a [`BalanceChange::Resume`](super::BalanceChange::Resume)
//! event (emitted by [`Watcher::resume`](crate::Watcher::resume)) ends it.

use std::fmt;

use alloy_primitives::{B256, U256, keccak256};

use super::{AssetId, BlockNumber, BlockRef, LogId, UserId};

/// What the engine does when a log of an asset cannot be applied (a debit larger than the
/// balance, a credit that overflows `U256`, a log its decoder rejected).
///
/// Match with a wildcard arm: more policies may come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FaultPolicy {
    /// The step is refused with a typed error (`EngineError::BalanceUnderflow` / `Overflow`)
    /// and retried: the whole watcher halts on it, every asset with it.
    Strict,
    /// The asset stops folding at the faulting log (its balances stay as they were before
    /// it); every other asset and user goes on. The default.
    #[default]
    Quarantine,
    /// The chain is the truth after a fault: the engine quarantines the asset as
    /// [`Quarantine`](Self::Quarantine) does, and the watcher then reads `balanceOf` at the
    /// faulting block for every holder of the asset (the store's holders, and every user
    /// the asset's logs named since the fault) through the source's
    /// [`ChainBalances`](crate::traits::ChainBalances), and writes the values as
    /// correction rows (`Reconciled { origin: Fault }`) at the end of that block: they end
    /// the quarantine there, and the asset folds again from the next block. While the read
    /// fails (a node down, a source without `ChainBalances`), the asset stays quarantined
    /// and the read is tried again at the next block the watcher applies.
    Reconcile,
}

impl FaultPolicy {
    /// The tag stored in the registry fingerprint and shown in docs: `strict`,
    /// `quarantine`, `reconcile`.
    pub fn tag(self) -> &'static str {
        match self {
            FaultPolicy::Strict => "strict",
            FaultPolicy::Quarantine => "quarantine",
            FaultPolicy::Reconcile => "reconcile",
        }
    }
}

/// Why an asset was quarantined.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// A debit larger than the balance.
    Underflow {
        /// The debited holder.
        user: UserId,
        /// The balance before the log.
        balance: U256,
        /// The debit.
        amount: U256,
    },
    /// A credit that does not fit a `U256`.
    Overflow {
        /// The credited holder.
        user: UserId,
        /// The balance before the log.
        balance: U256,
        /// The credit.
        amount: U256,
    },
    /// A log of the asset's contract that its decoder rejected (a
    /// [`BalanceChange::Undecodable`](super::BalanceChange::Undecodable) event; the block
    /// and log are the quarantine's).
    Undecodable {
        /// What the decoder said.
        detail: String,
    },
}

impl FaultReason {
    /// The stored code: 1 underflow, 2 overflow, 3 undecodable.
    pub fn code(&self) -> i16 {
        match self {
            FaultReason::Underflow { .. } => 1,
            FaultReason::Overflow { .. } => 2,
            FaultReason::Undecodable { .. } => 3,
        }
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::Underflow {
                user,
                balance,
                amount,
            } => write!(f, "debit {amount} of {user} exceeds its balance {balance}"),
            FaultReason::Overflow {
                user,
                balance,
                amount,
            } => write!(
                f,
                "credit {amount} of {user} overflows its balance {balance}"
            ),
            FaultReason::Undecodable { detail } => write!(f, "undecodable log: {detail}"),
        }
    }
}

/// An asset's quarantine: the block and log whose effect could not be applied, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quarantine {
    /// The quarantined asset.
    pub asset: AssetId,
    /// The block of the faulting log.
    pub block: BlockRef,
    /// The faulting log.
    pub log: LogId,
    /// Why it could not be applied.
    pub reason: FaultReason,
}

impl fmt::Display for Quarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asset {} quarantined at #{} (log {}): {}",
            self.asset, self.block.number, self.log, self.reason
        )
    }
}

/// An asset's fold state besides its balances and price (design §6; the chain identity of
/// #20 will key it by `(chain, asset)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum AssetState {
    /// Its events are folded.
    #[default]
    Active,
    /// Its events are skipped until a resume.
    Quarantined(Quarantine),
}

impl AssetState {
    /// The quarantine, if quarantined.
    pub fn quarantine(&self) -> Option<&Quarantine> {
        match self {
            AssetState::Active => None,
            AssetState::Quarantined(q) => Some(q),
        }
    }

    /// Whether the asset is quarantined.
    pub fn is_quarantined(&self) -> bool {
        matches!(self, AssetState::Quarantined(_))
    }
}

/// One asset's state on the confirmed side (finalized blocks) and the pending side (every
/// canonical block), as readers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AssetStateView {
    /// The asset.
    pub asset: AssetId,
    /// After the finalized tip.
    pub confirmed: AssetState,
    /// After the head.
    pub pending: AssetState,
}

/// The synthetic log of the `i`-th resume (of `asset`) emitted in block `number`: it cannot
/// collide with a real log (its index is `2^62 + i`; real indexes are small), so it sorts
/// after every real log of the block.
pub fn resume_log(asset: AssetId, number: BlockNumber, i: u64) -> LogId {
    let mut seed = Vec::with_capacity(64);
    seed.extend_from_slice(b"reorg-collateral/resume");
    seed.extend_from_slice(&number.to_be_bytes());
    seed.extend_from_slice(asset.as_slice());
    LogId {
        tx_hash: B256::from(keccak256(&seed)),
        log_index: RESUME_LOG_INDEX + i,
    }
}

/// The first log index of synthetic resume logs (`2^62 + 2^61`: above every real log
/// index and above the range of correction rows,
/// [`CORRECTION_LOG_INDEX`](super::CORRECTION_LOG_INDEX)`..` this).
pub const RESUME_LOG_INDEX: u64 = (1 << 62) + (1 << 61);

/// An operator's request, stored for the running watcher, to resume a quarantined asset
/// (`reorg-collateral quarantine resume`): the watcher takes it at its next sync and writes
/// the resume as [`Watcher::resume_at`](crate::Watcher::resume_at) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResumeRequest {
    /// The asset to resume.
    pub asset: AssetId,
    /// The lowest block that may carry the resume (`None`: the next block applied).
    pub at_block: Option<BlockNumber>,
}
