//! `--chain`: commands run against a chain's schema of the chains catalog; `migrate` and
//! `simulate` add a missing chain, the read-only commands refuse one; commands without
//! `--chain` keep working on the upgraded store, and the migration toolkit (`verify`)
//! works per chain.

use reorg_collateral::StoreWriter;
use reorg_collateral::chains::ChainId;
use reorg_collateral::model::{AssetRegistry, StoreIdentity};
use reorg_collateral::store::PostgresStore;

use crate::support::cli::{run, stderr};
use crate::support::pg::{database_url, drop_schema_with_chains, unique_schema_name};

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_per_chain_and_without_chain_as_before() {
    let base = unique_schema_name();
    let c10 = format!("{base}_c10");
    ok(
        &run(&base, &["simulate", "--steps", "20", "--users", "5"]),
        "simulate on the base",
    );
    let store = PostgresStore::connect_in_schema(&database_url(), &base)
        .await
        .unwrap();
    let base_head = store.window().await.unwrap().head().map(|h| h.number);
    assert!(base_head.is_some());

    // A read-only command refuses a chain the catalog does not have (bad usage).
    let out = run(&base, &["verify", "--chain", "10"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("chain 10"), "{}", stderr(&out));

    let text = ok(
        &run(&base, &["migrate", "--chain", "10"]),
        "migrate --chain 10",
    );
    assert!(text.contains(&format!("schema {c10}")), "{text}");
    ok(
        &run(
            &base,
            &[
                "--chain", "10", "simulate", "--steps", "30", "--users", "5", "--seed", "9",
            ],
        ),
        "simulate --chain 10",
    );
    assert_eq!(
        store.chains().await.unwrap(),
        vec![(ChainId(0), base.clone()), (ChainId(10), c10.clone())]
    );
    let chain10 = store.chain(ChainId(10)).await.unwrap();
    assert!(chain10.window().await.unwrap().head().is_some());
    assert_eq!(
        store.window().await.unwrap().head().map(|h| h.number),
        base_head,
        "chain 10's writer left the base alone"
    );

    // The migration toolkit's verify, per chain and on the base without --chain.
    let text = ok(
        &run(&base, &["verify", "--chain", "10"]),
        "verify --chain 10",
    );
    assert!(!text.is_empty());
    ok(&run(&base, &["verify", "--chain", "0"]), "verify --chain 0");
    ok(&run(&base, &["verify"]), "verify without --chain");
    // The base resumes without --chain.
    ok(
        &run(&base, &["simulate", "--steps", "25", "--users", "5"]),
        "simulate on the base again",
    );
    assert!(store.window().await.unwrap().head().map(|h| h.number) > base_head);

    // chain 10's schema is claimed for chain 10: a writer of another chain is refused.
    let registry =
        AssetRegistry::new(reorg_collateral::source::ScriptedChain::demo_assets()).unwrap();
    let refused = chain10
        .claim_writer(&StoreIdentity::new(Some(11), &registry))
        .await;
    assert!(refused.is_err());

    drop_schema_with_chains(store.pool(), &base).await;
}
