//! Lido's stETH (Lido V2, mainnet `0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84`), a
//! rebasing token held as shares: `balanceOf(u) = shares[u] × totalPooledEther ÷
//! totalShares` (floor, `getPooledEthByShares`).
//!
//! Its events, as Lido publishes them: the ABI npm `@lido-sdk/contracts` 3.0.5 ships
//! (`dist/cjs/generated/factories/StethAbi__factory.js`, TypeChain, no Solidity) and the
//! source of `contracts/0.4.24/StETH.sol` and `Lido.sol` in GitHub `lidofinance/core`
//! (what emits which event, below):
//!
//! - `TransferShares(address indexed from, address indexed to, uint256 sharesValue)`, emitted
//!   after every `Transfer` (`_emitTransferEvents`): a transfer, a `transferShares`, a mint
//!   (`from = 0`: `submit`, the fees minted to the treasury and the staking modules at an
//!   oracle report, the initial holder's bootstrap) moves exactly these shares;
//! - `Transfer(address indexed from, address indexed to, uint256 value)`: `value` is the
//!   share count converted and floored, so it is **ignored** (counting both would move the
//!   balance twice);
//! - `SharesBurnt(address indexed account, uint256 preRebaseTokenAmount, uint256
//!   postRebaseTokenAmount, uint256 sharesAmount)`: `_burnShares` debits `account` by
//!   `sharesAmount` and emits no `Transfer` / `TransferShares`, so it decodes to a share move
//!   to the zero address;
//! - `TokenRebased(uint256 indexed reportTimestamp, uint256 timeElapsed, uint256
//!   preTotalShares, uint256 preTotalEther, uint256 postTotalShares, uint256 postTotalEther,
//!   uint256 sharesMintedAsFees)`, the last event of an oracle report's
//!   `handleOracleReport`: the index is `postTotalEther ÷ postTotalShares` from then on
//!   ([`AssetIndex::shares_ratio`]); every holder's balance changes with it;
//! - `Submitted(address indexed sender, uint256 amount, address referral)`, `ETHDistributed`,
//!   `Approval` and the rest: ignored (the shares `submit` mints come with their
//!   `TransferShares`).
//!
//! So [`Contract::Rebasing`](super::Contract::Rebasing) with
//! [`IndexFormula::SharesRatio`](crate::model::IndexFormula::SharesRatio) keeps every
//! holder's shares exactly (they are `sharesOf`), and the index is exact at every
//! `TokenRebased`: the balance read is `balanceOf` from a report until the chain's ratio
//! moves without one. What moves it (not modeled; each is undone by the next
//! `TokenRebased`, which carries the exact totals, as the shares never drift):
//!
//! - between reports, a `submit` adds `amount` ether and `floor(amount × totalShares ÷
//!   totalPooledEther)` shares: the ratio stays but for that floor, which raises the chain's
//!   ratio by less than one share's worth per submit, so a read may be below `balanceOf` by
//!   up to about one wei per submit since the report;
//! - ether that changes `totalPooledEther` outside a report: `unsafeChangeDepositedValidators`
//!   (`DepositedValidatorsChanged`, a DAO action) moves the transient balance. The ether of a
//!   report (`ETHDistributed`, `ELRewardsReceived`, `WithdrawalsReceived`) is in its
//!   `TokenRebased`, and `Unbuffered` (a deposit to the beacon chain) changes no total.
//!
//! Where it cannot start:
//!
//! - Lido V1 blocks (before the V2 upgrade of May 2023) have no `TokenRebased` (a V1 report
//!   is the legacy oracle's `PostTotalShares`), and the first V1 blocks have no
//!   `TransferShares` either (added with `transferShares`, LIP-11);
//! - before the first `TokenRebased` it sees, the asset has no index and shares read 1:1:
//!   right from a fresh deployment (the initial holder's bootstrap mints one share per wei),
//!   wrong by the ratio for a watcher that starts later. A watcher that starts later
//!   writes the opening index a source's
//!   [`ChainBalances::index_at`](crate::traits::ChainBalances::index_at) gives
//!   (`getTotalPooledEther()` over `getTotalShares()`), but the RPC source reads none yet,
//!   nor `sharesOf`, nor any `balanceOf` of a `Rebasing` asset
//!   ([`ChainBalances::reads`](crate::traits::ChainBalances::reads) is false: no lazy
//!   openings, no fault reads): over RPC, a stETH watcher must start at the token's
//!   deployment block (see `docs/tokens.md`).
//!
//! The log rows of a share move carry the shares; the Postgres store's
//! [`LogReader::history_at`](crate::traits::LogReader::history_at), which converts every
//! row of a rebasing asset as a token amount, is wrong for stETH for now.
//!
//! A `Reconciled` row of the asset (a `balanceOf` reading another source supplies) is
//! converted to shares with the index in effect, `floor(balance × totalShares ÷
//! totalPooledEther)`, which may be a share below `sharesOf`.

