//! The conformance suite and the property test against Postgres, each scenario in its own
//! schema.

use crate::support;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::chains::ChainId;
use reorg_collateral::error::StoreError;
use reorg_collateral::model::{AssetRegistry, StoreIdentity};
use reorg_collateral::prelude::*;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::testing::harness::default_assets;
use reorg_collateral::testing::{Backends, Harness, conformance, conformance_tests, strategy};
use support::pg::{database_url, fresh_pool_named, fresh_store, schema_of};

async fn backends() -> Backends {
    let store = fresh_store().await;
    // The history reads (explain, collateral_at_block) need the history index.
    store.create_history_indexes().await.expect("history index");
    let base = store.clone();
    let store = Arc::new(store);
    // The multi-chain scenarios: one schema per chain, from the chains catalog of this
    // scenario's schema.
    Backends::new(store)
        .with_cache(Arc::new(MemoryCache::new()))
        .with_chains(move |id| chain_backends(base.clone(), id))
}

/// The backends of chain `id`: its schema in `base`'s chains catalog, a memory cache.
async fn chain_backends(base: PostgresStore, id: ChainId) -> Backends {
    let store = base.chain(id).await.expect("the chain's schema");
    Backends::new(Arc::new(store)).with_cache(Arc::new(MemoryCache::new()))
}

conformance_tests!(async || backends().await, random_walks: 1..=3, steps: 60);

/// The multi-chain scenarios on Postgres run on one schema per chain of the scenario
/// schema's chains catalog: after one, the catalog lists the (never claimed) base and the
/// three chains' schemas `<base>_c<id>`.
#[tokio::test]
async fn multi_chain_scenarios_use_the_chains_catalog() {
    let base = fresh_store().await;
    let schema = schema_of(base.pool()).await;
    let opener = base.clone();
    let backends = Backends::new(Arc::new(base.clone()))
        .with_chains(move |id| chain_backends(opener.clone(), id));
    let chains = conformance::open_chains(&backends, 3).await;
    conformance::writer_claims_per_chain(chains).await;
    let want: Vec<(ChainId, String)> = [0, 1, 10, 8453]
        .into_iter()
        .map(|id| {
            let name = match id {
                0 => schema.clone(),
                _ => format!("{schema}_c{id}"),
            };
            (ChainId(id), name)
        })
        .collect();
    assert_eq!(base.chains().await.expect("catalog"), want);
}

/// One writer per schema: a second handle's claim fails naming the holder (its pid and
/// `application_name`); once the first handle (and its clone) is dropped, a claim with
/// another chain id is refused and one with the recorded identity is accepted.
#[tokio::test]
async fn second_writer_is_refused_naming_the_holder() {
    // Unique on the server: another test process may run this test at the same time.
    let name = format!("writer_a_{}", std::process::id());
    let pool = fresh_pool_named(&name).await;
    let schema = schema_of(&pool).await;
    let registry = AssetRegistry::new(default_assets()).expect("assets");
    let identity = StoreIdentity::new(Some(31_337), &registry);
    let first = PostgresStore::new(pool);
    first.claim_writer(&identity).await.expect("first claim");
    let clone = first.clone();
    clone
        .claim_writer(&identity)
        .await
        .expect("a clone shares the claim");
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid IN
         (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
    )
    .bind(&name)
    .fetch_one(first.pool())
    .await
    .expect("the holder's pid");

    let second = PostgresStore::connect_in_schema(&database_url(), &schema)
        .await
        .expect("second handle");
    match second.claim_writer(&identity).await {
        Err(StoreError::WriterTaken { holder, .. }) => {
            assert!(holder.contains(&format!("pid {pid}")), "{holder}");
            assert!(holder.contains(&format!("\"{name}\"")), "{holder}");
        }
        other => panic!("second writer: {other:?}"),
    }
    drop(first);
    drop(clone);

    let other_chain = StoreIdentity::new(Some(1), &registry);
    match second.claim_writer(&other_chain).await {
        Err(StoreError::IdentityMismatch {
            stored, claimed, ..
        }) => assert_eq!((stored, claimed), (identity, other_chain)),
        other => panic!("other chain: {other:?}"),
    }
    second
        .claim_writer(&identity)
        .await
        .expect("the same identity after the first handle is gone");
    let third = PostgresStore::connect_in_schema(&database_url(), &schema)
        .await
        .expect("third handle");
    assert!(matches!(
        third.claim_writer(&identity).await,
        Err(StoreError::WriterTaken { .. })
    ));
}

fn run(ops: Vec<strategy::Op>, apply_batch: usize, head_memo: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut harness = Harness::with_config(backends().await, 6, 5, |c| {
            c.apply_batch = apply_batch;
            c.head_memo = head_memo;
        })
        .await;
        harness.run(&ops).await;
    });
}

proptest! {
    // Failing seeds are kept next to this file (`conformance.proptest-regressions`); proptest's
    // default would look beside the binary's `main.rs` instead.
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn postgres_equals_replay_oracle(ops in strategy::scenario(30, 6)) {
        run(ops, 1, 1_000);
    }

    /// Batched, and with the watcher's memo of balances at the head off: every base
    /// balance comes from the store's `balances_at`.
    #[test]
    fn postgres_batched_equals_replay_oracle(ops in strategy::scenario(30, 6)) {
        run(ops, 4, 0);
    }

    /// Underflowing events (quarantines) and resumes, on Postgres.
    #[test]
    fn postgres_with_faults_equals_replay_oracle(ops in strategy::scenario_with_faults(30, 6)) {
        run(ops, 2, 1_000);
    }
}
