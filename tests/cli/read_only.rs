//! The read-only commands open the store without migrating it: a real role without
//! `CREATE` (on a private cluster, where the test may create roles) can `verify`, a schema
//! behind this build is refused naming the missing migrations, and a URL of another
//! scheme than `postgres://` is refused before anything is created.

use std::process::Command;

use reorg_collateral::StoreError;
use reorg_collateral::store::{PostgresConfig, PostgresStore};
use sqlx::{Connection, Executor, PgConnection};

use crate::support::cli::{BIN, stderr};
use crate::support::cluster::PrivatePostgres;

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env("DATABASE_URL", url)
        .args(["--schema", "ro"])
        .args(args)
        .output()
        .expect("run the CLI")
}

#[tokio::test]
async fn a_role_without_create_verifies_and_a_behind_schema_is_refused() {
    let cluster = PrivatePostgres::start();
    let admin_url = cluster.url();
    let out = cli(&admin_url, &["simulate", "--steps", "20", "--users", "5"]);
    assert!(out.status.success(), "simulate: {}", stderr(&out));

    cluster.create_read_only_role("reader", "ro").await;
    let mut admin = PgConnection::connect(&admin_url).await.expect("admin");
    let (db_create, schema_create): (bool, bool) = sqlx::query_as(
        "SELECT has_database_privilege('reader', current_database(), 'CREATE'),
                has_schema_privilege('reader', 'ro', 'CREATE')",
    )
    .fetch_one(&mut admin)
    .await
    .expect("privileges");
    assert!(
        !db_create && !schema_create,
        "the role must not have CREATE"
    );
    let reader_url = admin_url.replace("postgres://postgres@", "postgres://reader@");

    let out = cli(&reader_url, &["verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify as reader: {}",
        stderr(&out)
    );
    let out = cli(&reader_url, &["verify", "--sample", "3"]);
    assert_eq!(out.status.code(), Some(0), "sampled: {}", stderr(&out));
    // Writing commands still need the privileges they need.
    let out = cli(&reader_url, &["migrate"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "migrate as reader: {}",
        stderr(&out)
    );

    // A schema behind this build: the newest migration is not applied.
    let newest: i64 = sqlx::query_scalar("SELECT max(version) FROM ro._sqlx_migrations")
        .fetch_one(&mut admin)
        .await
        .expect("newest migration");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE TEMP TABLE saved AS SELECT * FROM ro._sqlx_migrations WHERE version = {newest};
             DELETE FROM ro._sqlx_migrations WHERE version = {newest};"
        )))
        .await
        .expect("forget it");
    let out = cli(&reader_url, &["verify"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("schema ro is behind this build") && err.contains(&newest.to_string()),
        "{err}"
    );
    let opened = PostgresStore::open_existing(&reader_url, Some("ro"), &PostgresConfig::default())
        .await
        .expect_err("behind");
    match opened {
        StoreError::SchemaBehind {
            schema, missing, ..
        } => {
            assert_eq!((schema.as_str(), missing), ("ro", vec![newest]));
        }
        other => panic!("expected SchemaBehind, got {other:?}"),
    }
    // Once the schema holds it again, the reader verifies.
    admin
        .execute("INSERT INTO ro._sqlx_migrations SELECT * FROM saved")
        .await
        .expect("restore it");
    let out = cli(&reader_url, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A schema that does not exist is not created by a read-only open.
    let err = PostgresStore::open_existing(&admin_url, Some("nope"), &PostgresConfig::default())
        .await
        .expect_err("missing schema");
    assert!(matches!(err, StoreError::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn a_url_of_another_scheme_is_refused_before_anything_is_created() {
    let cluster = PrivatePostgres::start();
    let url = cluster.url();
    for scheme in ["mysql", "redis", "http"] {
        let other = url.replacen("postgres://", &format!("{scheme}://"), 1);
        let err =
            PostgresStore::connect_with(&other, Some("elsewhere"), &PostgresConfig::default())
                .await
                .expect_err("not a Postgres URL");
        match &err {
            StoreError::Config { reason, .. } => {
                assert!(reason.contains(&format!("scheme {scheme}://")), "{err}");
            }
            other => panic!("{scheme}: expected a typed refusal, got {other:?}"),
        }
        let out = Command::new(BIN)
            .env("DATABASE_URL", &other)
            .args(["--schema", "elsewhere", "migrate"])
            .output()
            .expect("run the CLI");
        assert_eq!(out.status.code(), Some(2), "{scheme}: {}", stderr(&out));
    }
    let mut admin = PgConnection::connect(&url).await.expect("admin");
    let created: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'elsewhere')",
    )
    .fetch_one(&mut admin)
    .await
    .expect("look up");
    assert!(
        !created,
        "nothing may be created through a non-Postgres URL"
    );
}
