//! Ampleforth's `UFragments` (AMPL), a rebasing ERC-20: balances are gons, and
//! `balanceOf(who) = _gonBalances[who] / _gonsPerFragment`.
//!
//! - `transfer(to, value)` moves `value × _gonsPerFragment` gons and emits
//!   `Transfer(from, to, value)`;
//! - `rebase(epoch, supplyDelta)` sets `_gonsPerFragment = TOTAL_GONS / _totalSupply` and
//!   emits `LogRebase(epoch, _totalSupply)`: one event for every holder;
//! - `initialize(owner)` (the proxy's initializer; a constructor in forks deployed without a
//!   proxy) credits all `TOTAL_GONS` to the owner, sets
//!   `_gonsPerFragment = TOTAL_GONS / _totalSupply` and emits `Transfer(0, owner, _totalSupply)`;
//!   it is the token's only `Transfer` from the zero address.
//!
//! So [`Contract::Rebasing`](super::Contract::Rebasing) with
//! [`IndexFormula::DivByIndex`] decodes `LogRebase` to a
//! [`BalanceChange::Rebase`], a `Transfer` to a transfer (the fold moves it in gons), and the
//! initial mint to *two* events, the index `initialize` sets and the mint ([`LogDecoder::decode_all`](super::LogDecoder::decode_all)'s
//! several events per log). A watcher that starts after the deployment needs the index at
//! its start block (`TOTAL_GONS / totalSupply()` there): it writes the one its source's
//! [`ChainBalances::index_at`](crate::traits::ChainBalances::index_at) gives, which the RPC
//! source does not read yet.
//!
//! Known inexactness: the later UFragments' `transferAll(to)` moves *all* the sender's gons but emits the floored
//! fragment value; the fold moves `value × gonsPerFragment`, so the sender keeps a remainder
//! below one fragment (reads 0, as on chain) and the recipient may read one unit less than
//! `balanceOf` until reconciled.

use alloy_primitives::{Log, U256};
use alloy_sol_types::{SolEvent, sol};

use super::{Decoded, DecodedLog, Transfer, transfer};
use crate::model::{AssetId, BalanceChange, BalanceEvent, IndexFormula, LogId};

sol! {
    /// UFragments: the supply was rebased to `totalSupply` in `epoch`.
    #[derive(Debug)]
    event LogRebase(uint256 indexed epoch, uint256 totalSupply);
}

/// UFragments' `TOTAL_GONS` for an initial supply of `initial` fragments:
/// `MAX_UINT256 - (MAX_UINT256 % initial)` (AMPL: `initial = 50 × 10^6 × 10^9`).
pub fn total_gons(initial: U256) -> U256 {
    U256::MAX - U256::MAX % initial
}

/// The events of one UFragments log (`part`s numbered by the caller).
pub(super) fn decode(
    log: &Log,
    id: LogId,
    asset: AssetId,
    formula: IndexFormula,
    out: &mut DecodedLog,
) -> Result<(), String> {
    let event = |change| {
        Decoded::Balance(BalanceEvent {
            log: id,
            asset,
            change,
            part: 0,
        })
    };
    let rebase = |supply: U256| {
        formula
            .index(supply)
            .map(|index| event(BalanceChange::Rebase { index }))
            .ok_or_else(|| format!("a supply of {supply} makes no index"))
    };
    let topic0 = log.topics().first().copied();
    if topic0 == Some(LogRebase::SIGNATURE_HASH) {
        let r = LogRebase::decode_log(log).map_err(|e| format!("LogRebase: {e}"))?;
        out.push(rebase(r.totalSupply).map_err(|e| format!("LogRebase: {e}"))?);
        return Ok(());
    }
    let Some(change) = transfer(log)? else {
        return Ok(());
    };
    if let BalanceChange::Transfer { from, amount, .. } = change
        && from.is_zero()
        && topic0 == Some(Transfer::SIGNATURE_HASH)
    {
        // The initial mint: `initialize` also sets the first gonsPerFragment.
        out.push(rebase(amount).map_err(|e| format!("initial mint Transfer: {e}"))?);
    }
    out.push(event(change));
    Ok(())
}
