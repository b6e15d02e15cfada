//! The block a contract was deployed in: where a watch of a token starts, since balances
//! are folded from its events and a later start has no opening balances.

use alloy_network::Network;
use alloy_primitives::Address;
use alloy_provider::Provider;

use super::RpcBlockSource;
use super::endpoint::{Fetch, transport};
use crate::error::SourceError;
use crate::model::BlockNumber;

impl<N: Network> RpcBlockSource<N> {
    /// The block `contract` was deployed in: the lowest height at which it has code, found
    /// by bisecting `eth_getCode` over `0..=head` on one endpoint (one call per halving,
    /// plus the head). `None`: it has no code at the head (not a contract).
    ///
    /// Needs a node that serves historical state (an archive node, any dev chain): a
    /// pruned node's refusal for an old height is a [`SourceError::Transport`] naming the
    /// contract and the height; start from a known block then. Assumes code, once
    /// deployed, stays (a contract destroyed and re-created is found at some deployment).
    pub async fn deployment_block(
        &self,
        contract: Address,
    ) -> Result<Option<BlockNumber>, SourceError> {
        self.first_ok(|f| Box::pin(async move { f.deployment_block(contract).await }))
            .await
    }
}

impl<N: Network> Fetch<'_, N> {
    async fn has_code(&self, contract: Address, at: BlockNumber) -> Result<bool, SourceError> {
        let code = self
            .ep
            .provider
            .get_code_at(contract)
            .number(at)
            .await
            .map_err(transport(
                self.label(),
                format_args!("eth_getCode of {contract} at #{at}"),
            ))?;
        Ok(!code.is_empty())
    }

    async fn deployment_block(
        &self,
        contract: Address,
    ) -> Result<Option<BlockNumber>, SourceError> {
        let head = self.ep.head().await?;
        if !self.has_code(contract, head).await? {
            return Ok(None);
        }
        // Invariant: code at `hi`, none below `lo`.
        let (mut lo, mut hi) = (0, head);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.has_code(contract, mid).await? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(Some(lo))
    }
}
