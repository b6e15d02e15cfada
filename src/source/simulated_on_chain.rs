//! [`SimulatedOnChain`]: a [`SimulatedChain`] that reports a chain id, for a store claimed
//! per chain (`reorg-collateral simulate --chain N`, the multi-chain tests).

use std::sync::Arc;

use alloy_primitives::B256;
use async_trait::async_trait;

use super::SimulatedChain;
use crate::error::SourceError;
use crate::model::{Block, BlockNumber};
use crate::traits::{BlockSource, ChainBalances};

/// A shared [`SimulatedChain`] (blocks mined on it show here) whose
/// [`chain_id`](BlockSource::chain_id) is `id` instead of none, so that the store's claim
/// records that chain. Everything else is the chain's.
#[derive(Clone, Debug)]
pub struct SimulatedOnChain {
    chain: Arc<SimulatedChain>,
    id: Option<u64>,
}

impl SimulatedOnChain {
    /// `chain`, reporting chain id `id` (`None`: none, as the chain itself).
    pub fn new(chain: Arc<SimulatedChain>, id: Option<u64>) -> Self {
        Self { chain, id }
    }

    /// The simulated chain (to mine, reorg or finalize).
    pub fn chain(&self) -> &Arc<SimulatedChain> {
        &self.chain
    }
}

#[async_trait]
impl BlockSource for SimulatedOnChain {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.chain.head().await
    }

    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_number(n).await
    }

    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(h).await
    }

    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(self.id)
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }

    fn chain_balances(&self) -> Option<&dyn ChainBalances> {
        self.chain.chain_balances()
    }

    async fn blocks(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<Block>, SourceError> {
        self.chain.blocks(from, to).await
    }
}
