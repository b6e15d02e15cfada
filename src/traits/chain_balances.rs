use std::fmt::Debug;

use alloy_primitives::{Bytes, U256};
use async_trait::async_trait;

use crate::error::SourceError;
use crate::model::{AssetId, AssetIndex, BalanceKey, BlockRef};

/// Balances read from the chain itself (`balanceOf`), for opening balances and the
/// [`Reconciler`](crate::watcher::Reconciler).
/// `RpcBlockSource` (feature `rpc`) implements it with batched
/// `eth_call`s by block hash.
///
/// # Contract
/// - [`balances_of`](Self::balances_of) answers in the order asked, one balance per key:
///   `balanceOf(key.user)` of the token `key.asset`, in the state after block `at`, read
///   by its **hash** (EIP-1898), so a reorg between the read and its use cannot mix two
///   forks. A block the node no longer knows (reorged away, pruned) is an error.
/// - A failed read changes nothing; the caller may retry.
/// - [`index_at`](Self::index_at) is a rebasing asset's index in the state after block
///   `at` (by hash), or `None` when the reader has none for that asset.
/// - [`balances_each`](Self::balances_each) answers the same keys one result each: a key
///   whose own `balanceOf` failed (the token reverted, or answered something that is not a
///   `uint256`) is that key's [`BalanceReadError`] and the others are still read; its outer
///   error is a failure of the whole read (transport, unknown block).
#[async_trait]
pub trait ChainBalances: Send + Sync + Debug {
    /// Whether `asset` has a `balanceOf` this reader can call (an ERC-20 token, not a
    /// contract reporting balances through its own events). Keys of other assets are never
    /// asked. Default: every asset.
    fn reads(&self, asset: AssetId) -> bool {
        let _ = asset;
        true
    }

    /// `balanceOf(user)` of each key at block `at` (by hash), in the order asked.
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError>;

    /// The index of the rebasing `asset` after block `at` (by hash), as
    /// [`IndexFormula`](crate::model::IndexFormula) makes it: UFragments'
    /// `TOTAL_GONS ÷ totalSupply()`, stETH's `getTotalPooledEther()` over `getTotalShares()`
    /// ([`AssetIndex::shares_ratio`]). The watcher writes it at its start block, before the
    /// opening balances (which it converts), when it starts after the token's deployment.
    /// `Ok(None)`: not a rebasing asset, no index yet (a zero supply), or not one this
    /// reader can read. Default: `Ok(None)` for every asset (`RpcBlockSource` reads none
    /// yet).
    async fn index_at(
        &self,
        asset: AssetId,
        at: BlockRef,
    ) -> Result<Option<AssetIndex>, SourceError> {
        let _ = (asset, at);
        Ok(None)
    }

    /// `balanceOf(user)` of each key at block `at` (by hash), in the order asked, each
    /// key's own result. Default: [`balances_of`](Self::balances_of), every key `Ok`.
    async fn balances_each(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<Result<U256, BalanceReadError>>, SourceError> {
        Ok(self
            .balances_of(keys, at)
            .await?
            .into_iter()
            .map(Ok)
            .collect())
    }
}

/// Why the `balanceOf` of one key could not be read while the others were (see
/// [`ChainBalances::balances_each`]). Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceReadError {
    /// The token's `balanceOf` reverted.
    #[error("balanceOf({}) of {} at {at} reverted: {reason}", key.user, key.asset)]
    Reverted {
        /// The key read.
        key: BalanceKey,
        /// The block read at.
        at: BlockRef,
        /// The node's message or the revert data (hex).
        reason: String,
    },
    /// The token answered something that is not one `uint256`: not an ERC-20.
    #[error("balanceOf({}) of {} at {at} answered {answer}: is it an ERC-20?", key.user, key.asset)]
    NotErc20 {
        /// The key read.
        key: BalanceKey,
        /// The block read at.
        at: BlockRef,
        /// The answer.
        answer: Bytes,
    },
}

impl BalanceReadError {
    /// The key whose read failed.
    pub fn key(&self) -> BalanceKey {
        match self {
            Self::Reverted { key, .. } | Self::NotErc20 { key, .. } => *key,
        }
    }
}
