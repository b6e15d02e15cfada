//! Writer fencing on Postgres: the ownership lock lives on one session, so losing that
//! session frees the store for a second writer while the first still has pooled
//! connections. The claim's epoch fences the first one: its next changeset is refused with
//! a typed error and writes nothing.

use crate::support;
use crate::support::pg::{OwnSessions, unique_schema_name};

use std::sync::Arc;

use reorg_collateral::model::AssetRegistry;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{
    EngineConfig, Error, LogReader, StoreError, StoreWriter, Watcher, WatcherConfig,
};
use sqlx::{Connection, PgConnection};

/// Everything a writer could have changed: the window and the whole log.
async fn state(store: &PostgresStore) -> String {
    format!(
        "{:?}\n{:?}",
        store.window().await.expect("window"),
        store.log(0..=u64::MAX).await.expect("log")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_claim_was_lost_and_retaken_is_fenced() {
    let url = support::pg::database_url();
    let schema = unique_schema_name();
    let assets = ScriptedChain::demo_assets();
    let registry = AssetRegistry::new(assets.clone()).expect("registry");
    let users = (0..4).map(ScriptedChain::demo_user).collect();
    let mut script = ScriptedChain::new(11, 1, users, assets);
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 3));
    config.start_block = 1;

    // A's sessions carry a name of this test's own, the only ones it may terminate.
    let a_sessions = OwnSessions::new("fencing_a");
    let a = Arc::new(
        PostgresStore::connect_in_schema(&a_sessions.url(), &schema)
            .await
            .expect("store A"),
    );
    let b = Arc::new(
        PostgresStore::connect_in_schema(&url, &schema)
            .await
            .expect("store B"),
    );
    let mut writer_a = Watcher::new(config.clone(), script.chain.clone(), a.clone())
        .await
        .expect("A claims the store");
    script.step(4);
    writer_a.sync().await.expect("A writes");

    // While A's claim holds, B is refused.
    let err = Watcher::new(config.clone(), script.chain.clone(), b.clone())
        .await
        .expect_err("A holds the store");
    assert!(
        matches!(err, Error::Store(StoreError::WriterTaken { .. })),
        "{err:?}"
    );

    // A's ownership session dies (its pooled connections live on).
    let mut admin = PgConnection::connect(&url).await.expect("admin session");
    let holds_the_claim = format!(
        "pid IN (SELECT pid FROM pg_locks
                 WHERE locktype = 'advisory' AND granted AND classid = 1919118189
                   AND objid = (SELECT oid FROM pg_namespace WHERE nspname = '{schema}')
                   AND objsubid = 2)"
    );
    let killed = a_sessions.terminate(&mut admin, &holds_the_claim).await;
    assert_eq!(
        killed,
        vec![true],
        "exactly A's claim session holds the lock"
    );

    // B claims the freed store and writes.
    let mut writer_b = Watcher::new(config.clone(), script.chain.clone(), b.clone())
        .await
        .expect("B claims the store once A's session is gone");
    script.step(4);
    writer_b.sync().await.expect("B writes");

    // A's next changeset is refused and writes nothing.
    let before = state(&b).await;
    script.step(4);
    let err = writer_a.sync().await.expect_err("A was fenced");
    match &err {
        Error::Store(StoreError::WriterFenced { epoch, current, .. }) => {
            assert!(current > epoch, "{err}");
        }
        other => panic!("expected a fenced writer, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was committed"), "{err}");
    assert_eq!(
        state(&b).await,
        before,
        "the fenced writer changed the store"
    );
    // It stays fenced, and claiming again names B as the holder.
    let err = writer_a.sync().await.expect_err("still fenced");
    assert!(
        matches!(err, Error::Store(StoreError::WriterFenced { .. })),
        "{err:?}"
    );
    assert_eq!(state(&b).await, before);
    let identity = reorg_collateral::model::StoreIdentity::new(None, &config.engine.assets);
    let err = a
        .claim_writer(&identity)
        .await
        .expect_err("B holds the store");
    assert!(matches!(err, StoreError::WriterTaken { .. }), "{err:?}");

    // B goes on.
    writer_b.sync().await.expect("B writes on");
    assert_ne!(state(&b).await, before);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await;
}

/// A decorator forwards the writer's release: a `RecordingStore` over a Postgres store
/// frees the claim for a second writer (it fell back to the trait's no-op, so the claim
/// stayed held until the session ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_store_forwards_the_writers_release() {
    use reorg_collateral::testing::RecordingStore;
    let url = support::pg::database_url();
    let schema = unique_schema_name();
    let registry = AssetRegistry::new(ScriptedChain::demo_assets()).expect("registry");
    let identity = reorg_collateral::model::StoreIdentity::new(None, &registry);
    let a = Arc::new(
        PostgresStore::connect_in_schema(&url, &schema)
            .await
            .expect("store A"),
    );
    let b = PostgresStore::connect_in_schema(&url, &schema)
        .await
        .expect("store B");
    let recorder = RecordingStore::new(a.clone());
    recorder.claim_writer(&identity).await.expect("A claims");
    let err = b
        .claim_writer(&identity)
        .await
        .expect_err("A holds the store");
    assert!(matches!(err, StoreError::WriterTaken { .. }), "{err:?}");
    recorder.release_writer().await.expect("A releases");
    b.claim_writer(&identity)
        .await
        .expect("B claims once A released through the recorder");
    assert_eq!(
        recorder.head().await.expect("head"),
        a.head().await.expect("head"),
        "the recorder's head is the store's"
    );
    b.release_writer().await.expect("B releases");
    let mut admin = PgConnection::connect(&url).await.expect("admin");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await;
}
