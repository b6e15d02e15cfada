use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{AssetId, RateView};

/// Latest confirmed and pending vault rate per asset
/// ([`PriceSource::Derived`](crate::model::PriceSource::Derived) assets), read for valuation.
///
/// # Contract
/// Exactly [`PriceFeed`](super::PriceFeed)'s, for rates: `confirmed` is the rate of the
/// latest block at or below the finalized height that carried one, `pending` the latest on
/// the whole canonical chain (equal to `confirmed` when no unconfirmed block carried one),
/// and a rate disappears with its block when that block is reorged out. Stores write rates
/// through [`StoreWriter::apply`](super::StoreWriter::apply) in the same atomic step as
/// balances and prices ([`BlockChanges::rates`](crate::model::BlockChanges::rates)).
///
/// Required of every [`BalanceStore`](super::BalanceStore): a decorator must forward it
/// (one that did not would value every vault share as missing).
#[async_trait]
pub trait RateFeed: Send + Sync + Debug {
    /// The confirmed and pending rates of `assets`, in the order asked (both `None` for an
    /// asset that never had one).
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError>;
}
