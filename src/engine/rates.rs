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

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256, U256};

    use super::*;
    use crate::engine::{BaseState, Engine, EngineConfig, Plan};
    use crate::model::{Asset, BlockHeader, PriceSource, Window};

    const TOKEN: Address = Address::repeat_byte(1);
    const VAULT: Address = Address::repeat_byte(2);

    fn engine() -> Engine {
        let assets = AssetRegistry::new([
            Asset::new(TOKEN, "T", 6, 10_000),
            Asset::new(VAULT, "vT", 6, 10_000),
        ])
        .and_then(|r| r.with_price_source(VAULT, PriceSource::Derived { underlying: TOKEN }))
        .unwrap();
        Engine::new(EngineConfig::new(assets, 2), Window::default())
    }

    fn block(rates: &[(Address, u64)]) -> Block {
        let header = BlockHeader {
            number: 7,
            hash: B256::repeat_byte(7),
            parent_hash: B256::repeat_byte(6),
            timestamp: 84,
        };
        let mut b = Block::empty(header);
        b.rates = rates
            .iter()
            .map(|(asset, rate)| RateUpdate {
                asset: *asset,
                rate: U256::from(*rate),
                block: 0,
            })
            .collect();
        b
    }

    #[test]
    fn rates_of_non_derived_assets_or_twice_are_refused_and_zero_is_dropped() {
        let e = engine();
        for bad in [
            vec![(TOKEN, 5)],
            vec![(VAULT, 5), (VAULT, 6)],
            vec![(Address::ZERO, 1)],
        ] {
            assert!(
                matches!(e.plan(vec![block(&bad)]), Err(EngineError::BadRate { .. })),
                "{bad:?}"
            );
        }
        for (rate, kept) in [(0u64, None), (9, Some(9u64))] {
            let Plan::Apply(t) = e.plan(vec![block(&[(VAULT, rate)])]).unwrap() else {
                panic!("a first block applies");
            };
            let changes = e.build(t, BaseState::default(), None).unwrap();
            let got: Vec<_> = changes.blocks[0]
                .rates
                .iter()
                .map(|r| (r.rate, r.block))
                .collect();
            assert_eq!(
                got,
                kept.map(|r| (U256::from(r), 7))
                    .into_iter()
                    .collect::<Vec<_>>()
            );
        }
    }
}
