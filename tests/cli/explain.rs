//! `reorg-collateral explain`: the text and the JSON of a simulated user's explanation,
//! and `--block` refused before `history-indexes`, answered after it.

use crate::support;

use reorg_collateral::source::ScriptedChain;
use support::cli;
use support::pg::{fresh_pool, schema_of};

#[tokio::test]
async fn explain_prints_text_and_json_and_reads_a_past_block_once_indexed() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let run = |args: &[&str]| cli::run(&schema, args);
    let sim = run(&["simulate", "--steps", "30", "--users", "4"]);
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let user = ScriptedChain::demo_user(0).to_string();

    let text = run(&["explain", &user, "--limit", "3"]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("total confirmed"), "{text}");
    assert!(text.contains("block #"), "the log rows are shown: {text}");

    let json = run(&["explain", &user, "--json"]);
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["user"].as_str(), Some(user.as_str()));
    assert!(!v["assets"].as_array().expect("assets").is_empty(), "{v}");
    let fin = v["finalized"]
        .as_u64()
        .expect("a finalized height")
        .to_string();

    let refused = run(&["explain", &user, "--block", &fin]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("history index"), "{err}");

    let built = run(&["history-indexes"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let at = run(&["explain", &user, "--block", &fin, "--json"]);
    assert!(
        at.status.success(),
        "{}",
        String::from_utf8_lossy(&at.stderr)
    );
    let c: serde_json::Value = serde_json::from_slice(&at.stdout).expect("JSON");
    assert_eq!(c["block"].as_u64().map(|b| b.to_string()), Some(fin));
}
