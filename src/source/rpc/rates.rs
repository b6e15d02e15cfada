//! Vault rates read by the source: `convertToAssets(10^share_decimals)` of each configured
//! ERC-4626 vault ([`VaultRate`]), by `eth_call` at the block's **hash** (EIP-1898, so the
//! rate is the state of exactly the block it is carried in), for every block in which the
//! vault emitted a log or its underlying moved tokens to or from it (a donation changes the
//! rate without any share moving), and at least every [`RpcConfig::rate_interval`] blocks
//! (heights divisible by it, so a re-fetch of a block decides the same way).
//!
//! [`RpcConfig::rate_interval`]: super::RpcConfig::rate_interval

use alloy_network::Network;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::{BlockId, Log, RpcBlockHash, TransactionRequest};
use alloy_sol_types::{SolCall, SolEvent, sol};
use alloy_transport::RpcError;

use super::endpoint::{Fetch, transport};
use super::policy::is_unknown_block;
use crate::decode::Transfer;
use crate::error::SourceError;
use crate::model::{AssetId, Block, RateUpdate};

sol! {
    /// The ERC-4626 read the source makes.
    interface IErc4626Rate {
        function convertToAssets(uint256 shares) external view returns (uint256 assets);
    }
}

/// An ERC-4626 vault whose rate the source reads, for an asset priced
/// [`PriceSource::Derived`](crate::model::PriceSource::Derived).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VaultRate {
    /// The vault contract.
    pub vault: Address,
    /// The asset its shares are (usually the vault's own address); the asset the
    /// [`RateUpdate`] names.
    pub asset: AssetId,
    /// The underlying token: its `Transfer`s to or from the vault trigger a read.
    pub underlying: Address,
    /// The shares' decimals: the rate is `convertToAssets(10^share_decimals)`.
    pub share_decimals: u8,
}

impl VaultRate {
    /// A vault whose shares are the asset at its own address.
    pub fn new(vault: Address, underlying: Address, share_decimals: u8) -> Self {
        Self {
            vault,
            asset: vault,
            underlying,
            share_decimals,
        }
    }

    /// Whether `logs` of a block change or may change the vault's rate: a log of the vault,
    /// or a `Transfer` of the underlying from or to it.
    fn moved(&self, logs: &[Log]) -> bool {
        logs.iter().any(|l| {
            let t = l.topics();
            l.address() == self.vault
                || (l.address() == self.underlying
                    && t.len() >= 3
                    && t[0] == Transfer::SIGNATURE_HASH
                    && (t[1] == self.vault.into_word() || t[2] == self.vault.into_word()))
        })
    }
}

/// What one rate read found.
enum Read {
    /// The vault's answer.
    Rate(U256),
    /// The vault has no code at that block (a block below its deployment): no rate.
    NoCode,
    /// The node no longer knows the block.
    UnknownBlock,
}

impl<N: Network> Fetch<'_, N> {
    /// The vaults whose rate is due in the block at `number` with `logs`.
    pub(crate) fn rates_due(&self, number: u64, logs: &[Log]) -> Vec<VaultRate> {
        let interval = self.config.rate_interval.max(1);
        self.config
            .vault_rates
            .iter()
            .filter(|v| number.is_multiple_of(interval) || v.moved(logs))
            .copied()
            .collect()
    }

    /// Reads the `due` vaults' rates at `block`'s hash into `block.rates`. `Ok(false)`: the
    /// node no longer knows the block (reorged away meanwhile).
    pub(crate) async fn read_rates(
        &self,
        block: &mut Block,
        due: &[VaultRate],
    ) -> Result<bool, SourceError> {
        let hash = block.header.hash;
        for v in due {
            match self.rate_at(v, hash).await? {
                Read::Rate(rate) => block.rates.push(RateUpdate {
                    asset: v.asset,
                    rate,
                    block: block.header.number,
                }),
                Read::NoCode => {}
                Read::UnknownBlock => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn rate_at(&self, v: &VaultRate, hash: B256) -> Result<Read, SourceError> {
        let one = U256::from(10u64).pow(U256::from(v.share_decimals));
        let call = TransactionRequest::default().to(v.vault).input(
            Bytes::from(IErc4626Rate::convertToAssetsCall { shares: one }.abi_encode()).into(),
        );
        // The EIP-1898 object form (`{"blockHash": …}`): some nodes (Hardhat) read a bare
        // hash as a block number. The state at that block, canonical or not: the rate is
        // carried by that block and goes with it.
        let at = BlockId::Hash(RpcBlockHash::from_hash(hash, Some(false)));
        let operation = format!("convertToAssets of vault {} at block {hash}", v.vault);
        let out: Bytes = match self
            .ep
            .provider
            .raw_request("eth_call".into(), (call, at))
            .await
        {
            Ok(out) => out,
            Err(RpcError::ErrorResp(e)) if is_unknown_block(&e.message) => {
                return Ok(Read::UnknownBlock);
            }
            Err(e) => return Err(transport(self.label(), &operation)(e)),
        };
        if out.is_empty() {
            // No code at the vault's address in this block: not deployed yet.
            return Ok(Read::NoCode);
        }
        IErc4626Rate::convertToAssetsCall::abi_decode_returns(&out)
            .map(Read::Rate)
            .map_err(|e| SourceError::Transport {
                operation: format!(
                    "{operation} at {} (answer {out}: is it an ERC-4626 vault?)",
                    self.label()
                ),
                source: Box::new(e),
            })
    }
}
