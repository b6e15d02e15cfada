//! [`OnChain`]: a [`SimulatedChain`] that reports a chain id, so a harness's writer claims
//! its store for that chain (a simulation reports none).

use std::sync::Arc;

use alloy_primitives::B256;
use async_trait::async_trait;

use crate::chains::ChainId;
use crate::error::SourceError;
use crate::model::{Block, BlockNumber};
use crate::source::SimulatedChain;
use crate::traits::BlockSource;

/// `chain`'s blocks, with `id` as the chain id (what the watcher's writer claim records).
#[derive(Debug)]
pub(crate) struct OnChain {
    /// The simulated chain.
    pub(crate) chain: Arc<SimulatedChain>,
    /// The chain id it reports.
    pub(crate) id: ChainId,
}

#[async_trait]
impl BlockSource for OnChain {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.chain.head().await
    }

    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_number(number).await
    }

    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(hash).await
    }

    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(Some(self.id.0))
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }
}
