//! TLS against local servers with a generated certificate: a `redis-server` that speaks
//! TLS only and a private Postgres cluster with `ssl = on`. The test CA is trusted through
//! the documented options (`RedisCacheConfig::tls_root_cert`, `sslrootcert=` in the
//! Postgres URL); without it, verification refuses the server.

use std::process::Command;

use alloy_primitives::Address;
use reorg_collateral::CollateralCache;
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::model::CachedCollateral;
use reorg_collateral::store::PostgresStore;
use rust_decimal::Decimal;

use crate::support;

use support::tls::{Certs, TlsPostgres, TlsRedis};

use support::cli::BIN;

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let certs = Certs::generate();
    let server = TlsRedis::start(&certs);
    let config = RedisCacheConfig {
        tls_root_cert: Some(certs.ca()),
        ..RedisCacheConfig::default()
    };
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("rediss://{host}:{}", server.port);
        let cache = RedisCollateralCache::connect_with(&url, "tls", config.clone())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let entry = CachedCollateral {
            user: Address::repeat_byte(7),
            block: 3,
            hash: alloy_primitives::B256::ZERO,
            finalized: None,
            confirmed: Decimal::new(15, 1),
            pending: Decimal::new(25, 1),
            assets: std::collections::BTreeMap::new(),
            complete: true,
        };
        cache
            .put(std::slice::from_ref(&entry))
            .await
            .expect("put over TLS");
        assert_eq!(cache.get(entry.user).await.expect("get"), Some(entry));
    }
    // Without the CA the server's certificate is not trusted.
    let url = format!("rediss://localhost:{}", server.port);
    let err = RedisCollateralCache::connect(&url, "tls")
        .await
        .expect_err("an unknown CA is refused");
    assert!(
        err.to_string()
            .contains(&format!("localhost:{}", server.port)),
        "{err}"
    );
    // The CLI trusts the CA through --redis-ca-file (REDIS_CA_FILE): its Postgres is the
    // shared one, the cache this TLS server.
    let pool = support::pg::fresh_pool().await;
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&pool)
        .await
        .expect("schema");
    let cli = |ca: Option<&std::path::Path>| {
        let mut c = Command::new(BIN);
        c.env("DATABASE_URL", support::pg::database_url())
            .env("REDIS_URL", &url)
            .args(["--schema", &schema, "rebuild-cache", "--prefix", "tls_cli"]);
        if let Some(ca) = ca {
            c.arg("--redis-ca-file").arg(ca);
        }
        c.output().expect("run the CLI")
    };
    let out = cli(Some(&certs.ca()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(None);
    assert_eq!(out.status.code(), Some(1), "an unknown CA is refused");
    // A plain connection to the TLS port gets nowhere.
    let plain = format!("redis://127.0.0.1:{}", server.port);
    assert!(RedisCollateralCache::connect(&plain, "tls").await.is_err());
}

#[tokio::test]
async fn postgres_sslmode_with_a_private_ca() {
    let certs = Certs::generate();
    let server = TlsPostgres::start(&certs);
    let ca = certs.ca();
    let ca = ca.to_string_lossy();
    let port = server.port;
    for url in [
        format!(
            "postgres://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
        ),
        format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-ca&sslrootcert={ca}"),
        format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require"),
        format!(
            "host=localhost port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}"
        ),
    ] {
        let store = PostgresStore::connect_in_schema(&url, "tls_tenant")
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .expect("pg_stat_ssl");
        assert!(ssl, "{url}: the session is encrypted");
        store.pool().close().await;
    }
    // Verification without the CA refuses the server.
    let url = format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full");
    assert!(PostgresStore::connect(&url).await.is_err());
    // The CLI (which enables `tls`) connects the same way.
    let url = format!(
        "postgres://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    );
    let out = Command::new(BIN)
        .env("DATABASE_URL", &url)
        .args(["--schema", "tls_cli", "migrate"])
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
