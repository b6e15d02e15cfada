//! The schema's advisory locks are keyed by the schema itself: two tenants whose names
//! share a `hashtext()` value (a 32-bit hash: such pairs exist among a few hundred
//! thousand names) neither share the writer ownership nor the per-changeset writer lock.

use std::time::Duration;

use reorg_collateral::model::{AssetRegistry, StoreIdentity};
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::{PostgresStore, WRITER_LOCK_SQL};
use reorg_collateral::{StoreError, StoreWriter};
use sqlx::{Connection, Executor, PgConnection};

use crate::support;
use support::pg::{database_url, plain, unique_schema_name};

/// Two distinct schema names of the test-schema form (`t<secs>_<pid>_<n>`, so a later
/// run's cleanup drops them) with the same `hashtext()`, found by the server itself.
async fn colliding_names(conn: &mut PgConnection) -> (String, String) {
    let base = unique_schema_name();
    let prefix = base.rsplit_once('_').expect("t<secs>_<pid>_<n>").0;
    let pair: Option<(String, String)> = sqlx::query_as(
        "SELECT min(name), max(name) FROM (
           SELECT $1 || '_' || g AS name FROM generate_series(1000000, 1600000) g) names
         GROUP BY hashtext(name) HAVING count(*) > 1 LIMIT 1",
    )
    .bind(prefix)
    .fetch_optional(&mut *conn)
    .await
    .expect("search colliding names");
    let (a, b) = pair.expect("600001 names hold a hashtext collision");
    let same: bool = sqlx::query_scalar("SELECT hashtext($1) = hashtext($2)")
        .bind(&a)
        .bind(&b)
        .fetch_one(&mut *conn)
        .await
        .expect("hashtext");
    assert!(same && a != b, "{a} and {b} must collide");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_whose_names_share_a_hashtext_share_no_writer_lock() {
    let url = database_url();
    let mut admin = PgConnection::connect_with(&plain(&url))
        .await
        .expect("admin session");
    let (first, second) = colliding_names(&mut admin).await;
    let registry = AssetRegistry::new(ScriptedChain::demo_assets()).expect("registry");
    let identity = StoreIdentity::new(Some(1), &registry);
    let a = PostgresStore::connect_in_schema(&url, &first)
        .await
        .expect("store A");
    let b = PostgresStore::connect_in_schema(&url, &second)
        .await
        .expect("store B");

    // The ownership: each tenant's writer claims its own store.
    a.claim_writer(&identity)
        .await
        .expect("A claims its schema");
    b.claim_writer(&identity)
        .await
        .expect("B's schema is another store, whatever its name hashes to");
    // The same schema is still exclusive.
    let a2 = PostgresStore::connect_in_schema(&url, &first)
        .await
        .expect("a second handle on A's schema");
    let err = a2
        .claim_writer(&identity)
        .await
        .expect_err("A's schema has a writer");
    assert!(matches!(err, StoreError::WriterTaken { .. }), "{err:?}");

    // The per-changeset lock: held in A's schema, B's is free, A's is not.
    let mut holder = a.pool().begin().await.expect("begin in A");
    holder
        .execute(WRITER_LOCK_SQL)
        .await
        .expect("A's writer lock");
    for (schema, free) in [(&second, true), (&first, false)] {
        let mut other = PgConnection::connect_with(&plain(&url))
            .await
            .expect("session");
        other
            .execute(sqlx::AssertSqlSafe(format!(
                "SET search_path TO {schema}; SET lock_timeout = '300ms'"
            )))
            .await
            .expect("settings");
        let got = tokio::time::timeout(Duration::from_secs(60), other.execute(WRITER_LOCK_SQL))
            .await
            .expect("the lock wait is bounded by lock_timeout");
        assert_eq!(got.is_ok(), free, "writer lock of {schema}: {got:?}");
    }
    holder.rollback().await.expect("rollback");
    for schema in [&first, &second] {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .await
            .expect("drop the test schema");
    }
}
