//! [`ChainBalances`] for [`RpcBlockSource`]: `balanceOf` by block hash (EIP-1898), in
//! JSON-RPC batches of [`BALANCE_BATCH`] `eth_call`s from one endpoint. An empty answer (no
//! code at that block: before the token's deployment) is a zero balance.

use alloy_network::Network;
use alloy_primitives::{Address, Bytes, U256};
use alloy_provider::Provider;
use alloy_rpc_client::BatchRequest;
use alloy_rpc_types_eth::{BlockId, RpcBlockHash, TransactionRequest};
use alloy_sol_types::{SolCall, sol};
use async_trait::async_trait;

use super::RpcBlockSource;
use super::endpoint::{Fetch, transport};
use crate::decode::{Contract, Decoders};
use crate::error::SourceError;
use crate::model::{AssetId, BalanceKey, BlockRef};
use crate::traits::ChainBalances;

/// Most `eth_call`s in one JSON-RPC batch.
pub const BALANCE_BATCH: usize = 200;

sol! {
    /// The one ERC-20 read the reconciliation needs.
    function balanceOf(address owner) external view returns (uint256);
}

/// The contract whose `balanceOf` is `asset`'s balance: a tracked ERC-20 kind
/// ([`Contract::Token`], [`Contract::Weth9`], [`Contract::Tether`], [`Contract::Erc4626`])
/// for that asset, else (for [`balances_of`](ChainBalances::balances_of) only) the asset's
/// own address when it is tracked as a [`Contract::Custom`].
fn token_of(decoders: &Decoders, asset: AssetId) -> Option<Address> {
    erc20_of(decoders, asset).or_else(|| {
        decoders
            .contracts()
            .any(|(address, c)| *address == asset && matches!(c, Contract::Custom(_)))
            .then_some(asset)
    })
}

/// The tracked ERC-20 kind of contract that is `asset`.
fn erc20_of(decoders: &Decoders, asset: AssetId) -> Option<Address> {
    let mut found: Vec<Address> = decoders
        .contracts()
        .filter_map(|(address, c)| match c {
            Contract::Token { asset: a }
            | Contract::Weth9 { asset: a }
            | Contract::Tether { asset: a, .. }
            | Contract::Erc4626 { asset: a, .. }
                if *a == asset =>
            {
                Some(*address)
            }
            _ => None,
        })
        .collect();
    found.sort();
    found.first().copied()
}

#[async_trait]
impl<N: Network> ChainBalances for RpcBlockSource<N> {
    /// Whether a tracked ERC-20 kind of contract is `asset` (see [`Contract`]; a
    /// [`Contract::Custom`] is not: its events may not be an ERC-20's).
    fn reads(&self, asset: AssetId) -> bool {
        erc20_of(&self.config().decoders, asset).is_some()
    }

    /// `balanceOf` of every key at `at`'s hash, [`BALANCE_BATCH`] calls per JSON-RPC batch,
    /// all from one endpoint (the next one on a transport error).
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: std::sync::Arc<[BalanceKey]> = keys.into();
        self.first_ok(move |f| {
            let keys = keys.clone();
            Box::pin(async move { f.balances_of(&keys, at).await })
        })
        .await
    }
}

impl<N: Network> Fetch<'_, N> {
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        let client = self.ep.provider.client();
        // The EIP-1898 object form: some nodes (Hardhat) take a bare hash for a number.
        let block = BlockId::Hash(RpcBlockHash::from_hash(at.hash, Some(false)));
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BALANCE_BATCH) {
            let op = format!("balanceOf batch of {} at {at}", chunk.len());
            let mut batch = BatchRequest::new(client);
            let mut waiters = Vec::with_capacity(chunk.len());
            for key in chunk {
                let token = token_of(&self.config.decoders, key.asset).ok_or_else(|| {
                    SourceError::Transport {
                        operation: format!("{op} at {}", self.ep.label),
                        source: format!(
                            "asset {} is not a tracked ERC-20 contract: no balanceOf to call",
                            key.asset
                        )
                        .into(),
                    }
                })?;
                let call = TransactionRequest::default()
                    .to(token)
                    .input(Bytes::from(balanceOfCall { owner: key.user }.abi_encode()).into());
                waiters.push(
                    batch
                        .add_call::<_, Bytes>("eth_call", &(call, block))
                        .map_err(transport(&self.ep.label, &op))?,
                );
            }
            batch.send().await.map_err(transport(&self.ep.label, &op))?;
            for (key, waiter) in chunk.iter().zip(waiters) {
                let what = format!("balanceOf({}) of {} at {at}", key.user, key.asset);
                let answer = waiter.await.map_err(transport(&self.ep.label, &what))?;
                // No code at that block (before the token's deployment): no balances.
                if answer.is_empty() {
                    out.push(U256::ZERO);
                    continue;
                }
                let balance = balanceOfCall::abi_decode_returns(&answer).map_err(|e| {
                    SourceError::Transport {
                        operation: format!(
                            "{what} at {} (answer {answer}: is it an ERC-20?)",
                            self.ep.label
                        ),
                        source: Box::new(e),
                    }
                })?;
                out.push(balance);
            }
        }
        Ok(out)
    }
}
