//! Multicall3's `aggregate3` for [`ChainBalances`](crate::traits::ChainBalances): many
//! `balanceOf` in one `eth_call`, each with `allowFailure: true`, so one token that
//! reverts is that key's error and the others are still read. Used where Multicall3 has
//! code at its canonical address [`MULTICALL3`] (asked once per endpoint).

use alloy_network::Network;
use alloy_primitives::{Address, Bytes, U256, address};
use alloy_provider::Provider;
use alloy_rpc_types_eth::{BlockId, TransactionRequest};
use alloy_sol_types::{SolCall, sol};

use super::balance_of::{balance_call, decode_balance};
use super::endpoint::{Fetch, transport};
use crate::error::SourceError;
use crate::model::{BalanceKey, BlockRef};
use crate::traits::BalanceReadError;

/// Multicall3's address on every chain it is deployed to (the same deployer and nonce).
pub const MULTICALL3: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// Most `balanceOf` sub-calls in one `aggregate3` call.
pub const MULTICALL_CHUNK: usize = 500;

sol! {
    /// The part of Multicall3 the balance reads use.
    interface IMulticall3 {
        /// One sub-call.
        struct Call3 {
            address target;
            bool allowFailure;
            bytes callData;
        }
        /// One sub-call's outcome.
        struct Result {
            bool success;
            bytes returnData;
        }
        /// Runs every call, in order; a failed one with `allowFailure` is reported, not
        /// reverted.
        function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData);
    }
}

impl<N: Network> Fetch<'_, N> {
    /// Whether this endpoint's chain has Multicall3 (code at [`MULTICALL3`] at its head),
    /// asked once per endpoint; `false` when [`RpcConfig::multicall3`](super::RpcConfig::multicall3)
    /// is off.
    pub(super) async fn has_multicall3(&self) -> Result<bool, SourceError> {
        if !self.config.multicall3 {
            return Ok(false);
        }
        if let Some(known) = self.ep.multicall3.get() {
            return Ok(*known);
        }
        let code = self
            .ep
            .provider
            .get_code_at(MULTICALL3)
            .await
            .map_err(transport(&self.ep.label, "eth_getCode of Multicall3"))?;
        let deployed = !code.is_empty();
        tracing::debug!(endpoint = %self.ep.label, deployed, "Multicall3 at its canonical address");
        Ok(*self.ep.multicall3.get_or_init(|| deployed))
    }

    /// `balanceOf` of each `(key, token)` in one `aggregate3` call at `block`; `None` when
    /// Multicall3 has no code in that block's state (a block before its deployment).
    pub(super) async fn aggregate3(
        &self,
        calls: &[(BalanceKey, Address)],
        at: BlockRef,
        block: BlockId,
    ) -> Result<Option<Vec<Result<U256, BalanceReadError>>>, SourceError> {
        let op = format!("aggregate3 of {} balanceOf at {at}", calls.len());
        let sub: Vec<IMulticall3::Call3> = calls
            .iter()
            .map(|(key, token)| IMulticall3::Call3 {
                target: *token,
                allowFailure: true,
                callData: balance_call(key.user),
            })
            .collect();
        let data = IMulticall3::aggregate3Call { calls: sub }.abi_encode();
        let call = TransactionRequest::default()
            .to(MULTICALL3)
            .input(Bytes::from(data).into());
        let answer: Bytes = self
            .ep
            .provider
            .client()
            .request("eth_call", (call, block))
            .await
            .map_err(transport(&self.ep.label, &op))?;
        if answer.is_empty() {
            return Ok(None);
        }
        let results = IMulticall3::aggregate3Call::abi_decode_returns(&answer).map_err(|e| {
            SourceError::Transport {
                operation: format!("{op} at {} (answer {answer})", self.ep.label),
                source: Box::new(e),
            }
        })?;
        if results.len() != calls.len() {
            return Err(SourceError::Transport {
                operation: format!("{op} at {}", self.ep.label),
                source: format!("{} results for {} calls", results.len(), calls.len()).into(),
            });
        }
        Ok(Some(
            calls
                .iter()
                .zip(results)
                .map(|((key, _), r)| {
                    if r.success {
                        decode_balance(*key, at, &r.returnData)
                    } else {
                        Err(BalanceReadError::Reverted {
                            key: *key,
                            at,
                            reason: format!("revert data {}", r.returnData),
                        })
                    }
                })
                .collect(),
        ))
    }
}
