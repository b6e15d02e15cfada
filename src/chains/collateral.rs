//! [`MultiCollateral`]: one user's collateral over several chains, with its per-(chain,
//! asset) breakdown and its lines by symbol.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{ChainHeads, ChainId};
use crate::model::{AssetId, AssetValuation, Collateral, UserId};
use crate::valuation::ExactSum;

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

/// The chains whose total on a side was left out of that side's sum over the chains: with
/// it the sum would not fit a `Decimal` (each chain's own total does). Like an
/// unrepresentable value on one chain, the rest is summed and the collateral is flagged
/// incomplete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeftOut {
    /// Chains left out of the confirmed sum, ascending.
    pub confirmed: Vec<ChainId>,
    /// Chains left out of the pending sum, ascending.
    pub pending: Vec<ChainId>,
}

impl LeftOut {
    /// Whether no chain was left out.
    pub fn is_empty(&self) -> bool {
        self.confirmed.is_empty() && self.pending.is_empty()
    }
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
    /// Σ every chain's confirmed total (in chain order, but those in `left_out`).
    pub confirmed: Decimal,
    /// Σ every chain's pending total (in chain order, but those in `left_out`).
    pub pending: Decimal,
    /// The chains whose total would have made a sum unrepresentable (almost always none).
    pub left_out: LeftOut,
    /// Whether every chain's both sides are complete
    /// ([`Valuation::is_complete`](crate::model::Valuation::is_complete): no missing,
    /// stale or unrepresentable price, no quarantined asset) and no chain was left out.
    pub complete: bool,
}

impl MultiCollateral {
    /// The collateral of `user` from each chain's `chains` collateral, read at `at`;
    /// `symbol(chain, asset)` names each asset's symbol (its chain's registry's). A
    /// chain's total that would make a sum unrepresentable is left out of it (see
    /// [`LeftOut`]).
    pub fn new(
        user: UserId,
        at: ChainHeads,
        chains: BTreeMap<ChainId, Collateral>,
        symbol: impl Fn(ChainId, &AssetId) -> String,
    ) -> Self {
        let (mut confirmed, mut pending) = (ExactSum::default(), ExactSum::default());
        let mut left_out = LeftOut::default();
        let mut complete = true;
        let mut assets = Vec::new();
        for (chain, c) in &chains {
            if !confirmed.try_add(c.confirmed.total) {
                left_out.confirmed.push(*chain);
            }
            if !pending.try_add(c.pending.total) {
                left_out.pending.push(*chain);
            }
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
        complete &= left_out.is_empty();
        Self {
            user,
            at,
            chains,
            assets,
            confirmed: confirmed.total(),
            pending: pending.total(),
            left_out,
            complete,
        }
    }

    /// The lines grouped by symbol: assets with the same symbol on different chains (USDC
    /// on Ethereum and on Base) are one line, each keeping its own factor and decimals.
    /// Values are added exactly; a value that would make a symbol's sum unrepresentable
    /// (possible only for sums near a `Decimal`'s limit) is left out and the line marked
    /// incomplete.
    pub fn by_symbol(&self) -> BTreeMap<String, SymbolTotal> {
        let mut sums: BTreeMap<&str, (ExactSum, ExactSum, SymbolTotal)> = BTreeMap::new();
        let fresh = |a: &Option<AssetValuation>| {
            a.is_none_or(|a| a.status == crate::model::PriceStatus::Fresh)
        };
        let value = |a: &Option<AssetValuation>| a.and_then(|a| a.value).unwrap_or_default();
        for line in &self.assets {
            let (confirmed, pending, entry) =
                sums.entry(line.symbol.as_str()).or_insert_with(|| {
                    let total = SymbolTotal {
                        complete: true,
                        ..SymbolTotal::default()
                    };
                    (ExactSum::default(), ExactSum::default(), total)
                });
            let fits =
                confirmed.try_add(value(&line.confirmed)) & pending.try_add(value(&line.pending));
            entry.assets.push((line.chain, line.asset));
            entry.complete &= fits && fresh(&line.confirmed) && fresh(&line.pending);
        }
        sums.into_iter()
            .map(|(symbol, (confirmed, pending, mut total))| {
                total.confirmed = confirmed.total();
                total.pending = pending.total();
                (symbol.to_owned(), total)
            })
            .collect()
    }

    /// The line of `asset` on `chain`, if the user has a balance of it.
    pub fn asset(&self, chain: ChainId, asset: AssetId) -> Option<&ChainAsset> {
        self.assets
            .iter()
            .find(|a| a.chain == chain && a.asset == asset)
    }
}
