//! Current balances of many users in one query: the collateral read path.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::U256;
use sqlx::Row;

use sqlx::PgConnection;

use super::PostgresStore;
use super::codec::{address, db};
use super::read::numeric;
use crate::error::StoreError;
use crate::model::{AssetId, BalanceView, UserId};

/// A key's confirmed row and latest pending row, as read.
type Rows = (Option<U256>, Option<U256>);

impl PostgresStore {
    /// Confirmed and pending views of each user's balances, by asset, in the order asked
    /// ([`views_on`] on a pooled connection, under the operation deadline).
    pub(super) async fn views_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("read balances of {} users", users.len());
        self.bounded(&what, async |conn, _| views_on(conn, users, &what).await)
            .await
    }
}

/// Confirmed and pending views of each user's balances, by asset, in the order asked, read
/// on `conn` (a pooled connection or a replica's snapshot transaction): one query,
/// `user_address = ANY($1)` on the primary key of both partitions (an `UNNEST` join would
/// be planned as a scan of the whole table), balances sent as binary `NUMERIC`. An error
/// names `what`.
pub(super) async fn views_on(
    conn: &mut PgConnection,
    users: &[UserId],
    what: &str,
) -> Result<Vec<Vec<(AssetId, BalanceView)>>, StoreError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&[u8]> = users.iter().map(|u| u.as_slice()).collect();
    let rows = sqlx::query(
        "SELECT user_address, asset, balance, block_status FROM user_current_balances
         WHERE user_address = ANY($1)
         ORDER BY user_address, asset, block_status DESC, block_number",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await
    .map_err(db(what))?;
    // Per user: asset → (confirmed, latest pending); pending rows ascend by block.
    let mut found: HashMap<UserId, BTreeMap<AssetId, Rows>> = HashMap::new();
    for r in &rows {
        let user = address(
            &r.try_get::<Vec<u8>, _>(0).map_err(db("read user"))?,
            "user_address",
        )?;
        let asset = address(
            &r.try_get::<Vec<u8>, _>(1).map_err(db("read asset"))?,
            "asset",
        )?;
        let value = numeric(r, 2, "balance")?;
        let entry = found.entry(user).or_default().entry(asset).or_default();
        match r.try_get::<i16, _>(3).map_err(db("read status"))? {
            1 => entry.0 = Some(value),
            _ => entry.1 = Some(value),
        }
    }
    Ok(users
        .iter()
        .map(|user| {
            found
                .get(user)
                .into_iter()
                .flatten()
                .map(|(asset, (confirmed, pending))| {
                    let confirmed = confirmed.unwrap_or_default();
                    let pending = pending.unwrap_or(confirmed);
                    (*asset, BalanceView { confirmed, pending })
                })
                .collect()
        })
        .collect())
}
