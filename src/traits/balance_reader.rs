use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{AssetId, BalanceKey, BalanceView, UserId};

/// What readers of current state need: a user's balances, many users' at once, and an
/// asset's holders. Read-only processes (an API server) need only this and a
/// [`PriceFeed`](super::PriceFeed).
///
/// # Contract
/// - Every read sees one committed state of the store (never half a changeset).
/// - [`user_balances`](Self::user_balances) costs O(assets of the user): a direct lookup,
///   never a scan of the history.
/// - [`user_balances_many`](Self::user_balances_many) answers in the order asked, one
///   entry per user (empty for a user without balances); a store should answer it in O(1)
///   round trips. The default asks for each user in turn.
#[async_trait]
pub trait BalanceReader: Send + Sync + Debug {
    /// All balances of a user with any state, ordered by asset. Cost: O(assets of the user).
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError>;

    /// Users that hold (or held) `asset`, ascending, for refreshing them after a price change.
    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError>;

    /// The balances of several users, in the order asked. Override to batch.
    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            out.push(self.user_balances(*user).await?);
        }
        Ok(out)
    }

    /// This store as a [`PostgresStore`](crate::store::PostgresStore), when it is one
    /// (feature `postgres`). A [`CollateralReader`](crate::reader::CollateralReader), and a
    /// [`MultiChainReader`](crate::chains::MultiChainReader), whose stores are all Postgres
    /// stores of one database then read a collateral in one statement (one snapshot of
    /// every schema) instead of this trait's separate reads. `None` (the default) keeps the
    /// separate reads. Only the Postgres store answers `Some`: a decorator must not
    /// forward it, or the one-statement read would go around the decorator.
    #[cfg(feature = "postgres")]
    fn as_postgres(&self) -> Option<&crate::store::PostgresStore> {
        None
    }

    /// One balance, confirmed and pending (zero if never set).
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        Ok(self
            .user_balances(key.user)
            .await?
            .into_iter()
            .find(|(asset, _)| *asset == key.asset)
            .map(|(_, view)| view)
            .unwrap_or_default())
    }
}
