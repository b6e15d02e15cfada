//! The reader sides of the [`MemoryStore`]: balances, holders, the log and prices, each
//! read under one read lock.

use std::ops::RangeInclusive;

use async_trait::async_trait;

use super::Inner;
use super::MemoryStore;
use super::state::KeyState;
use crate::error::StoreError;
use crate::model::{AssetId, BalanceKey, BalanceView, BlockNumber, Price, PriceView, UserId};
use crate::traits::{
    BalanceReader, HistoryAt, HistoryError, LogReader, LogRecord, LogSide, LogStatus, PriceFeed,
    UserLog,
};

impl Inner {
    pub(super) fn key(&self, key: &BalanceKey) -> Option<&KeyState> {
        let user = self.users.get(&key.user)?;
        user.assets
            .iter()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, s)| s)
    }

    pub(super) fn key_mut(&mut self, key: &BalanceKey) -> Option<&mut KeyState> {
        let user = self.users.get_mut(&key.user)?;
        user.assets
            .iter_mut()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, s)| s)
    }

    /// A user's confirmed and pending balances, by asset.
    fn views(&self, user: UserId) -> Vec<(AssetId, BalanceView)> {
        let fin = self.window.finalized_number();
        self.users
            .get(&user)
            .map(|u| {
                u.assets
                    .iter()
                    .map(|(a, s)| (*a, self.to_balances(a, s.view(fin))))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl BalanceReader for MemoryStore {
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        let inner = self.read();
        let fin = inner.window.finalized_number();
        Ok(inner
            .key(&key)
            .map(|s| inner.to_balances(&key.asset, s.view(fin)))
            .unwrap_or_default())
    }

    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        Ok(self.read().views(user))
    }

    /// All users under one read lock: one state for the whole batch.
    async fn user_balances_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        let inner = self.read();
        Ok(users.iter().map(|u| inner.views(*u)).collect())
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        let inner = self.read();
        let mut users: Vec<UserId> = inner
            .holders
            .get(&asset)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        users.sort_unstable();
        Ok(users)
    }
}

#[async_trait]
impl LogReader for MemoryStore {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        let inner = self.read();
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: Vec<LogRecord> = inner
            .log_by_block
            .range(blocks)
            .flat_map(|(_, entries)| entries.iter().filter_map(|i| inner.log.get(*i)))
            .flat_map(|entry| entry.rows())
            .collect();
        rows.sort_by_key(|r| {
            (
                r.block.number,
                !r.log.is_correction(),
                r.log.log_index,
                r.ordinal,
                r.status != LogStatus::Reverted,
            )
        });
        Ok(rows)
    }

    async fn user_log(
        &self,
        key: BalanceKey,
        side: LogSide,
        limit: usize,
    ) -> Result<UserLog, HistoryError> {
        Ok(self.read().user_log(key, side, limit))
    }

    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<HistoryAt, HistoryError> {
        self.read().history_at(user, block)
    }

    async fn history_prices(
        &self,
        assets: &[AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<Price>>, HistoryError> {
        self.read().history_prices(assets, block)
    }
}

#[async_trait]
impl PriceFeed for MemoryStore {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        let inner = self.read();
        Ok(inner
            .prices
            .get(&asset)
            .map(|s| PriceView {
                confirmed: s.confirmed,
                pending: s.pending.last().copied().or(s.confirmed),
            })
            .unwrap_or_default())
    }

    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        let mut out = Vec::with_capacity(assets.len());
        for asset in assets {
            out.push(self.price(*asset).await?);
        }
        Ok(out)
    }
}
