//! Opening an existing store without migrating it: for read-only tools and roles that may
//! not create anything (no `CREATE` on the database or the schema). The schema must exist
//! and hold every migration of this build; a schema that is behind is
//! [`StoreError::SchemaBehind`] instead of a store whose queries fail one by one.

use sqlx::{PgConnection, Row};

use super::codec::{BACKEND, db};
use super::{MIGRATOR, PostgresConfig, PostgresStore, connect};
use crate::error::StoreError;

impl PostgresStore {
    /// Connects to `url` like [`connect_with`](Self::connect_with) but creates nothing and
    /// runs no migration: a missing schema is [`StoreError::Config`] (whatever
    /// `config.create_schema` says), and one lacking a migration of this build is
    /// [`StoreError::SchemaBehind`] naming the missing versions. A schema migrated further
    /// (by a newer build) is accepted. Needs only `USAGE` on the schema and the privileges
    /// of the statements the caller then runs (e.g. `SELECT` for `verify`).
    pub async fn open_existing(
        url: &str,
        schema: Option<&str>,
        config: &PostgresConfig,
    ) -> Result<Self, StoreError> {
        let config = PostgresConfig {
            create_schema: false,
            ..config.clone()
        };
        let pool = connect::connect_pool(url, schema, &config).await?;
        let store = Self::new(pool).with_operation_deadline(config.operation_deadline);
        let (current, missing) = store
            .bounded("check the schema version", async |conn, _| {
                let current: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db("read the current schema"))?;
                Ok((current, missing_migrations(conn).await?))
            })
            .await?;
        if missing.is_empty() {
            return Ok(store);
        }
        store.pool().close().await;
        Err(StoreError::SchemaBehind {
            backend: BACKEND,
            schema: current.unwrap_or_else(|| "(none on the search_path)".to_owned()),
            missing,
        })
    }
}

/// The versions of this build's migrations that the schema on the `search_path` has not
/// applied successfully (all of them when it has no migration table).
pub(super) async fn missing_migrations(conn: &mut PgConnection) -> Result<Vec<i64>, StoreError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(db("look up the migration table"))?;
    let applied: Vec<i64> = match table {
        None => Vec::new(),
        Some(_) => sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await
            .map_err(db("read the applied migrations"))?
            .iter()
            .map(|r| r.try_get::<i64, _>("version"))
            .collect::<Result<_, _>>()
            .map_err(db("read a migration version"))?,
    };
    Ok(MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

/// The latest migration of this build.
pub(super) fn build_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The latest migration the schema on the `search_path` has applied successfully (`None`:
/// none, or no migration table).
pub(super) async fn applied_version(conn: &mut PgConnection) -> Result<Option<i64>, StoreError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(db("look up the migration table"))?;
    if table.is_none() {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .map_err(db("read the latest applied migration"))
}
