//! `reorg-collateral quarantine resume <asset> [--at-block N]`: the CLI process does not
//! write the resume (the running watcher is the store's single writer); it stores a
//! request the watcher reads at its next sync and writes in the first block at or above
//! `N` it applies. An asset that is not quarantined is refused (exit 1, nothing stored).

use alloy_primitives::U256;
use reorg_collateral::model::ResumeRequest;
use reorg_collateral::traits::StoreWriter;

use crate::quarantine_setup::{A, Running, USER, quarantined_at_head, running_watcher, watcher_of};
use crate::support::cli;

#[tokio::test]
async fn quarantine_resume_is_a_request_the_running_watcher_writes() {
    let Running {
        schema,
        store,
        chain,
        mut watcher,
    } = running_watcher().await;
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
    });
    watcher.sync().await.expect("sync");
    // Not quarantined: refused, nothing stored.
    let refused = cli::run(&schema, &["quarantine", "resume", &A.to_string()]);
    assert_eq!(refused.status.code(), Some(1), "{}", cli::stderr(&refused));
    assert!(cli::stderr(&refused).contains("not quarantined"));

    chain.mine(|blk| {
        blk.withdraw(A, USER, U256::from(6));
    });
    watcher.sync().await.expect("a quarantine is not a stall");
    assert_eq!(quarantined_at_head(&store).await, vec![A]);

    // Resume from block head + 3: the next two blocks do not carry it.
    let at = chain.head_number() + 3;
    let out = cli::run(
        &schema,
        &[
            "quarantine",
            "resume",
            &A.to_string(),
            "--at-block",
            &at.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", cli::stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("at or above #{at}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(quarantined_at_head(&store).await, vec![A], "only a request");
    for _ in 0..2 {
        chain.mine(|blk| {
            blk.deposit(A, USER, U256::from(1));
        });
        watcher.sync().await.expect("sync");
        assert_eq!(quarantined_at_head(&store).await, vec![A], "below #{at}");
    }
    chain.mine(|_| {});
    let report = watcher.sync().await.expect("sync");
    assert_eq!(
        report
            .resumed
            .iter()
            .map(|(a, b)| (*a, b.number))
            .collect::<Vec<_>>(),
        vec![(A, at)]
    );
    assert!(
        quarantined_at_head(&store).await.is_empty(),
        "resumed at #{at}"
    );
    // Folds again from the block after it; the request was written once.
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(2));
    });
    let report = watcher.sync().await.expect("sync");
    assert!(report.resumed.is_empty());
    // The resume is pending: the confirmed side stays quarantined until it finalizes.
    let list = cli::run(&schema, &["quarantine", "list"]);
    assert!(list.status.success(), "{}", cli::stderr(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("{A} confirmed quarantined")),
        "{text}"
    );
}

/// The request stays stored until the block carrying its resume commits: a watcher that
/// read it and is stopped before that block (a crash) leaves it to the next watcher.
#[tokio::test]
async fn a_resume_request_survives_a_failure_between_reading_and_writing() {
    let Running {
        store,
        chain,
        mut watcher,
        ..
    } = running_watcher().await;
    chain.mine(|blk| {
        blk.deposit(A, USER, U256::from(5));
    });
    chain.mine(|blk| {
        blk.withdraw(A, USER, U256::from(6));
    });
    watcher.sync().await.expect("a quarantine is not a stall");
    assert_eq!(quarantined_at_head(&store).await, vec![A]);

    let at = chain.head_number() + 2;
    let request = ResumeRequest {
        asset: A,
        at_block: Some(at),
    };
    store.request_resume(request).await.expect("request");
    chain.mine(|_| {});
    // Read and queued; the block written is below `at`, so it carries no resume.
    let report = watcher.sync().await.expect("sync");
    assert!(report.resumed.is_empty());
    drop(watcher);
    assert_eq!(
        store.resume_requests().await.expect("requests"),
        vec![request],
        "read, not removed"
    );

    let mut watcher = watcher_of(&store, &chain).await;
    chain.mine(|_| {});
    let report = watcher.sync().await.expect("sync after the restart");
    assert_eq!(
        report
            .resumed
            .iter()
            .map(|(a, b)| (*a, b.number))
            .collect::<Vec<_>>(),
        vec![(A, at)]
    );
    assert!(quarantined_at_head(&store).await.is_empty());
    assert!(
        store.resume_requests().await.expect("requests").is_empty(),
        "removed once the resume committed"
    );
}
