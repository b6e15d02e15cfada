//! Migration 0017 over a filled schema of the previous version (migrations up to 0016,
//! filled through the writer: blocks, reorgs, finalization, prices): every row is kept, the
//! catalog names the chain the store was claimed for (0 when claimed with no chain id),
//! the writer resumes where it stopped, and a second chain's schema works beside it.

use std::sync::Arc;

use reorg_collateral::chains::ChainId;
use reorg_collateral::error::StoreError;
use reorg_collateral::model::{AssetRegistry, StoreIdentity};
use reorg_collateral::prelude::*;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{Error, Watcher};

use super::{assert_oracle, config, dump, script, source, tables};
use crate::support::pg::{
    connect, database_url, drop_schema_with_chains, fresh_schema, schema_options,
};

/// Events per scripted block.
const EVENTS: usize = 4;

/// A schema migrated to 0016 and filled by a writer following `script` as chain `id`;
/// returns its name once the writer let go. The fill has reorgs, a finalized height and
/// prices.
async fn filled_previous_version(script: &mut ScriptedChain, id: Option<u64>) -> String {
    let schema = fresh_schema().await;
    let pool = connect(schema_options(&schema)).await;
    sqlx::migrate!("./migrations")
        .run_to(16, &pool)
        .await
        .expect("migrations 0001..=0016 apply");
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let mut watcher = Watcher::new(config(), source(script, id), store.clone())
        .await
        .expect("a writer claims the 0016 store");
    for _ in 0..40 {
        script.step(EVENTS);
        watcher.sync().await.expect("sync");
    }
    let stats = watcher.stats();
    assert!(stats.reorgs > 0, "the fill has a reorg: {stats:?}");
    assert!(
        store.window().await.unwrap().finalized_number().is_some(),
        "the fill has a finalized height"
    );
    let prices: i64 = sqlx::query_scalar("SELECT count(*) FROM oracle_prices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(prices > 0, "the fill has prices");
    assert_oracle(&store, script, "the 0016 store").await;
    store.release_writer().await.expect("release");
    drop(watcher);
    drop(store);
    pool.close().await;
    schema
}

/// Opens `schema` (applying 0017) and checks that every row of the 0016 tables is kept
/// and the catalog holds `(chain, schema)` alone; then a writer of that chain resumes
/// without re-applying anything and follows three more blocks.
async fn upgrade_and_resume(
    script: &mut ScriptedChain,
    schema: &str,
    id: Option<u64>,
) -> Arc<PostgresStore> {
    let old = connect(schema_options(schema)).await;
    let names = tables(&old).await;
    let before = dump(&old, &names).await;
    old.close().await;

    let store = PostgresStore::connect_in_schema(&database_url(), schema)
        .await
        .expect("0017 applies over the filled schema");
    assert_eq!(
        dump(store.pool(), &names).await,
        before,
        "every row of every table is kept"
    );
    assert_eq!(
        store.chains().await.unwrap(),
        vec![(ChainId::of(id), schema.to_owned())],
        "the store is the chain it was claimed for"
    );

    let store = Arc::new(store);
    let mut watcher = Watcher::new(config(), source(script, id), store.clone())
        .await
        .expect("the writer of the same chain claims the upgraded store");
    watcher.sync().await.expect("sync");
    assert_eq!(watcher.stats().blocks_applied, 0, "nothing re-synced");
    for _ in 0..3 {
        script.mine(EVENTS);
    }
    watcher.sync().await.expect("sync");
    assert_eq!(watcher.stats().blocks_applied, 3, "only the new blocks");
    assert_oracle(&store, script, "the upgraded store").await;
    store
}

/// `store.chain(ChainId(10))`: a second chain's schema, whose writer claims and ingests
/// beside the first; the first chain's rows stay as they were.
async fn second_chain_beside(store: &PostgresStore, schema: &str, first: ChainId) {
    let names = tables(store.pool()).await;
    let names: Vec<String> = names.into_iter().filter(|t| t != "chains").collect();
    let base_rows = dump(store.pool(), &names).await;

    let other = Arc::new(store.chain(ChainId(10)).await.expect("chain 10"));
    let other_schema = format!("{schema}_c10");
    assert_eq!(
        store.chains().await.unwrap(),
        vec![
            (first, schema.to_owned()),
            (ChainId(10), other_schema.clone())
        ]
    );
    assert_eq!(
        other.chains().await.unwrap(),
        store.chains().await.unwrap(),
        "a chain's store reads the base's catalog"
    );
    let again = store.chain(ChainId(10)).await.expect("chain 10 again");
    assert_eq!(
        super::tables(again.pool()).await,
        super::tables(other.pool()).await
    );
    assert_eq!(
        store.chain_schema(ChainId(10)).await.unwrap(),
        Some(other_schema.clone())
    );

    let mut script10 = script(23);
    let mut watcher = Watcher::new(config(), source(&script10, Some(10)), other.clone())
        .await
        .expect("chain 10's writer claims its schema");
    for _ in 0..20 {
        script10.step(EVENTS);
        watcher.sync().await.expect("sync chain 10");
    }
    assert_oracle(&other, &script10, "chain 10").await;
    assert_eq!(
        dump(store.pool(), &names).await,
        base_rows,
        "chain 10's writer touched no row of {first}"
    );
    drop_schema(store, &other_schema).await;
}

async fn drop_schema(store: &PostgresStore, schema: &str) {
    drop_schema_with_chains(store.pool(), schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_store_becomes_its_chain_and_gains_another() {
    let mut script = script(11);
    let schema = filled_previous_version(&mut script, Some(1)).await;
    let store = upgrade_and_resume(&mut script, &schema, Some(1)).await;
    second_chain_beside(&store, &schema, ChainId(1)).await;
    drop_schema(&store, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_claimed_without_chain_id_becomes_chain_0() {
    let mut script = script(12);
    let schema = filled_previous_version(&mut script, None).await;
    let store = upgrade_and_resume(&mut script, &schema, None).await;
    second_chain_beside(&store, &schema, ChainId::UNSPECIFIED).await;
    drop_schema(&store, &schema).await;
}

/// A never-claimed store (no `store_identity` row: filled before identities, or empty) is
/// chain 0 after the upgrade, and its first claim with a chain id makes it that chain, in
/// the claim's transaction: a claim refused by the catalog records no identity either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_claimed_store_becomes_the_chain_of_its_first_claim() {
    let mut script = script(13);
    let schema = filled_previous_version(&mut script, Some(7)).await;
    let old = connect(schema_options(&schema)).await;
    sqlx::query("DELETE FROM store_identity")
        .execute(&old)
        .await
        .unwrap();
    old.close().await;
    let store = PostgresStore::connect_in_schema(&database_url(), &schema)
        .await
        .unwrap();
    assert_eq!(
        store.chains().await.unwrap(),
        vec![(ChainId::UNSPECIFIED, schema.clone())]
    );
    let registry = AssetRegistry::new(ScriptedChain::demo_assets()).unwrap();

    // Chain 8 already has a schema: a claim of the base for chain 8 is refused, and
    // nothing of it is committed (no identity recorded, the catalog unchanged).
    let eight = store.chain(ChainId(8)).await.expect("chain 8");
    let refused = store
        .claim_writer(&StoreIdentity::new(Some(8), &registry))
        .await
        .expect_err("chain 8 is another schema's");
    match &refused {
        StoreError::Chain {
            chain, schema: s, ..
        } => {
            assert_eq!((*chain, s.as_str()), (ChainId(8), schema.as_str()));
        }
        other => panic!("expected StoreError::Chain, got {other}"),
    }
    let identities: i64 = sqlx::query_scalar("SELECT count(*) FROM store_identity")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(identities, 0, "the refused claim recorded no identity");
    assert_eq!(store.chains().await.unwrap()[0].0, ChainId::UNSPECIFIED);

    // Chain 8's own (never-claimed) schema refuses a writer of chain 9.
    let refused = eight
        .claim_writer(&StoreIdentity::new(Some(9), &registry))
        .await
        .expect_err("chain 8's schema refuses chain 9");
    assert!(
        matches!(&refused, StoreError::Chain { chain, schema: s, .. }
            if *chain == ChainId(9) && *s == format!("{schema}_c8")),
        "{refused}"
    );
    drop_schema(&store, &format!("{schema}_c8")).await;
    drop(eight);

    // The first claim for chain 7 makes the store chain 7; the writer resumes.
    let store = Arc::new(store);
    let mut watcher = Watcher::new(config(), source(&script, Some(7)), store.clone())
        .await
        .expect("first claim");
    assert_eq!(
        store.chains().await.unwrap(),
        vec![
            (ChainId(7), schema.clone()),
            (ChainId(8), format!("{schema}_c8"))
        ],
        "the catalog row follows the first claim"
    );
    watcher.sync().await.unwrap();
    assert_eq!(watcher.stats().blocks_applied, 0, "nothing re-synced");
    drop(watcher);
    store.release_writer().await.unwrap();

    // A writer of another chain is refused, as before the catalog.
    let refused = Watcher::new(config(), source(&script, Some(9)), store.clone())
        .await
        .expect_err("the store is chain 7's");
    assert!(
        matches!(refused, Error::Store(StoreError::IdentityMismatch { .. })),
        "{refused}"
    );
    drop_schema(&store, &schema).await;
}
