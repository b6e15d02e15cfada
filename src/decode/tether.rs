//! Tether's `TetherToken` as deployed on Ethereum in 2017 (`0xdAC1…1ec7`, Solidity 0.4.17).
//!
//! Besides `Transfer` (its transfer fee is a second `Transfer` to the owner, so fees need
//! nothing special), three functions change balances without a `Transfer`:
//! - `issue(amount)`: `balances[owner] += amount`, emits `Issue(amount)`;
//! - `redeem(amount)`: `balances[owner] -= amount`, emits `Redeem(amount)`;
//! - `destroyBlackFunds(user)`: `balances[user] = 0`, emits `DestroyedBlackFunds(user, balance)`.
//!
//! `Issue` and `Redeem` do not name the account, so the user names the owner
//! ([`Contract::Tether`](super::Contract::Tether)); read it with [`Ownable::ownerCall`]. The
//! 2017 `Ownable` changes its owner without an event: after an ownership change the
//! registry must name the new owner. The constructor's supply (credited to the deployer
//! without an event) is an opening balance, not something a decoder can see. Later Tether
//! deployments built on OpenZeppelin's ERC-20 emit `Transfer` from `_mint` and `_burn`
//! next to `Issue`/`Redeem`: they are [`Contract::Token`](super::Contract::Token), or every
//! issue would count twice. After `deprecate(upgraded)` (event `Deprecate`) the token
//! forwards transfers and `balanceOf` to the upgraded contract, whose events this kind does
//! not read: not handled yet (the design quarantines the asset on `Deprecate`; Ethereum's
//! USDT has never been deprecated).

use alloy_primitives::{Address, Log, U256};
use alloy_sol_types::{SolEvent, sol};

use super::transfer;
use crate::model::BalanceChange;

sol! {
    /// TetherToken: `amount` issued to the owner.
    #[derive(Debug)]
    event Issue(uint amount);
    /// TetherToken: `amount` redeemed from the owner.
    #[derive(Debug)]
    event Redeem(uint amount);
    /// TetherToken: a blacklisted user's whole balance destroyed.
    #[derive(Debug)]
    event DestroyedBlackFunds(address _blackListedUser, uint _balance);

    /// The owner read path of TetherToken's `Ownable`.
    interface Ownable {
        function owner() external view returns (address);
    }
}

/// The balance change of one TetherToken log, `owner` being the token's owner.
pub(super) fn change(log: &Log, owner: Address) -> Result<Option<BalanceChange>, String> {
    let topic0 = log.topics().first().copied();
    if topic0 == Some(Issue::SIGNATURE_HASH) {
        let i = Issue::decode_log(log).map_err(|e| format!("Tether Issue: {e}"))?;
        Ok(Some(BalanceChange::Deposit {
            user: owner,
            amount: i.amount,
        }))
    } else if topic0 == Some(Redeem::SIGNATURE_HASH) {
        let r = Redeem::decode_log(log).map_err(|e| format!("Tether Redeem: {e}"))?;
        Ok(Some(BalanceChange::Withdraw {
            user: owner,
            amount: r.amount,
        }))
    } else if topic0 == Some(DestroyedBlackFunds::SIGNATURE_HASH) {
        let d = DestroyedBlackFunds::decode_log(log).map_err(|e| {
            format!(
                "Tether DestroyedBlackFunds: {e} (the 2017 TetherToken does not index the user; \
                 a later deployment that does is a plain Token)"
            )
        })?;
        // The contract zeroes the balance (`balances[user] = 0`); `_balance` is what it held.
        Ok(Some(BalanceChange::Set {
            user: d._blackListedUser,
            balance: U256::ZERO,
        }))
    } else {
        transfer(log)
    }
}
