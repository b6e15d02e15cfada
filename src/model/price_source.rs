//! Where an asset's price comes from: its own feed, another asset's feed (one feed
//! pricing several assets), or the underlying's price times a vault rate (ERC-4626).

use super::AssetId;

/// Where an asset's price comes from (set with
/// [`AssetRegistry::with_price_source`](super::AssetRegistry::with_price_source)).
///
/// The key a source names is an asset of the registry: the asset a
/// [`Contract::Feed`](crate::decode::Contract::Feed) writes its prices under. (When assets
/// carry their chain, a key names the chain too; nothing else here changes.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PriceSource {
    /// The prices stored under the asset itself: today's behaviour, the default.
    #[default]
    Own,
    /// The prices stored under another asset: one feed pricing several assets (an ETH/USD
    /// feed registered for WETH also pricing another ETH-like token). The named asset's own
    /// source must be [`PriceSource::Own`].
    SameAs(AssetId),
    /// ERC-4626 shares: `shares × rate / 10^share_decimals` underlying units (floor), valued
    /// at the underlying's price (its own source, `Own` or `SameAs`) with the underlying's
    /// decimals and this asset's collateral factor. The rate is the vault's
    /// [`RateUpdate`](super::RateUpdate), read from the chain; without one the asset is
    /// valued as [`PriceStatus::Missing`](super::PriceStatus::Missing).
    Derived {
        /// The vault's underlying asset (registered, not itself derived).
        underlying: AssetId,
    },
}

impl PriceSource {
    /// The asset this source names, if any.
    pub fn target(&self) -> Option<AssetId> {
        match self {
            PriceSource::Own => None,
            PriceSource::SameAs(a) | PriceSource::Derived { underlying: a } => Some(*a),
        }
    }

    /// One byte naming the variant, for the store's registry fingerprint.
    pub(crate) fn tag(&self) -> u8 {
        match self {
            PriceSource::Own => 0,
            PriceSource::SameAs(_) => 1,
            PriceSource::Derived { .. } => 2,
        }
    }
}

impl super::AssetRegistry {
    /// Sets where `asset`'s price comes from (see [`PriceSource`]); [`PriceSource::Own`]
    /// clears it. Refused, with the registry unchanged, when `asset` or the named asset is
    /// not registered ([`AssetError::UnknownPriceSource`](super::AssetError::UnknownPriceSource))
    /// or the sources would nest ([`AssetError::NestedPriceSource`](super::AssetError::NestedPriceSource)):
    /// a `SameAs` target prices itself, a `Derived` underlying is `Own` or `SameAs`, and an
    /// asset other sources name keeps its own price.
    pub fn with_price_source(
        mut self,
        asset: AssetId,
        source: PriceSource,
    ) -> Result<Self, super::AssetError> {
        use super::AssetError;
        for id in [Some(asset), source.target()].into_iter().flatten() {
            if !self.contains(&id) {
                return Err(AssetError::UnknownPriceSource { asset, named: id });
            }
        }
        let previous = match source {
            PriceSource::Own => self.sources.remove(&asset),
            other => self.sources.insert(asset, other),
        };
        let nested = self.sources.iter().find_map(|(a, s)| {
            let named = s.target()?;
            let ok = match s {
                PriceSource::SameAs(_) => !self.sources.contains_key(&named),
                _ => !self.is_derived(&named),
            };
            (!ok).then_some((*a, named))
        });
        if let Some((a, named)) = nested {
            match previous {
                Some(p) => self.sources.insert(asset, p),
                None => self.sources.remove(&asset),
            };
            return Err(AssetError::NestedPriceSource { asset: a, named });
        }
        Ok(self)
    }

    /// Where `asset`'s price comes from ([`PriceSource::Own`] unless set).
    pub fn price_source(&self, asset: &AssetId) -> PriceSource {
        self.sources.get(asset).copied().unwrap_or_default()
    }

    /// The asset whose stored prices value `asset`: itself, its `SameAs` target, or its
    /// underlying's price key.
    pub fn price_key(&self, asset: &AssetId) -> AssetId {
        match self.price_source(asset) {
            PriceSource::Own => *asset,
            PriceSource::SameAs(key) => key,
            PriceSource::Derived { underlying } => match self.price_source(&underlying) {
                PriceSource::SameAs(key) => key,
                _ => underlying,
            },
        }
    }

    /// Whether `asset` is valued through a vault rate ([`PriceSource::Derived`]).
    pub fn is_derived(&self, asset: &AssetId) -> bool {
        matches!(self.price_source(asset), PriceSource::Derived { .. })
    }

    /// Every asset whose value a new price or rate stored under `key` changes: `key`
    /// itself and the assets priced from it, ascending.
    pub fn dependents(&self, key: &AssetId) -> Vec<AssetId> {
        let mut out: Vec<AssetId> = self
            .sources
            .keys()
            .filter(|a| self.price_key(a) == *key)
            .copied()
            .chain(std::iter::once(*key))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;
    use crate::model::{Asset, AssetError, AssetRegistry};

    fn reg() -> AssetRegistry {
        let a = |b: u8| Asset::new(Address::repeat_byte(b), format!("A{b}"), 18, 10_000);
        AssetRegistry::new([a(1), a(2), a(3), a(4)]).unwrap()
    }

    #[test]
    fn keys_and_dependents_follow_the_sources() {
        let [weth, eth_like, vault, other] = [1u8, 2, 3, 4].map(Address::repeat_byte);
        let r = reg()
            .with_price_source(eth_like, PriceSource::SameAs(weth))
            .unwrap()
            .with_price_source(
                vault,
                PriceSource::Derived {
                    underlying: eth_like,
                },
            )
            .unwrap();
        assert_eq!(r.price_key(&eth_like), weth);
        assert_eq!(r.price_key(&vault), weth);
        assert_eq!(r.price_key(&other), other);
        assert!(r.is_derived(&vault) && !r.is_derived(&eth_like));
        assert_eq!(r.dependents(&weth), vec![weth, eth_like, vault]);
        assert_eq!(r.dependents(&vault), vec![vault]);
    }

    #[test]
    fn unknown_and_nested_sources_are_refused_and_change_nothing() {
        let [a, b, c] = [1u8, 2, 3].map(Address::repeat_byte);
        let unknown = Address::repeat_byte(9);
        assert_eq!(
            reg()
                .with_price_source(a, PriceSource::SameAs(unknown))
                .unwrap_err(),
            AssetError::UnknownPriceSource {
                asset: a,
                named: unknown
            }
        );
        let r = reg().with_price_source(b, PriceSource::SameAs(a)).unwrap();
        let e = r
            .clone()
            .with_price_source(c, PriceSource::SameAs(b))
            .unwrap_err();
        assert!(matches!(e, AssetError::NestedPriceSource { .. }), "{e}");
        let r2 = reg()
            .with_price_source(c, PriceSource::Derived { underlying: a })
            .unwrap();
        let e = r2
            .with_price_source(b, PriceSource::Derived { underlying: c })
            .unwrap_err();
        assert!(matches!(e, AssetError::NestedPriceSource { .. }), "{e}");
        assert_eq!(r.price_source(&c), PriceSource::Own);
    }
}
