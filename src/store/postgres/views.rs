//! Current balances of many users in one query: the collateral read path.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::U256;
use sqlx::Row;

use sqlx::PgConnection;

use super::PostgresStore;
use super::codec::{address, db};
use super::read::numeric;
use crate::error::StoreError;
use crate::model::{AssetId, AssetIndex, BalanceView, UserId};

/// A key's confirmed row and latest pending row, as read.
pub(super) type Rows = (Option<U256>, Option<U256>);

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
    // One statement, so balances and indexes are of one state: the balance rows, then
    // (kind 1) the confirmed and latest pending index of each rebasing asset among them.
    let rows = sqlx::query(
        "WITH b AS (SELECT user_address, asset, balance, block_status, block_number
                    FROM user_current_balances WHERE user_address = ANY($1))
         SELECT 0 AS kind, user_address, asset, balance, block_status, block_number, NULL::numeric AS den FROM b
         UNION ALL
         SELECT 1, NULL, i.asset, i.num, i.block_status, i.block_number, i.den FROM indexes i
         WHERE i.chain = 1 AND i.asset IN (SELECT asset FROM b)
           AND (i.block_status = 1 OR i.block_number =
                (SELECT max(j.block_number) FROM indexes j
                 WHERE j.chain = 1 AND j.asset = i.asset AND j.block_status = 0))
         ORDER BY kind, user_address, asset, block_status DESC, block_number",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await
    .map_err(db(what))?;
    // Per user: asset → (confirmed, latest pending); pending rows ascend by block.
    let mut found: HashMap<UserId, BTreeMap<AssetId, Rows>> = HashMap::new();
    // Rebasing assets: (confirmed index, pending index).
    let mut indexes: HashMap<AssetId, (Option<AssetIndex>, Option<AssetIndex>)> = HashMap::new();
    for r in &rows {
        let asset = address(
            &r.try_get::<Vec<u8>, _>(2).map_err(db("read asset"))?,
            "asset",
        )?;
        let value = numeric(r, 3, "balance")?;
        let confirmed = r.try_get::<i16, _>(4).map_err(db("read status"))? == 1;
        if r.try_get::<i32, _>(0).map_err(db("read row kind"))? == 1 {
            let index = Some(AssetIndex {
                num: value,
                den: numeric(r, 6, "den")?,
            });
            let entry = indexes.entry(asset).or_default();
            if confirmed {
                entry.0 = index
            } else {
                entry.1 = index
            }
            continue;
        }
        let user = address(
            &r.try_get::<Vec<u8>, _>(1).map_err(db("read user"))?,
            "user_address",
        )?;
        let entry = found.entry(user).or_default().entry(asset).or_default();
        if confirmed {
            entry.0 = Some(value);
        } else {
            entry.1 = Some(value);
        }
    }
    Ok(views_of(users, &found, &indexes))
}

/// Each user's balance views (in `users` order, by asset) from the rows read: per user and
/// asset the confirmed and latest pending balance (`found`), and the confirmed and latest
/// pending index of each rebasing asset among them (`indexes`). A side without a row is
/// zero (confirmed) or the confirmed balance (pending).
pub(super) fn views_of(
    users: &[UserId],
    found: &HashMap<UserId, BTreeMap<AssetId, Rows>>,
    indexes: &HashMap<AssetId, (Option<AssetIndex>, Option<AssetIndex>)>,
) -> Vec<Vec<(AssetId, BalanceView)>> {
    // Shares as balances, each side with its own index (saturating, which a valid
    // UFragments index never needs).
    let convert = |index: Option<AssetIndex>, shares: U256| {
        index.map_or(shares, |i| i.balance(shares).unwrap_or(U256::MAX))
    };
    users
        .iter()
        .map(|user| {
            found
                .get(user)
                .into_iter()
                .flatten()
                .map(|(asset, (confirmed, pending))| {
                    let confirmed = confirmed.unwrap_or_default();
                    let pending = pending.unwrap_or(confirmed);
                    match indexes.get(asset) {
                        None => (*asset, BalanceView { confirmed, pending }),
                        Some((ci, pi)) => (
                            *asset,
                            BalanceView {
                                confirmed: convert(*ci, confirmed),
                                pending: convert(pi.or(*ci), pending),
                            },
                        ),
                    }
                })
                .collect()
        })
        .collect()
}
