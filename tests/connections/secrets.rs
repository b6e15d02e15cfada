//! No error, help text or log line carries a password: every error path that names a
//! server is checked for the secret (its message, its source chain and its Debug form).

use std::process::Command;

use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::store::PostgresStore;

use crate::support;

use support::cli::BIN;
const SECRET: &str = "Pw_s3cr3t_XyZ";

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Every text an error exposes: its message, each source's message, and its Debug form.
fn texts(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{e}\n{e:?}\n");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} leaks the password: {text}");
    // Nor a percent-encoded or partial form of it.
    assert!(
        !text.contains("s3cr3t"),
        "{what} leaks part of the password: {text}"
    );
}

#[tokio::test]
async fn postgres_connect_errors_never_contain_the_password() {
    let port = closed_port();
    for url in [
        format!("postgres://alice:{SECRET}@127.0.0.1:{port}/test"),
        format!("postgres://alice@127.0.0.1:{port}/test?password={SECRET}"),
        format!("postgres://alice@127.0.0.1:{port}/test?sslmode=disable&password={SECRET}"),
        format!("host=127.0.0.1 port={port} user=alice password={SECRET} dbname=test"),
        format!("host=127.0.0.1 port={port} user=alice password='{SECRET}' dbname=test"),
        // Unparseable forms: the input must not be echoed.
        format!("postgres://alice:{SECRET}@127.0.0.1:notaport/test"),
        format!("host=127.0.0.1 password='{SECRET}"),
        format!("host=127.0.0.1 password={SECRET} frobnicate=1"),
    ] {
        for schema in [None, Some("tenant_secrets")] {
            let err = match schema {
                None => PostgresStore::connect(&url).await,
                Some(s) => PostgresStore::connect_in_schema(&url, s).await,
            }
            .expect_err("nothing listens there");
            assert_no_secret(&format!("connect to {url:?}"), &texts(&err));
        }
    }
    // A refused connection names its cause (not "pool timed out").
    let err = PostgresStore::connect(&format!("postgres://alice:{SECRET}@127.0.0.1:{port}/test"))
        .await
        .expect_err("refused");
    let text = texts(&err);
    assert!(
        text.contains("127.0.0.1") && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("timed out"), "{text}");
}

#[tokio::test]
async fn redis_errors_never_contain_the_password() {
    let port = closed_port();
    for url in [
        format!("redis://:{SECRET}@127.0.0.1:{port}"),
        format!("redis://bob:{SECRET}@127.0.0.1:{port}/2"),
        format!("redis://bob:{SECRET}@[127.0.0.1:{port}"),
        format!("redis://bob:{SECRET}@127.0.0.1:{port}/notadb"),
    ] {
        let err = RedisCollateralCache::connect(&url, "p")
            .await
            .expect_err("nothing listens there");
        assert_no_secret(&format!("connect to {url:?}"), &texts(&err));
    }
    let err = RedisCollateralCache::connect(&format!("redis://:{SECRET}@127.0.0.1:{port}"), "p")
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // A wrong password on a live server: the server's refusal, not the password.
    let server = support::redis::PrivateRedis::start_with(&["--requirepass", "the_right_one"]);
    let url = format!("redis://:{SECRET}@127.0.0.1:{}", server.port);
    let err = RedisCollateralCache::connect(&url, "p")
        .await
        .expect_err("wrong password");
    assert_no_secret("a refused AUTH", &texts(&err));
}

#[test]
fn cli_help_never_prints_connection_strings() {
    let db = format!("postgres://alice:{SECRET}@db.example:5432/prod");
    let redis = format!("redis://:{SECRET}@cache.example:6379");
    for args in [
        vec!["--help"],
        vec!["-h"],
        vec!["rebuild-cache", "--help"],
        vec!["verify-cache", "--help"],
        vec!["verify", "--help"],
        vec!["help", "rebuild-cache"],
    ] {
        let out = Command::new(BIN)
            .env("DATABASE_URL", &db)
            .env("REDIS_URL", &redis)
            .args(&args)
            .output()
            .expect("run the CLI");
        assert!(out.status.success(), "{args:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = if args.contains(&"rebuild-cache") || args.contains(&"verify-cache") {
            "REDIS_URL"
        } else {
            "DATABASE_URL"
        };
        if args != ["verify", "--help"] {
            assert!(text.contains(env), "{args:?} documents {env}: {text}");
        }
        assert_no_secret(&format!("{args:?}"), &text);
        assert!(
            !text.contains("db.example") && !text.contains("cache.example"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn cli_errors_never_print_connection_strings() {
    let port = closed_port();
    for db in [
        format!("postgres://alice:{SECRET}@127.0.0.1:{port}/test"),
        format!("postgres://alice@127.0.0.1:{port}/test?password={SECRET}"),
        format!("host=127.0.0.1 port={port} password={SECRET}"),
    ] {
        for args in [vec!["migrate"], vec!["verify"]] {
            let out = Command::new(BIN)
                .env("DATABASE_URL", &db)
                .args(&args)
                .output()
                .expect("run the CLI");
            assert_eq!(out.status.code(), Some(1), "{args:?} with {db}");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("error:"), "{text}");
            assert_no_secret(&format!("{args:?} with {db}"), &text);
        }
    }
    // The store is reachable, Redis is not: the Redis error path.
    let pool = support::pg::fresh_pool().await;
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&pool)
        .await
        .expect("schema");
    let out = Command::new(BIN)
        .env("DATABASE_URL", support::pg::database_url())
        .env("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:{port}"))
        .args(["--schema", &schema, "rebuild-cache"])
        .output()
        .expect("run the CLI");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert_no_secret("rebuild-cache", &text);
}

/// An RPC URL's path and query (where providers put API keys) appear in no transport
/// error: a refused connection, and a server that accepts and hangs up at once.
#[cfg(feature = "rpc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_transport_errors_never_contain_the_api_key() {
    use reorg_collateral::BlockSource;
    use reorg_collateral::source::rpc::{RpcBlockSource, RpcConfig, TransportConfig};

    // Accepts and drops every connection: the request fails mid-exchange.
    let hang_up = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_up_port = hang_up.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in hang_up.incoming() {
            drop(conn);
        }
    });
    let mut config = RpcConfig::new(Default::default());
    config.transport = TransportConfig {
        max_retries: 0,
        ..TransportConfig::default()
    };
    for port in [closed_port(), hang_up_port] {
        for url in [
            format!("http://127.0.0.1:{port}/v3/{SECRET}"),
            format!("http://127.0.0.1:{port}/rpc?apikey={SECRET}&x=1"),
            format!("http://user:{SECRET}@127.0.0.1:{port}/"),
        ] {
            let source = RpcBlockSource::http(&url, config.clone()).expect("a valid URL");
            let err = source.chain_id().await.expect_err("nothing answers");
            let text = texts(&err);
            assert_no_secret(&format!("eth_chainId on port {port}"), &text);
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            let err = source.head().await.expect_err("nothing answers");
            assert_no_secret("eth_blockNumber", &texts(&err));
        }
    }
}
