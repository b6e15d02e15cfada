//! Faults against Postgres: a writer process killed at arbitrary points, connections
//! dropped mid-ingest, readers hammering the store while the writer ingests, bad input.
//! Each must end in exactly the state of an uninterrupted run, with no partial block.

use crate::support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use reorg_collateral::model::{
    AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader, LogId,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::{Backends, Harness, replay};
use reorg_collateral::traits::{LogStatus, PriceFeed};
use reorg_collateral::{EngineConfig, EngineError, Error, StoreError, Watcher, WatcherConfig};
use sqlx::Executor;
use support::pg::{database_url, fresh_pool_named, fresh_store, unique_schema_name};

const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");
const STEPS: usize = 80;
const EVENTS: usize = 25;
const USERS: usize = 30;

fn simulate(schema: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--database-url",
        &database_url(),
        "--schema",
        schema,
        "simulate",
    ])
    .args([
        "--seed",
        "7",
        "--steps",
        &STEPS.to_string(),
        "--events",
        &EVENTS.to_string(),
    ])
    .args(["--users", &USERS.to_string(), "--confirmations", "6"])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Everything observable in a store, for comparing two runs.
async fn dump(store: &PostgresStore) -> String {
    let mut out = format!("{:?}\n", store.window().await.unwrap());
    for i in 0..USERS {
        out += &format!(
            "{:?}\n",
            store
                .user_balances(ScriptedChain::demo_user(i))
                .await
                .unwrap()
        );
    }
    for a in ScriptedChain::demo_assets() {
        out += &format!("{:?}\n", store.price(a.id).await.unwrap());
    }
    let log = store.log(0..=u64::MAX).await.unwrap();
    let canonical: Vec<_> = log
        .iter()
        .filter(|r| r.status != LogStatus::Reverted)
        .collect();
    out += &format!("{canonical:?}\n");
    out
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_resumes_to_the_uninterrupted_state() {
    let url = database_url();
    let (clean, crashed) = (unique_schema_name(), unique_schema_name());
    let out = simulate(&clean).output().expect("run uninterrupted writer");
    assert!(
        out.status.success(),
        "uninterrupted run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kill the writer (SIGKILL: no cleanup, transactions cut off) at spread-out moments.
    let mut kills = 0;
    for delay_ms in [150u64, 400, 90, 700, 260, 1_100] {
        let mut child = simulate(&crashed).spawn().expect("spawn writer");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if child.try_wait().expect("poll writer").is_none() {
            child.kill().expect("kill writer");
            kills += 1;
        }
        let _ = child.wait();
    }
    let out = simulate(&crashed).output().expect("final run");
    assert!(
        out.status.success(),
        "resumed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kills >= 2,
        "the writer finished too fast to be killed mid-run ({kills} kills)"
    );

    let a = PostgresStore::connect_in_schema(&url, &clean)
        .await
        .unwrap();
    let b = PostgresStore::connect_in_schema(&url, &crashed)
        .await
        .unwrap();
    assert_eq!(
        dump(&a).await,
        dump(&b).await,
        "crashed-and-resumed run differs from the uninterrupted one"
    );

    // And both equal the replay oracle of the script's final chain.
    let mut script = ScriptedChain::new(
        7,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        ScriptedChain::demo_assets(),
    );
    for _ in 0..STEPS {
        script.step(EVENTS);
    }
    let canonical = script.chain.canonical();
    let fin = b.window().await.unwrap().finalized_number();
    assert_eq!(fin, Some(script.chain.head_number() - 6));
    let expected = replay(&canonical, fin);
    for i in 0..USERS {
        for asset in ScriptedChain::demo_assets() {
            let key = BalanceKey {
                user: ScriptedChain::demo_user(i),
                asset: asset.id,
            };
            assert_eq!(
                b.balance(key).await.unwrap(),
                expected.balance(&key),
                "balance {key:?}"
            );
        }
    }
    for schema in [clean, crashed] {
        let pool = a.pool();
        let _ = pool
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await;
    }
}

/// Terminates every connection of this test's schema pool (by application name) in a loop
/// while the watcher ingests; each failed step is a typed error and is retried, and the
/// final state equals the oracle (so no partial block was ever committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_typed_errors_and_never_partial_blocks() {
    let app = format!("faults_{}", rand_suffix());
    let pool = fresh_pool_named(&app).await;
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let backends = Backends::new(store.clone(), store.clone());
    let mut h = Harness::new(backends, 4).await;

    let killer_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url())
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (stop, app) = (stop.clone(), app.clone());
        tokio::spawn(async move {
            let mut killed = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Only this test's pool carries this application name.
                let n: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid() AND application_name = $1",
                )
                .bind(&app)
                .fetch_all(&killer_pool)
                .await
                .unwrap_or_default();
                killed += n.len() as u64;
                // Irregular gaps: some steps are cut off mid-transaction, others commit.
                let pause = [2u64, 9, 1, 25, 4, 60][(killed % 6) as usize];
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            killed
        })
    };
    let (mut errors, mut landed) = (0, 0);
    for i in 0..60u8 {
        h.chain.mine(|b| {
            for u in 0..5u8 {
                b.deposit(
                    h.assets[(u % 3) as usize].id,
                    h.users[u as usize],
                    U256::from(u64::from(i) * 7 + u64::from(u)),
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

/// One writer ingests while 8 readers hammer collateral and balance reads. No deadlock is
/// recorded, and every confirmed value a reader saw is the oracle's confirmed value at a
/// finalized height between the ones it saw before and after the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_deadlock_or_see_confirmed_ahead_of_commits() {
    let store = Arc::new(fresh_store().await);
    let deadlocks = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let before = deadlocks().await;
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).unwrap();
    let mut script = ScriptedChain::new(
        11,
        1,
        (0..USERS).map(ScriptedChain::demo_user).collect(),
        assets.clone(),
    );
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 6));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, script.chain.clone(), store.clone())
        .await
        .unwrap();
    watcher.sync().await.unwrap();
    let valuator = watcher.valuator().clone();

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..8usize {
        let (store, done, valuator, assets) = (
            store.clone(),
            done.clone(),
            valuator.clone(),
            assets.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = r;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let user = ScriptedChain::demo_user(i % USERS);
                let f1 = store.window().await.unwrap().finalized_number();
                let views = store.user_balances(user).await.unwrap();
                let _ = reorg_collateral::reader::CollateralReader::new(
                    store.clone(),
                    valuator.clone(),
                )
                .collateral_at(user, Default::default())
                .await
                .unwrap();
                let f2 = store.window().await.unwrap().finalized_number();
                for (asset, view) in views {
                    seen.push((BalanceKey { user, asset }, f1, f2, view.confirmed));
                }
                let _ = store
                    .balance(BalanceKey {
                        user,
                        asset: assets[i % 2].id,
                    })
                    .await
                    .unwrap();
                i += 1;
            }
            seen
        }));
    }
    for _ in 0..STEPS {
        script.step(EVENTS);
        watcher.sync().await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut observations = Vec::new();
    for r in readers {
        observations.extend(r.await.unwrap());
    }
    assert_eq!(
        deadlocks().await,
        before,
        "deadlocks recorded during the load test"
    );
    assert!(
        observations.len() > 100,
        "readers made too few reads: {}",
        observations.len()
    );

    // Confirmed balances of the final chain at every finalized height.
    let canonical = script.chain.canonical();
    let mut at: BTreeMap<u64, reorg_collateral::testing::Expected> = BTreeMap::new();
    for (key, f1, f2, confirmed) in observations {
        let lo = f1.unwrap_or(0);
        let hi = f2.unwrap_or(0);
        let ok = (lo..=hi).any(|f| {
            let e = at
                .entry(f)
                .or_insert_with(|| replay(&canonical, (f > 0).then_some(f)));
            e.balance(&key).confirmed == confirmed
        });
        assert!(
            ok,
            "{key:?}: confirmed {confirmed} seen between finalized {f1:?} and {f2:?} is no committed state"
        );
    }
}

