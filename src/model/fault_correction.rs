//! Fault corrections: the rows that repair an asset of
//! [`FaultPolicy::Reconcile`](super::FaultPolicy::Reconcile) from the chain. Unlike the
//! other correction rows (read at a block's parent, applied at its start), a fault
//! correction is `balanceOf` read at the block that carries it and applies at its end,
//! after every real log and resume of the block: the block's state is then the chain's.

use alloy_primitives::{Address, B256, U256, keccak256};

use super::{
    AssetId, BalanceChange, BalanceEvent, BlockNumber, CorrectionOrigin, LogId, RESUME_LOG_INDEX,
    UserId,
};

/// The first log index of fault corrections (`2^62 + 2^61 + 2^60`): above every real log
/// index, every correction row and every resume log, so a fault correction sorts last in its
/// block; it fits a `BIGINT`.
pub const FAULT_CORRECTION_LOG_INDEX: u64 = RESUME_LOG_INDEX + (1 << 60);

/// The synthetic log id of the `i`-th fault correction of block `number` (of `user`'s
/// balance of `token`): `tx_hash = keccak256("reorg-collateral/fault-correction" ‖ chain
/// (8 B BE) ‖ height (8 B BE) ‖ user ‖ token)`, `log_index = 2^62 + 2^61 + 2^60 + i`.
/// `chain` is the EIP-155 chain id (0 when the source has none).
pub fn fault_correction_log(
    chain: u64,
    number: BlockNumber,
    user: UserId,
    token: Address,
    i: u64,
) -> LogId {
    let mut seed = Vec::with_capacity(33 + 8 + 8 + 20 + 20);
    seed.extend_from_slice(b"reorg-collateral/fault-correction");
    seed.extend_from_slice(&chain.to_be_bytes());
    seed.extend_from_slice(&number.to_be_bytes());
    seed.extend_from_slice(user.as_slice());
    seed.extend_from_slice(token.as_slice());
    LogId {
        tx_hash: B256::from(keccak256(seed)),
        log_index: FAULT_CORRECTION_LOG_INDEX + i,
    }
}

/// The event of the `i`-th fault correction of block `number` on chain `chain`: `user`'s
/// balance of `asset` is `balance` after the block (`Reconciled { origin: Fault }`).
pub fn fault_correction(
    chain: u64,
    number: BlockNumber,
    asset: AssetId,
    user: UserId,
    balance: U256,
    i: u64,
) -> BalanceEvent {
    BalanceEvent {
        part: 0,
        log: fault_correction_log(chain, number, user, asset, i),
        asset,
        change: BalanceChange::Reconciled {
            user,
            balance,
            origin: CorrectionOrigin::Fault,
        },
    }
}

impl LogId {
    /// Whether this is the synthetic id of a fault correction (see
    /// [`fault_correction_log`]). Such a row is not [`is_correction`](Self::is_correction):
    /// it applies at the end of its block, not at its start.
    pub fn is_fault_correction(&self) -> bool {
        self.log_index >= FAULT_CORRECTION_LOG_INDEX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_corrections_sort_after_resumes_and_are_not_start_of_block_corrections() {
        let (u, t) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let a = fault_correction_log(1, 10, u, t, 0);
        let b = fault_correction_log(1, 10, u, t, 1);
        assert!(a.is_fault_correction() && b.is_fault_correction());
        assert!(!a.is_correction());
        assert_ne!(a, b);
        let resume = super::super::resume_log(t, 10, 5);
        assert!(resume.log_index < a.log_index && !resume.is_fault_correction());
        assert!(i64::try_from(b.log_index).is_ok(), "fits a BIGINT");
        let event = fault_correction(1, 10, t, u, U256::from(3), 0);
        assert_eq!(event.log, a);
        assert!(matches!(
            event.change,
            BalanceChange::Reconciled {
                origin: CorrectionOrigin::Fault,
                ..
            }
        ));
    }
}
