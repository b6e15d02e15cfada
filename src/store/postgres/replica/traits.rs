//! The reader traits on a replica: the values of [`PostgresReplica`]'s labelled reads
//! (lag-checked), for code written against [`BalanceReader`] / [`PriceFeed`] /
//! [`LogReader`].

use std::ops::RangeInclusive;

use async_trait::async_trait;

use super::PostgresReplica;
use crate::error::StoreError;
use crate::model::{AssetId, BalanceView, BlockNumber, PriceView, UserId};
use crate::traits::{BalanceReader, LogReader, LogRecord, PriceFeed};

#[async_trait]
impl BalanceReader for PostgresReplica {
    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        Ok(self
            .balances(&[user])
            .await?
            .value
            .pop()
            .unwrap_or_default())
    }

    /// One snapshot for all the users ([`PostgresReplica::balances`]).
    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        Ok(self.balances(users).await?.value)
    }

    /// The lag is checked first ([`PostgresReplica::state`]); the holders are then read in
    /// one statement (one snapshot, at least as recent as the one checked).
    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        self.state().await?;
        self.replica.holders(asset).await
    }
}

#[async_trait]
impl PriceFeed for PostgresReplica {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        Ok(self.prices(&[asset]).await?.value.pop().unwrap_or_default())
    }

    /// One snapshot for all the assets ([`PostgresReplica::prices`]).
    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        Ok(PostgresReplica::prices(self, assets).await?.value)
    }
}

#[async_trait]
impl LogReader for PostgresReplica {
    /// The lag is checked first ([`PostgresReplica::state`]); the log is then read in one
    /// statement.
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        self.state().await?;
        self.replica.log(blocks).await
    }
}
