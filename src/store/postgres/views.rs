//! Current balances of many users in one query: the collateral read path.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use sqlx::Row;

use super::PostgresStore;
use super::codec::{address, db};
use super::read::numeric;
use crate::error::StoreError;
use crate::model::{AssetId, BalanceView, UserId};

/// A key's confirmed row and latest pending row, as read.
type Rows = (Option<U256>, Option<U256>);

impl PostgresStore {
    /// Confirmed and pending views of each user's balances, by asset, in the order asked:
    /// one query (`UNNEST … WITH ORDINALITY` joined on the primary key of both partitions),
    /// balances sent as binary `NUMERIC`.
    pub(super) async fn views_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&[u8]> = users.iter().map(|u| u.as_slice()).collect();
        let rows = sqlx::query(
            "SELECT k.i, b.asset, b.balance, b.block_status
             FROM UNNEST($1::bytea[]) WITH ORDINALITY AS k(u, i)
             JOIN user_current_balances b ON b.user_address = k.u
             ORDER BY k.i, b.asset, b.block_status DESC, b.block_number",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db(format!("read balances of {} users", users.len())))?;
        // Per user: asset → (confirmed, latest pending); pending rows ascend by block.
        let mut views: Vec<BTreeMap<AssetId, Rows>> = vec![BTreeMap::new(); users.len()];
        for r in &rows {
            let i: i64 = r.try_get(0).map_err(db("read user ordinal"))?;
            let slot = usize::try_from(i - 1)
                .ok()
                .and_then(|i| views.get_mut(i))
                .ok_or_else(|| StoreError::OutOfRange {
                    backend: "postgres",
                    column: "ordinality",
                    value: i.to_string(),
                })?;
            let asset = address(
                &r.try_get::<Vec<u8>, _>(1).map_err(db("read asset"))?,
                "asset",
            )?;
            let value = numeric(r, 2, "balance")?;
            let entry = slot.entry(asset).or_default();
            match r.try_get::<i16, _>(3).map_err(db("read status"))? {
                1 => entry.0 = Some(value),
                _ => entry.1 = Some(value),
            }
        }
        Ok(views
            .into_iter()
            .map(|user| {
                user.into_iter()
                    .map(|(asset, (confirmed, pending))| {
                        let confirmed = confirmed.unwrap_or_default();
                        let pending = pending.unwrap_or(confirmed);
                        (asset, BalanceView { confirmed, pending })
                    })
                    .collect()
            })
            .collect())
    }
}
