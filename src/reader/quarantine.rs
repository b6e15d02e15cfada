//! Quarantined assets in a valuation: on the side (confirmed, pending) an asset is
//! quarantined, its value is left out of the total and flagged
//! [`PriceStatus::Quarantined`], like a missing price.

use crate::model::{AssetId, AssetState, AssetStateView, Collateral, PriceStatus, Valuation};

/// Marks the assets of `c` that `states` quarantines, side by side, and takes their values
/// out of the totals.
pub(crate) fn mark(c: &mut Collateral, states: &[AssetStateView]) {
    if states.is_empty() {
        return;
    }
    mark_side(&mut c.confirmed, states, |v| &v.confirmed);
    mark_side(&mut c.pending, states, |v| &v.pending);
}

fn mark_side(
    side: &mut Valuation,
    states: &[AssetStateView],
    state: impl Fn(&AssetStateView) -> &AssetState,
) {
    let quarantine = |asset: AssetId| {
        states
            .iter()
            .find(|v| v.asset == asset)
            .and_then(|v| state(v).quarantine())
    };
    let mut changed = false;
    for a in &mut side.assets {
        if let Some(q) = quarantine(a.asset) {
            a.status = PriceStatus::Quarantined {
                block: q.block,
                log: q.log,
            };
            a.value = None;
            changed = true;
        }
    }
    if changed {
        // The remaining values were each added exactly (see `valuation`): their sum again.
        side.total = side.assets.iter().filter_map(|a| a.value).sum();
    }
}
