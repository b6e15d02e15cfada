//! The fault rule of the fold: a log of an asset that cannot be applied either fails the
//! step ([`FaultPolicy::Strict`]) or quarantines the asset ([`FaultPolicy::Quarantine`]).

use crate::error::{BalanceFault, EngineError, UndecodableFault};
use crate::model::{BalanceEvent, BlockRef, DecodeDetail, FaultPolicy, FaultReason, Quarantine};

/// What a fault of an asset with `policy` becomes: the step's error (strict), or the
/// asset's quarantine (any other policy).
pub(super) fn on_fault(
    policy: FaultPolicy,
    overflow: bool,
    fault: BalanceFault,
) -> Result<Quarantine, EngineError> {
    if policy == FaultPolicy::Strict {
        let fault = Box::new(fault);
        return Err(if overflow {
            EngineError::BalanceOverflow(fault)
        } else {
            EngineError::BalanceUnderflow(fault)
        });
    }
    let BalanceFault {
        block,
        log,
        user,
        asset,
        balance,
        amount,
    } = fault;
    let reason = if overflow {
        FaultReason::Overflow {
            user,
            balance,
            amount,
        }
    } else {
        FaultReason::Underflow {
            user,
            balance,
            amount,
        }
    };
    Ok(Quarantine {
        asset,
        block,
        log,
        reason,
    })
}

/// What an undecodable log (`event`, in block `block`) of an asset with `policy` becomes:
/// [`EngineError::Undecodable`] (strict), or the asset's quarantine at that log.
pub(super) fn on_undecodable(
    policy: FaultPolicy,
    block: BlockRef,
    event: &BalanceEvent,
    detail: DecodeDetail,
) -> Result<Quarantine, EngineError> {
    if policy == FaultPolicy::Strict {
        return Err(EngineError::Undecodable(Box::new(UndecodableFault {
            block,
            log: event.log,
            asset: event.asset,
            detail,
        })));
    }
    Ok(Quarantine {
        asset: event.asset,
        block,
        log: event.log,
        reason: FaultReason::Undecodable {
            detail: detail.to_string(),
        },
    })
}

#[cfg(test)]
#[path = "quarantine_tests.rs"]
mod tests;
