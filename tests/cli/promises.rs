//! The CLI keeps the promises of its documentation: exit codes 0/1/2/3, bounded
//! arguments instead of panics or allocation aborts, a `verify` that checked nothing is a
//! failure, `backfill --reset` restarts a failed or finished backfill, and an interrupted
//! command leaves no statement running on the server.

use std::process::Stdio;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use crate::support;
use crate::support::cli::{self, stderr};
use crate::support::legacy;
use crate::support::pg::{database_url, fresh_pool, schema_of};

#[tokio::test]
async fn out_of_range_arguments_are_usage_errors_not_panics() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    for args in [
        vec!["simulate", "--users", "0"],
        vec!["simulate", "--users", "100000000000"],
        vec!["simulate", "--users", "18446744073709551615"],
        vec!["simulate", "--events", "1000000000000"],
        vec!["simulate", "--confirmations", "0"],
        vec![
            "backfill",
            "--high-water",
            "18446744073709551615",
            "--reset",
        ],
        vec!["verify", "--sample", "4294967295"],
        vec!["verify", "--sample", "0"],
        vec!["backfill", "--legacy-table", "a.b.c"],
        vec![
            "backfill",
            "--legacy-table",
            "t",
            "--legacy-user",
            "x; DROP TABLE y",
        ],
        vec![
            "backfill",
            "--legacy-table",
            "t",
            "--legacy-kind",
            "k",
            "--legacy-kind-codes",
            "1,2",
        ],
    ] {
        let out = cli::run(&schema, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    // A refused schema name is a usage error too.
    let out = cli::run(&"s".repeat(64), &["migrate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The bounds are not off by one: one user is a valid script.
    let out = cli::run(&schema, &["simulate", "--users", "1", "--steps", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test]
async fn verify_of_an_empty_or_mistyped_schema_fails_and_says_so() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    let out = cli::run(&schema, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("checked nothing"), "{}", stderr(&out));

    let typo = format!("{schema}_typo");
    for args in [
        vec!["verify"],
        vec!["verify", "--sample", "10"],
        vec!["cutover"],
    ] {
        let out = cli::run(&typo, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("no such schema"), "{}", stderr(&out));
    }
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&typo)
        .fetch_one(&pool)
        .await
        .expect("look up");
    assert_eq!(created, 0, "verify must not create the mistyped schema");
}

#[tokio::test]
async fn backfill_reset_restarts_a_failed_or_finished_backfill() {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    legacy::create_table(&pool, "legacy_log").await;
    let user = legacy::hex_address(7);
    let asset = legacy::hex_address(160);
    // A debit without its credit: the history folds to -5 and the merge refuses it.
    sqlx::query("INSERT INTO legacy_log VALUES (2, 0, $1, $2, -5, 'confirmed')")
        .bind(&user)
        .bind(&asset)
        .execute(&pool)
        .await
        .expect("fill");
    let backfill = |extra: &[&str]| {
        let mut args = vec!["backfill", "--legacy-table", "legacy_log"];
        args.extend_from_slice(extra);
        cli::run(&schema, &args)
    };
    let out = backfill(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("outside 0..2^256"),
        "{}",
        stderr(&out)
    );
    // The missing credit is restored, but the committed fold still holds -5: resuming
    // cannot succeed.
    sqlx::query("INSERT INTO legacy_log VALUES (1, 0, $1, $2, 12, 'confirmed')")
        .bind(&user)
        .bind(&asset)
        .execute(&pool)
        .await
        .expect("fix the history");
    let out = backfill(&[]);
    assert_eq!(out.status.code(), Some(1), "resuming replays the bad fold");
    let out = backfill(&["--reset"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("reset the backfill"), "{text}");
    let balance: String = sqlx::query_scalar(
        "SELECT balance::text FROM user_current_balances WHERE block_status = 1",
    )
    .fetch_one(&pool)
    .await
    .expect("merged");
    assert_eq!(balance, "7");
    let out = cli::run(&schema, &["verify", "--legacy-table", "legacy_log"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A finished backfill restarts too (here with an explicit high-water mark).
    let out = backfill(&["--reset", "--high-water", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("was Done") && text.contains("up to block 5"),
        "{text}"
    );

    // After the cutover, a reset would switch readers back: refused.
    let out = cli::run(&schema, &["cutover", "--legacy-table", "legacy_log"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = backfill(&["--reset"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cutover --rollback"),
        "{}",
        stderr(&out)
    );

    // A table that disagrees with the log: exit 3.
    pool.execute("UPDATE user_confirmed_balances SET balance = 8")
        .await
        .expect("corrupt");
    let out = cli::run(&schema, &["verify", "--legacy-table", "legacy_log"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[tokio::test]
async fn an_interrupted_verify_leaves_no_statement_running() {
    for signal in ["-INT", "-TERM"] {
        interrupt_a_waiting_verify(signal).await;
    }
}

async fn interrupt_a_waiting_verify(signal: &str) {
    let pool = fresh_pool().await;
    let schema = schema_of(&pool).await;
    // Another session locks the table verify reads, so verify's query waits on the server.
    let mut locker = PgConnection::connect(&database_url())
        .await
        .expect("connect");
    locker
        .execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
        .await
        .expect("search_path");
    locker.execute("BEGIN").await.expect("begin");
    locker
        .execute("LOCK TABLE user_current_balances IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let child = cli::command(&schema)
        .args(["--lock-timeout", "0", "verify"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let tag = format!("reorg-collateral/{}", child.id());
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1
             AND state = 'active' AND wait_event_type = 'Lock'",
        )
        .bind(&tag)
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity")
    };
    let mut blocked = false;
    for _ in 0..600 {
        if waiting().await > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        blocked,
        "verify's statement reaches the server and waits on the lock"
    );
    assert!(
        support::process::signal_child(&child, signal),
        "kill {signal}"
    );
    let out = child.wait_with_output().expect("the CLI exits");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{signal}: {err}");
    assert!(err.contains("interrupted"), "{signal}: {err}");
    // The server-side statement was cancelled, not left waiting for the lock.
    let mut gone = false;
    for _ in 0..600 {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
        )
        .bind(&tag)
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity");
        if active == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Checked while the lock is still held: an uncancelled statement would still wait.
    assert!(gone, "no statement of the interrupted CLI is left running");
    locker.execute("ROLLBACK").await.expect("release");
}
