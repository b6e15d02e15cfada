//! What a store belongs to: one chain and one asset registry.

use std::fmt;

use alloy_primitives::{B256, keccak256};

use super::AssetRegistry;

/// The identity a writer claims a store with
/// ([`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer)): the chain its blocks
/// come from and a fingerprint of the asset registry its balances and prices were folded
/// with. A store that recorded one identity refuses another: mixing two chains (whose block
/// hashes may coincide) or two registries in one store corrupts it silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreIdentity {
    /// The chain id (EIP-155), or `None` for a source that has none (a simulated chain).
    pub chain_id: Option<u64>,
    /// [`StoreIdentity::fingerprint`] of the asset registry.
    pub registry: B256,
}

impl StoreIdentity {
    /// The identity of a writer following chain `chain_id` with `assets`.
    pub fn new(chain_id: Option<u64>, assets: &AssetRegistry) -> Self {
        Self {
            chain_id,
            registry: Self::fingerprint(assets),
        }
    }

    /// keccak256 over the assets in address order, each as its 20-byte address, its
    /// decimals (1 byte) and its collateral factor in bps (2 bytes, big-endian), followed,
    /// for an asset whose price source is not its own, by the source's tag (1 byte) and the
    /// asset it names (20 bytes): what changes a fold or a valuation. Symbols are labels
    /// and do not count.
    pub fn fingerprint(assets: &AssetRegistry) -> B256 {
        let mut sorted: Vec<_> = assets.iter().collect();
        sorted.sort_by_key(|a| a.id);
        let mut bytes = Vec::with_capacity(sorted.len() * 23);
        for a in sorted {
            bytes.extend_from_slice(a.id.as_slice());
            bytes.push(a.decimals);
            bytes.extend_from_slice(&a.collateral_factor_bps.to_be_bytes());
            let source = assets.price_source(&a.id);
            if let Some(named) = source.target() {
                bytes.push(source.tag());
                bytes.extend_from_slice(named.as_slice());
            }
        }
        keccak256(bytes)
    }
}

impl fmt::Display for StoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.chain_id {
            Some(id) => write!(f, "chain id {id}")?,
            None => f.write_str("no chain id")?,
        }
        write!(f, ", asset registry {}", self.registry)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;
    use crate::model::Asset;

    #[test]
    fn fingerprint_depends_on_what_values_and_not_on_order_or_symbols() {
        let a = Asset::new(Address::repeat_byte(1), "A", 6, 9_000);
        let b = Asset::new(Address::repeat_byte(2), "B", 18, 8_000);
        let reg = |assets: Vec<Asset>| AssetRegistry::new(assets).unwrap();
        let base = StoreIdentity::fingerprint(&reg(vec![a.clone(), b.clone()]));
        assert_eq!(
            base,
            StoreIdentity::fingerprint(&reg(vec![b.clone(), a.clone()]))
        );
        let renamed = Asset::new(a.id, "A2", 6, 9_000);
        assert_eq!(
            base,
            StoreIdentity::fingerprint(&reg(vec![renamed, b.clone()]))
        );
        for changed in [
            Asset::new(a.id, "A", 8, 9_000),
            Asset::new(a.id, "A", 6, 9_001),
            Asset::new(Address::repeat_byte(3), "A", 6, 9_000),
        ] {
            assert_ne!(
                base,
                StoreIdentity::fingerprint(&reg(vec![changed, b.clone()]))
            );
        }
        let sourced = |s: crate::model::PriceSource| {
            let r = reg(vec![a.clone(), b.clone()]).with_price_source(b.id, s);
            StoreIdentity::fingerprint(&r.unwrap())
        };
        assert_eq!(base, sourced(crate::model::PriceSource::Own));
        let same = sourced(crate::model::PriceSource::SameAs(a.id));
        let derived = sourced(crate::model::PriceSource::Derived { underlying: a.id });
        assert!(same != base && derived != base && same != derived);
        assert_ne!(base, StoreIdentity::fingerprint(&reg(vec![a])));
        let id = StoreIdentity::new(Some(1), &reg(vec![b]));
        assert!(id.to_string().starts_with("chain id 1, asset registry 0x"));
    }
}
