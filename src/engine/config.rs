use std::sync::Arc;

use crate::model::AssetRegistry;

/// Settings of the state machine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Tracked assets; events and prices of others are refused.
    pub assets: Arc<AssetRegistry>,
    /// A block is final once this many blocks sit on top of it (`head - number >= confirmations`).
    /// This also bounds the unconfirmed window: a reorg deeper than it is refused.
    /// The source's `finalized` tag may finalize earlier, never later.
    pub confirmations: u64,
}

impl EngineConfig {
    /// A configuration with the given assets and confirmation depth.
    pub fn new(assets: AssetRegistry, confirmations: u64) -> Self {
        Self {
            assets: Arc::new(assets),
            confirmations,
        }
    }
}
