//! Canonical WETH9 (`0xC02a…6Cc2` on Ethereum, the same source on most L2s): wrapping
//! ether emits `Deposit`, unwrapping `Withdrawal`, and neither emits a `Transfer`, so an
//! ERC-20 decoder alone debits wrapped ether it never credited.

use alloy_primitives::Log;
use alloy_sol_types::{SolEvent, sol};

use super::transfer;
use crate::model::BalanceChange;

sol! {
    /// WETH9: `dst` wrapped `wad` wei (credited).
    #[derive(Debug)]
    event Deposit(address indexed dst, uint wad);
    /// WETH9: `src` unwrapped `wad` wei (debited).
    #[derive(Debug)]
    event Withdrawal(address indexed src, uint wad);
}

/// The balance change of one WETH9 log: `Transfer` moves, `Deposit` credits `dst`,
/// `Withdrawal` debits `src`; `Approval` and anything else is `None`.
pub(super) fn change(log: &Log) -> Result<Option<BalanceChange>, String> {
    let topic0 = log.topics().first().copied();
    if topic0 == Some(Deposit::SIGNATURE_HASH) {
        let d = Deposit::decode_log(log).map_err(|e| format!("WETH9 Deposit: {e}"))?;
        Ok(Some(BalanceChange::Deposit {
            user: d.dst,
            amount: d.wad,
        }))
    } else if topic0 == Some(Withdrawal::SIGNATURE_HASH) {
        let w = Withdrawal::decode_log(log).map_err(|e| format!("WETH9 Withdrawal: {e}"))?;
        Ok(Some(BalanceChange::Withdraw {
            user: w.src,
            amount: w.wad,
        }))
    } else {
        transfer(log)
    }
}
