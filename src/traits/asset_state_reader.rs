use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::AssetStateView;

/// Reads of the assets' fold state besides balances and prices: which assets are
/// quarantined, on the confirmed side (finalized blocks) and the pending side (the head).
///
/// # Contract
/// - [`asset_states`](Self::asset_states) lists every asset that is not
///   [`AssetState::Active`](crate::model::AssetState::Active) on either side, ordered by
///   asset, from one committed state of the store (the same state as a balance read in
///   between two equal [`head_state`](crate::traits::StoreWriter::head_state) reads).
/// - A quarantine is block-scoped: it disappears from `pending` when its block is reorged
///   out, and reaches `confirmed` when its block is finalized.
#[async_trait]
pub trait AssetStateReader: Send + Sync + Debug {
    /// Every asset quarantined on either side, ordered by asset (usually none: one small
    /// read).
    async fn asset_states(&self) -> Result<Vec<AssetStateView>, StoreError>;
}
