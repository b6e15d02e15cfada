//! `reorg-collateral run --config FILE` against a Hardhat node, as docs/operations.md walks
//! an operator through it: deploy a token and a price feed, write the config, start the
//! service, and read `/health`, `/collateral/{user}`, `/metrics` and the `/updates` stream;
//! SIGTERM stops it gracefully. A bad config is refused up front, naming its line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use serde_json::Value;

use crate::dev_node::DevNode;
use crate::support::pg::{database_url, unique_schema_name};
use crate::support::redis::{redis_url, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn config(token: Address, feed: Address, schema: &str, prefix: &str, factor: u32) -> String {
    format!(
        r#"# reorg-collateral service
[chain]
endpoints = ["{{URL}}"]
confirmations = 2
finality = "depth"
poll_interval_ms = 100

[[assets]]
address = "{token}"
symbol = "TST"
decimals = 18
factor_bps = {factor}
decoder = "token"
feed = "{feed}"
feed_decimals = 8

[postgres]
schema = "{schema}"

[redis]
prefix = "{prefix}"

[http]
listen = "127.0.0.1:0"
"#
    )
}

fn service(path: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--database-url", &database_url(), "run", "--config"])
        .arg(path)
        .env("REDIS_URL", redis_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `GET path` on `addr`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the service");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Polls `check` every 100 ms until it returns `Some`, for at most a minute.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_a_node_and_serves_collateral_health_metrics_and_updates() {
    let node = DevNode::start().await;
    let token = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
    let feed = node
        .deploy("MockAggregator", &U256::from(8).abi_encode())
        .await;
    let (deployer, alice, bob) = (node.accounts[0], node.accounts[1], node.accounts[2]);
    node.transfer(token, deployer, alice, e18(1_000)).await;
    node.set_price(feed, 2 * 100_000_000).await; // $2
    node.mine(3).await;

    let (schema, prefix) = (unique_schema_name(), unique_prefix("service"));
    let dir = std::env::temp_dir().join(format!("rc-service-{schema}"));
    std::fs::create_dir_all(&dir).unwrap();

    // A bad config is refused before anything connects, naming the line.
    let bad = dir.join("bad.toml");
    let text = config(token, feed, &schema, &prefix, 20_000).replace("{URL}", &node.url);
    std::fs::write(&bad, text).unwrap();
    let out = service(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:12:") && stderr.contains("factor_bps 20000"),
        "{stderr}"
    );

    let path = dir.join("service.toml");
    let text = config(token, feed, &schema, &prefix, 8_000).replace("{URL}", &node.url);
    std::fs::write(&path, text).unwrap();
    let mut child = service(&path).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_owned();

    // Ready once it has caught up with the node.
    let head = node.head().await;
    let health = eventually("a ready /health", || {
        let (status, body) = get(&addr, "/health");
        let h = json(&body);
        (status == 200 && h["head"] == head).then_some(h)
    });
    assert_eq!(health["ready"], true);
    assert_eq!(health["finalized"], head - 2);
    assert_eq!(health["problems"], Value::Array(vec![]));

    // 1,000 tokens at $2 and an 80 % factor: 1,600, pending and (2 blocks deep) confirmed.
    let user = format!("/collateral/{alice}");
    let c = eventually("alice's collateral from the cache", || {
        let (status, body) = get(&addr, &user);
        assert_eq!(status, 200, "{body}");
        let c = json(&body);
        (c["source"] == "cache").then_some(c)
    });
    assert_eq!(c["block"], head);
    assert_eq!(c["pending"], "1600");
    assert_eq!(c["confirmed"], "1600");
    assert_eq!(c["complete"], true);
    assert_eq!(get(&addr, "/collateral/nobody").0, 400);

    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    for name in [
        "reorg_collateral_head_block{chain_id=\"31337\"}",
        "reorg_collateral_blocks_applied_total{chain_id=\"31337\"}",
        "reorg_collateral_apply_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }

    // The live stream: a transfer to bob arrives as an update naming him.
    let mut sse = TcpStream::connect(&addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(sse, "GET /updates HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut sse = BufReader::new(sse);
    let mut header = String::new();
    sse.read_line(&mut header).unwrap();
    assert!(header.contains("200"), "{header}");
    node.transfer(token, alice, bob, e18(10)).await;
    let bob_text = bob.to_string();
    let update = eventually("an update for bob", || {
        let mut line = String::new();
        sse.read_line(&mut line).ok()?;
        let data = line.strip_prefix("data: ")?;
        let u = json(data);
        u["users"]
            .as_array()?
            .iter()
            .any(|t| t["user"] == bob_text.as_str())
            .then_some(u)
    });
    assert_eq!(update["cause"], "step");

    // SIGTERM: a graceful stop, saying so.
    assert!(
        crate::support::process::signal_child(&child, "-TERM"),
        "SIGTERM the service"
    );
    let status = wait_exit(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");

    // Clean up the shared servers: this test's cache keys and schema.
    use reorg_collateral::CollateralCache;
    let cache = reorg_collateral::cache::RedisCollateralCache::connect(&redis_url(), &prefix)
        .await
        .expect("Redis reachable");
    cache.clear().await.expect("clear the test's cache keys");
    let store = reorg_collateral::store::PostgresStore::connect_in_schema(&database_url(), &schema)
        .await
        .expect("Postgres reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .expect("drop the test's schema");
    let _ = std::fs::remove_dir_all(&dir);
}
