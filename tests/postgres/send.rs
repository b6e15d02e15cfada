//! Every public async fn of the Postgres store returns a `Send` future, so a service can
//! `tokio::spawn` it (a future that is not `Send` for every lifetime only fails to compile
//! where it is spawned, far from its cause: `PostgresStore::chain` was one, through the
//! migrator). The futures are built over a lazy pool and dropped unpolled: nothing connects.

use std::sync::Arc;

use reorg_collateral::chains::ChainId;
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::store::{PostgresConfig, PostgresStore, migrate};
use reorg_collateral::traits::BalanceStore;

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn the_stores_futures_are_send() {
    let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool connects on first use only");
    let store = PostgresStore::new(pool.clone());
    let assets = AssetRegistry::default();
    let config = PostgresConfig::default();

    let chain = store.chain(ChainId(8453));
    assert_send(&chain);
    let chains = store.chains();
    assert_send(&chains);
    let schema = store.chain_schema(ChainId(1));
    assert_send(&schema);
    let migrating = migrate(&pool);
    assert_send(&migrating);
    let connect = PostgresStore::connect("postgres://nobody@127.0.0.1:1/none");
    assert_send(&connect);
    let existing =
        PostgresStore::open_existing("postgres://nobody@127.0.0.1:1/none", None, &config);
    assert_send(&existing);
    let register = store.register_assets(&assets);
    assert_send(&register);
    let history = store.has_history_indexes();
    assert_send(&history);

    // Through the trait object a service holds.
    let dyn_store: Arc<dyn BalanceStore> = Arc::new(store.clone());
    let window = dyn_store.window();
    assert_send(&window);
}
