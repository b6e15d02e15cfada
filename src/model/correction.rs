//! Correction rows: an absolute balance read from the chain (`balanceOf` at a block's
//! parent), applied at the start of that block. Openings, drift corrections and the
//! balances a resumed asset starts from are all this one row (log kind 3).

use std::fmt;

use alloy_primitives::{Address, B256, I256, U256, keccak256};

use super::{AssetId, BalanceChange, BalanceEvent, BlockNumber, BlockRef, LogId, UserId};

/// Why a correction row was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CorrectionOrigin {
    /// An opening balance: the first time the watcher sees a (user, asset) it has no
    /// balance for, read at the parent of the block that touches it (or given by the
    /// operator for the start block).
    Opening,
    /// A drift the [`Reconciler`](crate::watcher::Reconciler) found on an asset whose
    /// chain is the truth.
    Drift,
    /// A balance read when a quarantined asset resumes.
    Resume,
    /// A balance read at the block where an asset of
    /// [`FaultPolicy::Reconcile`](super::FaultPolicy::Reconcile) is quarantined, written at
    /// the end of that block with a [`fault_correction_log`](super::fault_correction_log)
    /// id: the first of the block ends the asset's quarantine.
    Fault,
}

impl CorrectionOrigin {
    /// A stable one-byte tag (hashed into the synthetic log id).
    pub fn tag(self) -> u8 {
        match self {
            CorrectionOrigin::Opening => 0,
            CorrectionOrigin::Drift => 1,
            CorrectionOrigin::Resume => 2,
            CorrectionOrigin::Fault => 3,
        }
    }
}

impl fmt::Display for CorrectionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorrectionOrigin::Opening => "opening",
            CorrectionOrigin::Drift => "drift",
            CorrectionOrigin::Resume => "resume",
            CorrectionOrigin::Fault => "fault",
        })
    }
}

/// The first log index of correction rows: `2^62 + i` for the `i`-th correction of a
/// block. Real log indexes are small, so the two never collide; it fits a `BIGINT`.
pub const CORRECTION_LOG_INDEX: u64 = 1 << 62;

impl LogId {
    /// Whether this is the synthetic id of a correction row (see [`Correction::log_id`]).
    pub fn is_correction(&self) -> bool {
        (CORRECTION_LOG_INDEX..super::RESUME_LOG_INDEX).contains(&self.log_index)
    }
}

/// "`user`'s balance of `asset` was `balance` after block `read_at`": a `balanceOf` read at
/// `read_at`'s hash, to be applied at the start of the child of `read_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Correction {
    /// The asset.
    pub asset: AssetId,
    /// The holder.
    pub user: UserId,
    /// The balance the chain reported.
    pub balance: U256,
    /// Why it is written.
    pub origin: CorrectionOrigin,
    /// The block the balance was read at: the parent of the block that carries the row.
    pub read_at: BlockRef,
}

impl Correction {
    /// The synthetic log id of the `i`-th correction of a block:
    /// `tx_hash = keccak256("reorg-collateral/correction" ‖ chain (8 B BE) ‖ parent height
    /// (8 B BE) ‖ user ‖ token)`, `log_index = 2^62 + i`. `chain` is the EIP-155 chain id
    /// (0 when the source has none).
    pub fn log_id(chain: u64, parent: BlockNumber, user: UserId, token: Address, i: u64) -> LogId {
        let mut seed = Vec::with_capacity(27 + 8 + 8 + 20 + 20);
        seed.extend_from_slice(b"reorg-collateral/correction");
        seed.extend_from_slice(&chain.to_be_bytes());
        seed.extend_from_slice(&parent.to_be_bytes());
        seed.extend_from_slice(user.as_slice());
        seed.extend_from_slice(token.as_slice());
        LogId {
            tx_hash: B256::from(keccak256(seed)),
            log_index: CORRECTION_LOG_INDEX + i,
        }
    }

    /// The event row of this correction, the `i`-th of its block, on chain `chain`.
    pub fn event(&self, chain: u64, i: u64) -> BalanceEvent {
        BalanceEvent {
            part: 0,
            log: Self::log_id(chain, self.read_at.number, self.user, self.asset, i),
            asset: self.asset,
            change: BalanceChange::Reconciled {
                user: self.user,
                balance: self.balance,
                origin: self.origin,
            },
        }
    }
}

/// `chain − ours` as a signed amount, saturating at `I256`'s bounds (only a balance above
/// 2^255 can reach them).
pub fn difference(ours: U256, chain: U256) -> I256 {
    if chain >= ours {
        I256::try_from(chain - ours).unwrap_or(I256::MAX)
    } else {
        I256::try_from(ours - chain).map_or(I256::MIN, |d| -d)
    }
}

/// Moves the corrections of `events` to the front (they apply before the block's own
/// events), keeping the order within each part.
pub fn corrections_first(events: &mut [BalanceEvent]) {
    events.sort_by_key(|e| !e.log.is_correction());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_ids_are_corrections_and_distinct() {
        let (u, t) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let a = Correction::log_id(1, 10, u, t, 0);
        let b = Correction::log_id(1, 10, u, t, 1);
        let c = Correction::log_id(2, 10, u, t, 0);
        assert!(a.is_correction() && b.is_correction());
        assert_ne!(a, b);
        assert_ne!(a.tx_hash, c.tx_hash);
        assert!(
            !LogId {
                tx_hash: a.tx_hash,
                log_index: 7
            }
            .is_correction()
        );
    }

    #[test]
    fn difference_is_signed() {
        assert_eq!(
            difference(U256::from(5), U256::from(7)),
            I256::try_from(2).unwrap()
        );
        assert_eq!(
            difference(U256::from(7), U256::from(5)),
            I256::try_from(-2).unwrap()
        );
        assert_eq!(difference(U256::ZERO, U256::MAX), I256::MAX);
    }
}