#[tokio::test]
async fn bad_input_is_typed_and_leaves_postgres_unchanged() {
    let store = Arc::new(fresh_store().await);
    let backends = Backends::new(store.clone(), store.clone());
    let mut h = Harness::new(backends, 3).await;
    h.chain.mine(|b| {
        b.deposit(h.assets[0].id, h.users[0], U256::from(1_000));
    });
    h.sync().await;
    let before = dump(&store).await;
    let head = *h.watcher.window().head().unwrap();
    let next = BlockHeader {
        number: head.number + 1,
        hash: B256::repeat_byte(9),
        parent_hash: head.hash,
        timestamp: head.timestamp + 12,
    };
    let event = |i: u64, asset: Address, change| BalanceEvent {
        log: LogId {
            tx_hash: B256::repeat_byte(1),
            log_index: i,
        },
        asset,
        change,
    };
    let credit = BalanceChange::Deposit {
        user: h.users[0],
        amount: U256::from(1),
    };

    let dup = Block {
        header: next,
        events: vec![
            event(0, h.assets[0].id, credit),
            event(0, h.assets[0].id, credit),
        ],
        prices: vec![],
    };
    assert!(matches!(
        h.watcher.ingest(dup).await,
        Err(Error::Engine(EngineError::DuplicateLog { .. }))
    ));
    let unknown = Block {
        header: next,
        events: vec![event(0, Address::repeat_byte(0xEE), credit)],
        prices: vec![],
    };
    assert!(matches!(
        h.watcher.ingest(unknown).await,
        Err(Error::Engine(EngineError::UnknownAsset { .. }))
    ));
    let gap = Block::empty(BlockHeader {
        number: head.number + 2,
        ..next
    });
    assert!(matches!(
        h.watcher.ingest(gap).await,
        Err(Error::Engine(EngineError::Gap { .. }))
    ));
    let too_much = Block {
        header: next,
        events: vec![event(
            0,
            h.assets[0].id,
            BalanceChange::Withdraw {
                user: h.users[0],
                amount: U256::from(1_001),
            },
        )],
        prices: vec![],
    };
    assert!(matches!(
        h.watcher.ingest(too_much).await,
        Err(Error::Engine(EngineError::BalanceUnderflow(_)))
    ));

    // Below the engine: a changeset that does not extend the stored head is refused whole.
    let stray = reorg_collateral::model::Changeset {
        revert: vec![],
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block::empty(BlockHeader {
                parent_hash: B256::repeat_byte(3),
                ..next
            }),
            balances: vec![(
                BalanceKey {
                    user: h.users[1],
                    asset: h.assets[0].id,
                },
                U256::from(5),
            )],
            prices: vec![],
            rejected_prices: vec![],
        }],
        finalize: None,
    };
    assert!(matches!(
        store.apply(&stray).await,
        Err(StoreError::Inconsistent { .. })
    ));
    // A height that does not fit BIGINT is a typed error, not a wrap.
    let huge = reorg_collateral::model::Changeset {
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block::empty(BlockHeader {
                number: u64::MAX,
                ..next
            }),
            balances: vec![],
            prices: vec![],
            rejected_prices: vec![],
        }],
        ..Default::default()
    };
    assert!(matches!(
        store.apply(&huge).await,
        Err(StoreError::OutOfRange { .. }) | Err(StoreError::Inconsistent { .. })
    ));
    // A changeset that carries the same log twice (the engine would refuse it first) is
    // refused by the writer before anything is written (the log has no unique index since
    // migration 0004): typed, nothing written.
    let twice = reorg_collateral::model::Changeset {
        blocks: vec![reorg_collateral::model::BlockChanges {
            block: Block {
                header: next,
                events: vec![
                    event(0, h.assets[0].id, credit),
                    event(0, h.assets[0].id, credit),
                ],
                prices: vec![],
            },
            balances: vec![(
                BalanceKey {
                    user: h.users[0],
                    asset: h.assets[0].id,
                },
                U256::from(1_002),
            )],
            prices: vec![],
            rejected_prices: vec![],
        }],
        ..Default::default()
    };
    match store.apply(&twice).await {
        Err(StoreError::Inconsistent { detail, .. }) => {
            assert!(detail.contains("duplicate log"), "{detail}")
        }
        other => panic!("expected a duplicate-log error, got {other:?}"),
    }
    assert_eq!(dump(&store).await, before);
    // The largest amount a U256 holds round-trips exactly through NUMERIC(78,0).
    h.chain.mine(|b| {
        b.set_balance(h.assets[1].id, h.users[2], U256::MAX);
    });
    h.sync().await;
    h.check().await;
    // A credit that would push it past U256::MAX is refused whole.
    let before = dump(&store).await;
    let head = *h.watcher.window().head().unwrap();
    let overflow = Block {
        header: BlockHeader {
            number: head.number + 1,
            hash: B256::repeat_byte(0x0F),
            parent_hash: head.hash,
            timestamp: head.timestamp + 12,
        },
        events: vec![event(
            7,
            h.assets[1].id,
            BalanceChange::Deposit {
                user: h.users[2],
                amount: U256::from(1),
            },
        )],
        prices: vec![],
    };
    assert!(matches!(
        h.watcher.ingest(overflow).await,
        Err(Error::Engine(EngineError::BalanceOverflow(_)))
    ));
    assert_eq!(dump(&store).await, before);
}
