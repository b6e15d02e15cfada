//! ERC-4626 vault shares (EIP-4626): the vault is an ERC-20 of its shares, and `deposit` /
//! `mint` emit `Deposit(sender, owner, assets, shares)`, `withdraw` / `redeem` emit
//! `Withdraw(sender, receiver, owner, assets, shares)`.
//!
//! EIP-20 asks a token to emit `Transfer` from the zero address when it creates tokens, and
//! OpenZeppelin's and solmate's vaults do (`_mint` / `_burn` inside deposit and withdraw):
//! there the share `Transfer`s alone are the balance, and decoding `Deposit` too would count
//! every mint twice. [`ShareMints`] says which of the two a vault's mints are read from.
//! These are not the crate's own [`Deposit`](super::Deposit) / [`Withdraw`](super::Withdraw)
//! events (`Contract::BalanceEvents`): the signatures differ.

use alloy_primitives::Log;
use alloy_sol_types::{SolEvent, sol};

use super::transfer;
use crate::model::BalanceChange;

sol! {
    /// ERC-4626: `sender` deposited `assets`, `owner` received `shares`.
    #[derive(Debug)]
    event Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares);
    /// ERC-4626: `owner`'s `shares` were burned, `receiver` got `assets`, at `sender`'s call.
    #[derive(Debug)]
    event Withdraw(address indexed sender, address indexed receiver, address indexed owner, uint256 assets, uint256 shares);
}

/// Where an ERC-4626 vault's share mints and burns are read from: exactly one of its share
/// `Transfer`s with the zero address and its `Deposit` / `Withdraw` events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ShareMints {
    /// The vault emits `Transfer(0, owner, shares)` / `Transfer(owner, 0, shares)` with each
    /// deposit and withdrawal (OpenZeppelin, solmate, any EIP-20-compliant vault): every share
    /// `Transfer` moves balances, mints and burns included; `Deposit` / `Withdraw` are not
    /// decoded. Shares minted outside a deposit (fees) are counted too.
    #[default]
    Transfers,
    /// The vault emits no `Transfer` for mints and burns: `Deposit` credits `owner` with
    /// `shares`, `Withdraw` debits `owner` by `shares`, and a share `Transfer` from or to the
    /// zero address is ignored (only holder-to-holder transfers move shares).
    Events,
}

/// The balance change of one vault log under `mints`.
pub(super) fn change(log: &Log, mints: ShareMints) -> Result<Option<BalanceChange>, String> {
    let topic0 = log.topics().first().copied();
    match mints {
        ShareMints::Transfers => transfer(log),
        ShareMints::Events if topic0 == Some(Deposit::SIGNATURE_HASH) => {
            let d = Deposit::decode_log(log).map_err(|e| format!("ERC-4626 Deposit: {e}"))?;
            Ok(Some(BalanceChange::Deposit {
                user: d.owner,
                amount: d.shares,
            }))
        }
        ShareMints::Events if topic0 == Some(Withdraw::SIGNATURE_HASH) => {
            let w = Withdraw::decode_log(log).map_err(|e| format!("ERC-4626 Withdraw: {e}"))?;
            Ok(Some(BalanceChange::Withdraw {
                user: w.owner,
                amount: w.shares,
            }))
        }
        ShareMints::Events => Ok(transfer(log)?.filter(|c| {
            !matches!(c, BalanceChange::Transfer { from, to, .. } if from.is_zero() || to.is_zero())
        })),
    }
}
