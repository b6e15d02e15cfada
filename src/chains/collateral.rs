//! [`MultiCollateral`]: one user's collateral over several chains, with its per-(chain,
//! asset) breakdown and its lines by symbol.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{ChainHeads, ChainId, ChainsError};
use crate::model::{AssetId, AssetValuation, Collateral, UserId};

/// One (chain, asset) line of a [`MultiCollateral`]: the asset's valuation on each side of
/// that chain's collateral (`None` on a side where its balance is zero).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainAsset {
    /// The chain.
    pub chain: ChainId,
    /// The asset (its token address on that chain).
    pub asset: AssetId,
    /// The asset's symbol in that chain's registry (what [`MultiCollateral::by_symbol`]
    /// groups by).
    pub symbol: String,
    /// Its confirmed valuation (that chain's confirmed balance × its confirmed price).
    pub confirmed: Option<AssetValuation>,
    /// Its pending valuation (that chain's pending balance × its pending price).
    pub pending: Option<AssetValuation>,
}

/// The lines of one symbol over every chain (see [`MultiCollateral::by_symbol`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SymbolTotal {
    /// Σ confirmed values of the symbol's lines (each with its own factor and decimals).
    pub confirmed: Decimal,
    /// Σ pending values of the symbol's lines.
    pub pending: Decimal,
    /// The (chain, asset) lines under the symbol, ascending.
    pub assets: Vec<(ChainId, AssetId)>,
    /// Whether every line of the symbol was valued with a fresh price on both sides.
    pub complete: bool,
}

/// A user's collateral summed over every chain, read from one state of every chain.
///
/// `confirmed` is the sum of every chain's confirmed total (each chain's confirmed side is
/// its fold up to its own finalized height), `pending` the sum of every chain's pending
/// total. A chain with nothing applied contributes nothing and is absent from `at` and
/// `chains`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultiCollateral {
    /// The user.
    pub user: UserId,
    /// The state of every chain the value reflects (those with a block applied, and those
    /// prices came from).
    pub at: ChainHeads,
    /// Each chain's collateral of the user, as that chain's
    /// [`CollateralReader`](crate::reader::CollateralReader) values it.
    pub chains: BTreeMap<ChainId, Collateral>,
    /// Per (chain, asset) with a balance on either side, ascending by chain then asset.
    pub assets: Vec<ChainAsset>,
    /// Σ every chain's confirmed total.
    pub confirmed: Decimal,
    /// Σ every chain's pending total.
    pub pending: Decimal,
    /// Whether every chain's both sides are complete
    /// ([`Valuation::is_complete`](crate::model::Valuation::is_complete): no missing,
    /// stale or unrepresentable price, no quarantined asset).
    pub complete: bool,
}

impl MultiCollateral {
    /// The collateral of `user` from each chain's `chains` collateral, read at `at`;
    /// `symbol(chain, asset)` names each asset's symbol (its chain's registry's).
    /// [`ChainsError::TotalOverflow`] if a total over the chains does not fit a `Decimal`.
    pub fn new(
        user: UserId,
        at: ChainHeads,
        chains: BTreeMap<ChainId, Collateral>,
        symbol: impl Fn(ChainId, &AssetId) -> String,
    ) -> Result<Self, ChainsError> {
        let overflow = || ChainsError::TotalOverflow { user };
        let (mut confirmed, mut pending) = (Decimal::ZERO, Decimal::ZERO);
        let mut complete = true;
        let mut assets = Vec::new();
        for (chain, c) in &chains {
            confirmed = confirmed
                .checked_add(c.confirmed.total)
                .ok_or_else(overflow)?;
            pending = pending.checked_add(c.pending.total).ok_or_else(overflow)?;
            complete &= c.confirmed.is_complete() && c.pending.is_complete();
            let mut lines: BTreeMap<AssetId, (Option<AssetValuation>, Option<AssetValuation>)> =
                BTreeMap::new();
            for a in &c.confirmed.assets {
                lines.entry(a.asset).or_default().0 = Some(*a);
            }
            for a in &c.pending.assets {
                lines.entry(a.asset).or_default().1 = Some(*a);
            }
            assets.extend(lines.into_iter().map(|(asset, (c, p))| ChainAsset {
                chain: *chain,
                asset,
                symbol: symbol(*chain, &asset),
                confirmed: c,
                pending: p,
            }));
        }
        Ok(Self {
            user,
            at,
            chains,
            assets,
            confirmed,
            pending,
            complete,
        })
    }

    /// The lines grouped by symbol: assets with the same symbol on different chains (USDC
    /// on Ethereum and on Base) are one line, each keeping its own factor and decimals.
    /// Every sum is a part of a total (values are not negative), so none overflows.
    pub fn by_symbol(&self) -> BTreeMap<String, SymbolTotal> {
        let mut out: BTreeMap<String, SymbolTotal> = BTreeMap::new();
        let fresh = |a: &Option<AssetValuation>| {
            a.is_none_or(|a| a.status == crate::model::PriceStatus::Fresh)
        };
        for line in &self.assets {
            let entry = out
                .entry(line.symbol.clone())
                .or_insert_with(|| SymbolTotal {
                    complete: true,
                    ..SymbolTotal::default()
                });
            let value = |a: &Option<AssetValuation>| a.and_then(|a| a.value).unwrap_or_default();
            entry.confirmed = entry.confirmed.saturating_add(value(&line.confirmed));
            entry.pending = entry.pending.saturating_add(value(&line.pending));
            entry.assets.push((line.chain, line.asset));
            entry.complete &= fresh(&line.confirmed) && fresh(&line.pending);
        }
        out
    }

    /// The line of `asset` on `chain`, if the user has a balance of it.
    pub fn asset(&self, chain: ChainId, asset: AssetId) -> Option<&ChainAsset> {
        self.assets
            .iter()
            .find(|a| a.chain == chain && a.asset == asset)
    }
}
