//! History reads on Postgres without the history index: `collateral_at_block` is refused
//! as unsupported (naming the index), `explain` still answers (a scan of the log) and
//! equals `collateral`; once built, the index is reported.

use crate::support;

use std::sync::Arc;

use reorg_collateral::error::Error;
use reorg_collateral::testing::Backends;
use reorg_collateral::testing::harness::Harness;
use reorg_collateral::traits::HistoryError;
use support::pg::fresh_store;

#[tokio::test]
async fn without_the_history_index_past_blocks_are_unsupported_and_explain_still_answers() {
    let store = fresh_store().await;
    assert!(!store.has_history_indexes().await.expect("probe"));
    let store = Arc::new(store);
    let mut h = Harness::new(Backends::new(store.clone()), 2).await;
    for _ in 0..5 {
        let (user, asset) = (h.users[0], h.assets[0].id);
        h.chain.mine(|b| {
            b.deposit(asset, user, alloy_primitives::U256::from(1_000_000))
                .price(
                    asset,
                    alloy_primitives::I256::try_from(100_000_000).unwrap(),
                    8,
                );
        });
        h.sync().await;
    }
    let reader = h.watcher.reader();
    let fin = h.expected_finalized().expect("finalized");
    let refused = reader.collateral_at_block(h.users[0], fin).await;
    assert!(
        matches!(refused, Err(Error::History(HistoryError::Unsupported { what, .. })) if what.contains("history index")),
        "{refused:?}"
    );
    let explained = reader.explain(h.users[0], 3).await.expect("explain");
    assert_eq!(
        explained.collateral,
        reader.collateral(h.users[0]).await.expect("collateral")
    );
    assert_eq!(explained.assets[0].pending.rows.len(), 3);
    assert!(explained.assets[0].pending.truncated);
    store.create_history_indexes().await.expect("build");
    store.create_history_indexes().await.expect("idempotent");
    assert!(store.has_history_indexes().await.expect("probe"));
    reader
        .collateral_at_block(h.users[0], fin)
        .await
        .expect("answered once indexed");
}
