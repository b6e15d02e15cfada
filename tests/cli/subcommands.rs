//! The CLI's surface: `--help` lists every subcommand, bad usage exits 2, `rebuild-cache`
//! fills Redis from the store, and a crate-native store verifies clean.

use crate::support;

use std::process::Command;

use reorg_collateral::source::ScriptedChain;
use support::cli;
use support::pg::{fresh_pool, schema_of};
use support::redis::redis_url;

#[tokio::test]
async fn the_cli_documents_its_subcommands_and_rebuilds_the_cache() {
    let help = Command::new(cli::BIN).arg("--help").output().expect("help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for sub in [
        "migrate",
        "simulate",
        "backfill",
        "verify",
        "cutover",
        "rebuild-cache",
        "run",
    ] {
        assert!(text.contains(sub), "--help lists {sub}: {text}");
    }
    let bad = Command::new(cli::BIN)
        .arg("frobnicate")
        .output()
        .expect("usage");
    assert_eq!(bad.status.code(), Some(2), "bad usage exits 2");

    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let run = |args: &[&str]| cli::run(&schema, args);
    let sim = run(&["simulate", "--steps", "30", "--users", "12"]);
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let redis_url = redis_url();
    let prefix = format!("test_cli_{schema}");
    let out = run(&[
        "rebuild-cache",
        "--redis-url",
        &redis_url,
        "--prefix",
        &prefix,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rebuilt the cache of 12 users"), "{text}");
    // stderr is a pipe, not a terminal: progress comes as log lines, without a bar.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("progress: cache ") && l.contains("users")),
        "{progress}"
    );
    assert!(
        !progress.contains("[="),
        "no bar drawn off a terminal: {progress}"
    );
    let cache = reorg_collateral::cache::RedisCollateralCache::connect(&redis_url, &prefix)
        .await
        .expect("Redis reachable");
    use reorg_collateral::CollateralCache;
    let entry = cache
        .get(ScriptedChain::demo_user(0))
        .await
        .expect("get")
        .expect("the user is cached");
    assert!(!entry.assets.is_empty());
    cache.clear().await.expect("clear");
    // A crate-native store verifies clean without any migration.
    let verified = run(&["verify"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
