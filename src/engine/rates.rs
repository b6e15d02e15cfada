//! The engine's rate rule: a block's vault rates are checked against the registry (only
//! assets priced through a rate, one rate per asset) and accepted when positive; a later
//! block's rate replaces an earlier one, so no base state is read for them.

use crate::error::EngineError;
use crate::model::{AssetRegistry, Block, RateUpdate};

/// Refuses a block whose rates name an asset not priced
/// [`PriceSource::Derived`](crate::model::PriceSource::Derived), or one asset twice.
pub(super) fn check(assets: &AssetRegistry, block: &Block) -> Result<(), EngineError> {
    let mut seen = Vec::with_capacity(block.rates.len());
    for rate in &block.rates {
        let reason = if !assets.contains(&rate.asset) {
            Some("unknown asset")
        } else if !assets.is_derived(&rate.asset) {
            Some("the asset is not priced through a vault rate")
        } else if seen.contains(&rate.asset) {
            Some("two rates for one asset in one block")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(EngineError::BadRate {
                block: block.id(),
                asset: rate.asset,
                reason,
            });
        }
        seen.push(rate.asset);
    }
    Ok(())
}

/// The block's accepted rates, ordered by asset; rejected ones are logged and dropped.
pub(super) fn accept(block: &Block) -> Vec<RateUpdate> {
    let number = block.header.number;
    let mut accepted: Vec<RateUpdate> = block
        .rates
        .iter()
        .filter_map(|r| match r.accept(number) {
            Ok(rate) => Some(rate),
            Err(why) => {
                tracing::warn!(block = number, asset = %r.asset, %why, "vault rate rejected");
                None
            }
        })
        .collect();
    accepted.sort_unstable_by_key(|r| r.asset);
    accepted
}
