use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{AssetId, PriceView};

/// Latest confirmed and pending oracle price per asset, read for valuation.
///
/// # Contract
/// - `confirmed` is the last accepted update in a block at or below the finalized height;
///   `pending` is the last accepted update on the whole canonical chain, so it equals
///   `confirmed` when no unconfirmed block carried one.
/// - A price carried by a block that is reorged out disappears from `pending` with it.
///
/// Stores that ingest oracle events from blocks (the in-memory and Postgres stores) write
/// prices through [`StoreWriter::apply`](crate::traits::StoreWriter::apply) in the same atomic
/// step as balances, and implement this trait to read them back.
#[async_trait]
pub trait PriceFeed: Send + Sync + Debug {
    /// The confirmed and pending price of `asset` (both `None` if never priced).
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError>;

    /// Prices of several assets, in the order asked. Override to batch.
    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        let mut out = Vec::with_capacity(assets.len());
        for asset in assets {
            out.push(self.price(*asset).await?);
        }
        Ok(out)
    }
}
