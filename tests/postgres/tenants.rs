//! Tenants cannot collide: schema names Postgres would truncate or that it reserves are
//! refused with a typed configuration error, and index names derived from long legacy
//! table names cannot truncate into the table's own name.

use reorg_collateral::error::StoreError;
use reorg_collateral::migration::{Backfill, History, LegacyLog, MigrationError};
use reorg_collateral::store::PostgresStore;
use sqlx::AssertSqlSafe;

use crate::support;

use support::legacy;
use support::pg::{database_url, fresh_pool, schema_of, unique_schema_name};

#[tokio::test]
async fn long_and_reserved_schema_names_are_refused() {
    let url = database_url();
    // Two tenants of 69 characters that share their first 63: Postgres would make them one.
    let a = format!("tenant_{}_a", "x".repeat(60));
    let b = format!("tenant_{}_b", "x".repeat(60));
    assert_eq!(a.len(), 69);
    for schema in [
        a.as_str(),
        b.as_str(),
        &"s".repeat(64),
        "information_schema",
        "pg_catalog",
        "pg_toast",
        "pg_tenant",
        "Tenant",
        "tenant-a",
        "",
    ] {
        let err = PostgresStore::connect_in_schema(&url, schema)
            .await
            .expect_err("refused");
        match &err {
            StoreError::Config { what, value, .. } => {
                assert_eq!(*what, "schema name");
                assert_eq!(value, schema);
            }
            other => panic!("{schema:?}: expected a configuration error, got {other:?}"),
        }
        assert!(err.to_string().contains("refused"), "{err}");
    }
    // Nothing was created for the refused names.
    let pool = fresh_pool().await;
    let truncated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = left($1, 63)")
            .bind(&a)
            .fetch_one(&pool)
            .await
            .expect("look up");
    assert_eq!(truncated, 0);

    // 63 bytes is the limit, and the schema gets exactly that name.
    // Unique per test process: two suites run at once in CI.
    let mut longest = format!("{}_", unique_schema_name());
    longest.push_str(&"z".repeat(63 - longest.len()));
    assert_eq!(longest.len(), 63);
    let store = PostgresStore::connect_in_schema(&url, &longest)
        .await
        .expect("a 63-byte schema name is fine");
    assert_eq!(schema_of(store.pool()).await, longest);
    store.pool().close().await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {longest} CASCADE")))
        .execute(&pool)
        .await
        .expect("drop");
}

async fn legacy_table(pool: &sqlx::PgPool, name: &str) {
    legacy::create_table(pool, name).await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {name} VALUES (1, 0, '{}', '{}', 5, 'confirmed')",
        legacy::hex_address(1),
        legacy::hex_address(160)
    )))
    .execute(pool)
    .await
    .expect("fill");
}

async fn indexes_of(pool: &sqlx::PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("indexes")
}

#[tokio::test]
async fn long_legacy_table_names_get_their_key_index() {
    let pool = fresh_pool().await;
    // 63 bytes: `<table>_migration_key` would truncate to the table's own name and
    // `CREATE INDEX IF NOT EXISTS` would skip it silently.
    let first = format!("legacy_{}1", "q".repeat(55));
    let second = format!("legacy_{}2", "q".repeat(55));
    assert_eq!(first.len(), 63);
    let mut names = Vec::new();
    for table in [&first, &second] {
        legacy_table(&pool, table).await;
        let history = History::Legacy(LegacyLog::original_design(table));
        Backfill::new(pool.clone(), history.clone())
            .start(None)
            .await
            .expect("start");
        let indexes = indexes_of(&pool, table).await;
        assert_eq!(indexes.len(), 1, "{table}: {indexes:?}");
        assert!(
            indexes[0] != *table && indexes[0].len() <= 63,
            "{indexes:?}"
        );
        assert!(history.key_index_sql().contains(&indexes[0]));
        names.push(indexes[0].clone());
        // Idempotent: a second run finds the same index.
        sqlx::query(AssertSqlSafe(history.key_index_sql()))
            .execute(&pool)
            .await
            .expect("again");
        assert_eq!(indexes_of(&pool, table).await, indexes);
        sqlx::query("DELETE FROM migration_state")
            .execute(&pool)
            .await
            .expect("forget the backfill");
    }
    assert_ne!(
        names[0], names[1],
        "long names sharing a prefix get distinct indexes"
    );

    // A short name keeps its readable index name.
    legacy_table(&pool, "legacy_short").await;
    Backfill::new(
        pool.clone(),
        History::Legacy(LegacyLog::original_design("legacy_short")),
    )
    .start(None)
    .await
    .expect("start");
    assert_eq!(
        indexes_of(&pool, "legacy_short").await,
        vec!["legacy_short_migration_key".to_owned()]
    );

    // 64 bytes would name another (truncated) table: refused.
    let too_long = format!("legacy_{}", "q".repeat(57));
    let err = Backfill::new(
        pool.clone(),
        History::Legacy(LegacyLog::original_design(&too_long)),
    )
    .start(None)
    .await
    .expect_err("refused");
    assert!(
        matches!(&err, MigrationError::Mapping(m) if m.contains(&too_long) && m.contains("64 bytes")),
        "{err}"
    );
    let mut mapping = LegacyLog::original_design("legacy_short");
    mapping.user = "u".repeat(64);
    assert!(matches!(
        mapping.validate(),
        Err(MigrationError::Mapping(_))
    ));
}
