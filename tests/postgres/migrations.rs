//! Upgrading a schema that holds data: migrations 0005 (current balances partitioned by
//! status) and 0006 (holders index) applied to a schema migrated to 0004 and filled, as a
//! deployment of the earlier version would be, keep every balance row and its meaning.

use crate::support;

use alloy_primitives::{Address, U256};
use reorg_collateral::model::BalanceKey;
use reorg_collateral::prelude::*;
use reorg_collateral::store::{PostgresStore, migrate};
use support::pg::empty_schema_pool;

/// A `user_current_balances` row: user, asset, balance as text, block, status.
type Row = (Vec<u8>, Vec<u8>, String, i64, i16);

/// Every row of `user_current_balances`, in a fixed order.
async fn all_rows(pool: &sqlx::PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT user_address, asset, balance::text, block_number, block_status
         FROM user_current_balances ORDER BY 1, 2, 5, 4",
    )
    .fetch_all(pool)
    .await
    .expect("read user_current_balances")
}

fn addr(byte: u8) -> Address {
    Address::repeat_byte(byte)
}

#[tokio::test]
async fn partitioning_keeps_every_balance_row() {
    let pool = empty_schema_pool("reorg_collateral_upgrade").await;
    sqlx::migrate!("./migrations")
        .run_to(4, &pool)
        .await
        .expect("migrations 0001..=0004 apply");

    // Confirmed balances of three users, pending rows of two unconfirmed blocks (user 1 is
    // touched by both), as the 0004 schema stores them.
    let (token, other) = (addr(0xA1), addr(0xA2));
    let rows: [(u8, Address, &str, i64, i16); 7] = [
        (1, token, "100", 10, 1),
        (2, token, "200", 9, 1),
        (
            3,
            other,
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            8,
            1,
        ),
        (1, token, "150", 11, 0),
        (1, token, "175", 12, 0),
        (2, other, "7", 12, 0),
        (4, token, "1", 11, 0),
    ];
    for (user, asset, balance, block, status) in rows {
        sqlx::query(
            "INSERT INTO user_current_balances (user_address, asset, balance, block_number, block_status)
             VALUES ($1, $2, $3::numeric, $4, $5)",
        )
        .bind(addr(user).as_slice())
        .bind(asset.as_slice())
        .bind(balance)
        .bind(block)
        .bind(status)
        .execute(&pool)
        .await
        .expect("a 0004 row");
    }
    let before = all_rows(&pool).await;

    migrate(&pool).await.expect("0005 and 0006 apply over data");

    let after = all_rows(&pool).await;
    assert_eq!(after, before, "every row kept, through the parent table");
    let split: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM user_confirmed_balances), (SELECT count(*) FROM user_pending_balances)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        split,
        (3, 4),
        "confirmed and pending rows in their partitions"
    );

    // The store reads the upgraded schema as it read the old one.
    let store = PostgresStore::new(pool);
    let key = |user: u8, asset: Address| BalanceKey {
        user: addr(user),
        asset,
    };
    let keys = [
        key(1, token),
        key(2, token),
        key(3, other),
        key(2, other),
        key(4, token),
    ];
    let at = |n: u64| {
        let store = &store;
        let keys = &keys;
        async move { store.balances_at(keys, n).await.unwrap() }
    };
    let n = |v: u64| U256::from(v);
    assert_eq!(at(10).await, vec![n(100), n(200), U256::MAX, n(0), n(0)]);
    assert_eq!(at(11).await, vec![n(150), n(200), U256::MAX, n(0), n(1)]);
    assert_eq!(at(12).await, vec![n(175), n(200), U256::MAX, n(7), n(1)]);
    assert_eq!(
        store.holders(token).await.unwrap(),
        vec![addr(1), addr(2), addr(4)],
        "confirmed holders by index, pending-only holders from the window"
    );
    assert_eq!(store.holders(other).await.unwrap(), vec![addr(2), addr(3)]);
}
