//! Connections terminated mid-ingest: each failed step is a typed error, and retries end in
//! the oracle's state (no partial block).

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::{Backends, Harness};
use reorg_collateral::{Error, StoreError};
use support::pg::{OwnSessions, database_url, fresh_pool_named};

/// How long the test keeps mining under fire at most, waiting for at least one step cut off
/// and one landed (on a busy machine the injector may need more steps to hit one).
const UNDER_FIRE: Duration = Duration::from_secs(240);
/// Steps mined under fire at least.
const MIN_STEPS: u64 = 60;

/// Terminates every connection of this test's schema pool (by application name) in a loop
/// while the watcher ingests; each failed step is a typed error and is retried, and the
/// final state equals the oracle (so no partial block was ever committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_typed_errors_and_never_partial_blocks() {
    let sessions = OwnSessions::new("faults");
    let pool = fresh_pool_named(sessions.application_name()).await;
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let backends = Backends::new(store.clone());
    let mut h = Harness::new(backends, 4).await;

    let killer_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url())
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (stop, sessions) = (stop.clone(), sessions.clone());
        tokio::spawn(async move {
            let mut killed = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Only this test's pool carries this application name.
                killed += sessions.terminate(&killer_pool, "TRUE").await.len() as u64;
                // Irregular gaps: some steps are cut off mid-transaction, others commit.
                let pause = [2u64, 9, 1, 25, 4, 60][(killed % 6) as usize];
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            killed
        })
    };
    let (mut errors, mut landed) = (0, 0);
    // At least `MIN_STEPS` steps, and on until one was cut off and one landed (bounded:
    // the assertions below say which never happened).
    let deadline = Instant::now() + UNDER_FIRE;
    let mut i = 0u64;
    while i < MIN_STEPS || ((errors == 0 || landed == 0) && Instant::now() < deadline) {
        i += 1;
        h.chain.mine(|b| {
            for u in 0..5u8 {
                b.deposit(
                    h.assets[(u % 3) as usize].id,
                    h.users[u as usize],
                    U256::from(i * 7 + u64::from(u)),
                );
            }
        });
        // Retry until the step lands; a failure must be a typed store error.
        for _ in 0..50 {
            match h.watcher.sync().await {
                Ok(_) => {
                    landed += 1;
                    break;
                }
                Err(Error::Store(StoreError::Backend { .. })) => errors += 1,
                Err(other) => panic!("unexpected error kind: {other}"),
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = killer.await.unwrap();
    // Reconnect cleanly and compare with the oracle.
    h.restart().await;
    h.sync().await;
    h.check().await;
    eprintln!(
        "terminated {killed} backends, {errors} failed steps retried, {landed} steps landed under fire"
    );
    assert!(killed > 0, "the fault injector never hit a connection");
    assert!(errors > 0, "no step was cut off by a dropped connection");
    assert!(
        landed > 0,
        "no step committed while connections were being dropped"
    );
}
