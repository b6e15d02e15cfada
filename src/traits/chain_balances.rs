use std::fmt::Debug;

use alloy_primitives::U256;
use async_trait::async_trait;

use crate::error::SourceError;
use crate::model::{AssetId, BalanceKey, BlockRef};

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
}
