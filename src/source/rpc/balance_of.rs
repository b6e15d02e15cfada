//! [`ChainBalances`] for [`RpcBlockSource`]: `balanceOf` by block hash (EIP-1898), from one
//! endpoint: through Multicall3's `aggregate3` where it is deployed (see
//! [`multicall`](super::multicall)), else in JSON-RPC batches of [`BALANCE_BATCH`]
//! `eth_call`s. An empty answer (no code at that block: before the token's deployment) is a
//! zero balance; a token that reverts is that key's [`BalanceReadError`].

use alloy_json_rpc::RpcError;
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
use crate::traits::{BalanceReadError, ChainBalances};

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

/// The `balanceOf(user)` calldata.
pub(super) fn balance_call(user: Address) -> Bytes {
    Bytes::from(balanceOfCall { owner: user }.abi_encode())
}

/// One key's balance out of a successful call's answer.
pub(super) fn decode_balance(
    key: BalanceKey,
    at: BlockRef,
    answer: &Bytes,
) -> Result<U256, BalanceReadError> {
    // No code at that block (before the token's deployment): no balances.
    if answer.is_empty() {
        return Ok(U256::ZERO);
    }
    balanceOfCall::abi_decode_returns(answer).map_err(|_| BalanceReadError::NotErc20 {
        key,
        at,
        answer: answer.clone(),
    })
}

/// Whether a node's error answer to one `eth_call` is the call reverting (EIP-1474 code 3,
/// or a message naming a revert), not a failure of the node.
fn is_revert(code: i64, message: &str) -> bool {
    code == 3 || message.to_ascii_lowercase().contains("revert")
}

#[async_trait]
impl<N: Network> ChainBalances for RpcBlockSource<N> {
    /// Whether a tracked ERC-20 kind of contract is `asset` (see [`Contract`]; a
    /// [`Contract::Custom`] is not: its events may not be an ERC-20's).
    fn reads(&self, asset: AssetId) -> bool {
        erc20_of(&self.config().decoders, asset).is_some()
    }

    /// [`balances_each`](ChainBalances::balances_each), failing on the first key whose
    /// read failed.
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        self.balances_each(keys, at)
            .await?
            .into_iter()
            .map(|r| {
                r.map_err(|e| SourceError::Transport {
                    operation: format!("balanceOf of {} keys at {at}", keys.len()),
                    source: Box::new(e),
                })
            })
            .collect()
    }

    /// `balanceOf` of every key at `at`'s hash, all from one endpoint (the next one on a
    /// transport error): [`MULTICALL_CHUNK`](super::MULTICALL_CHUNK) keys per `aggregate3`
    /// call where Multicall3 is deployed, else [`BALANCE_BATCH`] calls per JSON-RPC batch.
    async fn balances_each(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<Result<U256, BalanceReadError>>, SourceError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: std::sync::Arc<[BalanceKey]> = keys.into();
        self.first_ok(move |f| {
            let keys = keys.clone();
            Box::pin(async move { f.balances_each(&keys, at).await })
        })
        .await
    }
}

impl<N: Network> Fetch<'_, N> {
    async fn balances_each(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<Result<U256, BalanceReadError>>, SourceError> {
        // The EIP-1898 object form: some nodes (Hardhat) take a bare hash for a number.
        let block = BlockId::Hash(RpcBlockHash::from_hash(at.hash, Some(false)));
        let mut calls = Vec::with_capacity(keys.len());
        for key in keys {
            let token = token_of(&self.config.decoders, key.asset).ok_or_else(|| {
                SourceError::Transport {
                    operation: format!(
                        "balanceOf of {} keys at {at} at {}",
                        keys.len(),
                        self.ep.label
                    ),
                    source: format!(
                        "asset {} is not a tracked ERC-20 contract: no balanceOf to call",
                        key.asset
                    )
                    .into(),
                }
            })?;
            calls.push((*key, token));
        }
        let mut out = Vec::with_capacity(keys.len());
        if self.has_multicall3().await? {
            for chunk in calls.chunks(super::MULTICALL_CHUNK) {
                match self.aggregate3(chunk, at, block).await? {
                    Some(read) => out.extend(read),
                    // Multicall3 is not deployed yet at that block.
                    None => out.extend(self.batch(chunk, at, block).await?),
                }
            }
            return Ok(out);
        }
        for chunk in calls.chunks(BALANCE_BATCH) {
            out.extend(self.batch(chunk, at, block).await?);
        }
        Ok(out)
    }

    /// One JSON-RPC batch of `eth_call`s.
    async fn batch(
        &self,
        calls: &[(BalanceKey, Address)],
        at: BlockRef,
        block: BlockId,
    ) -> Result<Vec<Result<U256, BalanceReadError>>, SourceError> {
        let client = self.ep.provider.client();
        let op = format!("balanceOf batch of {} at {at}", calls.len());
        let mut batch = BatchRequest::new(client);
        let mut waiters = Vec::with_capacity(calls.len());
        for (key, token) in calls {
            let call = TransactionRequest::default()
                .to(*token)
                .input(balance_call(key.user).into());
            waiters.push(
                batch
                    .add_call::<_, Bytes>("eth_call", &(call, block))
                    .map_err(transport(&self.ep.label, &op))?,
            );
        }
        match batch.send().await {
            Ok(()) => {}
            // Some nodes (Hardhat) answer a whole batch with the error of one reverting
            // call: ask each call alone to tell which.
            Err(RpcError::ErrorResp(e)) if is_revert(e.code, &e.message) => {
                return self.one_by_one(calls, at, block).await;
            }
            Err(e) => return Err(transport(&self.ep.label, &op)(e)),
        }
        let mut out = Vec::with_capacity(calls.len());
        for ((key, _), waiter) in calls.iter().zip(waiters) {
            let what = format!("balanceOf({}) of {} at {at}", key.user, key.asset);
            match waiter.await {
                Ok(answer) => out.push(decode_balance(*key, at, &answer)),
                Err(RpcError::ErrorResp(e)) if is_revert(e.code, &e.message) => {
                    out.push(Err(BalanceReadError::Reverted {
                        key: *key,
                        at,
                        reason: e.message.to_string(),
                    }))
                }
                Err(e) => return Err(transport(&self.ep.label, &what)(e)),
            }
        }
        Ok(out)
    }

    /// One `eth_call` per key, for a batch the node refused as a whole.
    async fn one_by_one(
        &self,
        calls: &[(BalanceKey, Address)],
        at: BlockRef,
        block: BlockId,
    ) -> Result<Vec<Result<U256, BalanceReadError>>, SourceError> {
        let client = self.ep.provider.client();
        let mut out = Vec::with_capacity(calls.len());
        for (key, token) in calls {
            let call = TransactionRequest::default()
                .to(*token)
                .input(balance_call(key.user).into());
            match client.request::<_, Bytes>("eth_call", (call, block)).await {
                Ok(answer) => out.push(decode_balance(*key, at, &answer)),
                Err(RpcError::ErrorResp(e)) if is_revert(e.code, &e.message) => {
                    out.push(Err(BalanceReadError::Reverted {
                        key: *key,
                        at,
                        reason: e.message.to_string(),
                    }))
                }
                Err(e) => {
                    let what = format!("balanceOf({}) of {} at {at}", key.user, key.asset);
                    return Err(transport(&self.ep.label, &what)(e));
                }
            }
        }
        Ok(out)
    }
}
