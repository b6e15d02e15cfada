use std::fmt;

use alloy_primitives::{Address, B256, U256};

use super::AssetIndex;

/// A user account (an Ethereum address).
pub type UserId = Address;
/// An asset, identified by its token contract address.
pub type AssetId = Address;

/// Identifies one log on chain: the transaction hash and the log's index in its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId {
    /// Hash of the transaction that emitted the log.
    pub tx_hash: B256,
    /// Index of the log within its block.
    pub log_index: u64,
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx_hash, self.log_index)
    }
}

/// One balance: a user's holding of one asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BalanceKey {
    /// The holder.
    pub user: UserId,
    /// The asset held.
    pub asset: AssetId,
}

impl std::hash::Hash for BalanceKey {
    /// Hashes all 40 bytes as five words: cheaper than a byte-slice hash on the ingest path,
    /// with the same equality.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (u, a) = (self.user.as_slice(), self.asset.as_slice());
        let word = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        state.write_u64(word(&u[0..8]));
        state.write_u64(word(&u[8..16]));
        state.write_u64(
            u64::from(u32::from_le_bytes([u[16], u[17], u[18], u[19]])) << 32
                | u64::from(u32::from_le_bytes([a[16], a[17], a[18], a[19]])),
        );
        state.write_u64(word(&a[0..8]));
        state.write_u64(word(&a[8..16]));
    }
}

/// What a balance event does, as decoded from a contract log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BalanceChange {
    /// ERC-20 `Transfer(from, to, value)`: debit `from`, credit `to`.
    /// The zero address on either side is a mint or a burn and is not tracked.
    Transfer {
        /// Sender (zero address for a mint).
        from: Address,
        /// Recipient (zero address for a burn).
        to: Address,
        /// Amount in the token's smallest unit.
        amount: U256,
    },
    /// A move of shares of a rebasing asset whose events name shares (Lido stETH's
    /// `TransferShares(from, to, sharesValue)`, and `SharesBurnt` as a move to the zero
    /// address; see [`crate::decode::steth`]): debit `from`, credit `to`, by `shares` as
    /// they are (not converted with the asset's index, unlike a `Transfer`). The zero
    /// address on either side is a mint or a burn and is not tracked. The log rows it
    /// writes carry the shares.
    TransferShares {
        /// Sender (zero address for a mint).
        from: Address,
        /// Recipient (zero address for a burn).
        to: Address,
        /// Shares moved.
        shares: U256,
    },
    /// A custom deposit event: credit `user`.
    Deposit {
        /// The credited user.
        user: UserId,
        /// Amount in the token's smallest unit.
        amount: U256,
    },
    /// A custom withdraw event: debit `user`.
    Withdraw {
        /// The debited user.
        user: UserId,
        /// Amount in the token's smallest unit.
        amount: U256,
    },
    /// An absolute "new balance" event: `user`'s balance is now `balance`.
    Set {
        /// The user whose balance is reported.
        user: UserId,
        /// The new balance in the token's smallest unit.
        balance: U256,
    },
    /// A rebasing token's supply changed: the asset's index is now `index` (every holder's
    /// balance changes with it, none is written; see [`AssetIndex`]).
    Rebase {
        /// The asset's new index.
        index: AssetIndex,
    },
    /// A correction row: an absolute balance read from the chain (`balanceOf`) at the
    /// parent of the block that carries it, applied before the block's own events
    /// (log kind 3; see [`Correction`](super::Correction)).
    Reconciled {
        /// The user whose balance was read.
        user: UserId,
        /// The balance the chain reported.
        balance: U256,
        /// Why the row was written.
        origin: super::CorrectionOrigin,
    },
    /// Not a contract's event: ends the event's asset's quarantine at the end of the block
    /// that carries it (emitted by [`Watcher::resume`](crate::Watcher::resume) with a
    /// synthetic [`resume_log`](super::resume_log)). No balance changes.
    Resume,
    /// Not a decoded event: a log of the event's asset's contract that its decoder rejected
    /// (wrong topic count, short data, a custom decoder's error). Under
    /// [`FaultPolicy::Quarantine`](super::FaultPolicy::Quarantine) it quarantines the asset
    /// at this log ([`FaultReason::Undecodable`](super::FaultReason::Undecodable)); under
    /// [`FaultPolicy::Strict`](super::FaultPolicy::Strict) the engine refuses the block
    /// (`EngineError::Undecodable`). No balance changes.
    Undecodable {
        /// What the decoder said.
        detail: super::DecodeDetail,
    },
}

/// A decoded balance event from a tracked contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BalanceEvent {
    /// Where the event was emitted; unique within a block.
    pub log: LogId,
    /// The asset whose balances change.
    pub asset: AssetId,
    /// What changes.
    pub change: BalanceChange,
    /// Which of the events decoded from one log this is (`0` for the first; a decoder that
    /// emits several events per log numbers them, see
    /// [`LogDecoder::decode_all`](crate::decode::LogDecoder::decode_all)). Events of one
    /// block are unique and ascend by `(log.log_index, part)`.
    pub part: u16,
}

/// The effect of an event on one balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Add to the balance.
    Credit(U256),
    /// Subtract from the balance.
    Debit(U256),
    /// Replace the balance.
    Set(U256),
    /// Replace the balance with a value read from the chain (a correction row, log kind 3):
    /// applies like [`Set`](Self::Set), told apart from a contract's own absolute report.
    Reconcile(U256),
}

impl Effect {
    /// Applies this effect to `balance`; `None` if the result does not fit a `U256`
    /// (overflow on credit, underflow on debit).
    pub fn apply(self, balance: U256) -> Option<U256> {
        match self {
            Effect::Credit(amount) => balance.checked_add(amount),
            Effect::Debit(amount) => balance.checked_sub(amount),
            Effect::Set(value) | Effect::Reconcile(value) => Some(value),
        }
    }
}

impl BalanceEvent {
    /// The log row ordinal of this event's `effect`-th effect: `part << 1 | effect`.
    pub fn ordinal(&self, effect: usize) -> u16 {
        (self.part << 1) | (effect as u16 & 1)
    }

    /// The per-balance effects of this event, in the order they apply
    /// (a transfer debits the sender before crediting the recipient).
    pub fn effects(&self) -> impl Iterator<Item = (BalanceKey, Effect)> + use<> {
        let asset = self.asset;
        let key = move |user| BalanceKey { user, asset };
        let pair = match self.change {
            BalanceChange::Transfer { from, to, amount }
            | BalanceChange::TransferShares {
                from,
                to,
                shares: amount,
            } => [
                (!from.is_zero()).then(|| (key(from), Effect::Debit(amount))),
                (!to.is_zero()).then(|| (key(to), Effect::Credit(amount))),
            ],
            BalanceChange::Deposit { user, amount } => {
                [Some((key(user), Effect::Credit(amount))), None]
            }
            BalanceChange::Withdraw { user, amount } => {
                [Some((key(user), Effect::Debit(amount))), None]
            }
            BalanceChange::Set { user, balance } => [Some((key(user), Effect::Set(balance))), None],
            BalanceChange::Rebase { .. } => [None, None],
            BalanceChange::Reconciled { user, balance, .. } => {
                [Some((key(user), Effect::Reconcile(balance))), None]
            }
            BalanceChange::Resume | BalanceChange::Undecodable { .. } => [None, None],
        };
        pair.into_iter().flatten()
    }
}