use alloy_primitives::{Log, U256};
use alloy_sol_types::{SolEvent, sol};

use super::{Decoded, DecodedLog};
use crate::model::{AssetId, AssetIndex, BalanceChange, BalanceEvent, LogId};

sol! {
    /// stETH: `sharesValue` shares moved from `from` to `to` (zero `from`: a mint), in pair
    /// with an ERC-20 `Transfer`.
    #[derive(Debug)]
    event TransferShares(address indexed from, address indexed to, uint256 sharesValue);
    /// stETH: `sharesAmount` of `account`'s shares burnt (no `Transfer` goes with it).
    #[derive(Debug)]
    event SharesBurnt(
        address indexed account,
        uint256 preRebaseTokenAmount,
        uint256 postRebaseTokenAmount,
        uint256 sharesAmount
    );
    /// Lido: an oracle report rebased the token; `postTotalEther ÷ postTotalShares` is the
    /// new ratio.
    #[derive(Debug)]
    event TokenRebased(
        uint256 indexed reportTimestamp,
        uint256 timeElapsed,
        uint256 preTotalShares,
        uint256 preTotalEther,
        uint256 postTotalShares,
        uint256 postTotalEther,
        uint256 sharesMintedAsFees
    );
}

/// The event of one stETH log, if it moves shares or sets the index.
pub(super) fn decode(
    log: &Log,
    id: LogId,
    asset: AssetId,
    out: &mut DecodedLog,
) -> Result<(), String> {
    let change = match log.topics().first().copied() {
        Some(TransferShares::SIGNATURE_HASH) => {
            let t = TransferShares::decode_log(log).map_err(|e| format!("TransferShares: {e}"))?;
            BalanceChange::TransferShares {
                from: t.from,
                to: t.to,
                shares: t.sharesValue,
            }
        }
        Some(SharesBurnt::SIGNATURE_HASH) => {
            let b = SharesBurnt::decode_log(log).map_err(|e| format!("SharesBurnt: {e}"))?;
            BalanceChange::TransferShares {
                from: b.account,
                to: alloy_primitives::Address::ZERO,
                shares: b.sharesAmount,
            }
        }
        Some(TokenRebased::SIGNATURE_HASH) => {
            let r = TokenRebased::decode_log(log).map_err(|e| format!("TokenRebased: {e}"))?;
            let index = index(r.postTotalEther, r.postTotalShares)?;
            BalanceChange::Rebase { index }
        }
        _ => return Ok(()),
    };
    out.push(Decoded::Balance(BalanceEvent {
        log: id,
        asset,
        change,
        part: 0,
    }));
    Ok(())
}

/// The index of a report's totals; an error naming them if either is zero.
fn index(total_ether: U256, total_shares: U256) -> Result<AssetIndex, String> {
    AssetIndex::shares_ratio(total_ether, total_shares).ok_or_else(|| {
        format!(
            "TokenRebased: postTotalEther {total_ether} over postTotalShares {total_shares} makes no index"
        )
    })
}
