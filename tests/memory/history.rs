//! The memory store's history reads under its retention: blocks below the retained
//! horizon are refused naming it, every block at or above it still equals the replay
//! oracle's fold of the chain cut there, and a block below the store's first block is
//! refused as before the log.

use std::sync::Arc;

use alloy_primitives::{I256, U256};

use reorg_collateral::error::Error;
use reorg_collateral::store::{MemoryStore, Retention};
use reorg_collateral::testing::harness::{Harness, START};
use reorg_collateral::testing::{Backends, replay};
use reorg_collateral::traits::{HistoryError, LogReader};

const KEPT: u64 = 5;

/// 30 steps of deposits, transfers and prices with a reorg every 7th, synced without the
/// harness's full check (which reads the whole log, and retention drops some of it).
async fn walk(store: Arc<MemoryStore>) -> Harness {
    let mut h = Harness::new(Backends::new(store), 3).await;
    for i in 0..30u8 {
        if i % 7 == 6 {
            h.chain.reorg(2);
        }
        let (user, other) = (h.users[usize::from(i % 3)], h.users[4]);
        let asset = h.assets[usize::from(i % 2)].id;
        let amount = U256::from(1_000 + u64::from(i));
        h.chain.mine(|b| {
            b.deposit(asset, user, amount)
                .transfer(asset, user, other, U256::from(200))
                .price(
                    asset,
                    I256::try_from(100_000_000 + i64::from(i)).unwrap(),
                    8,
                );
        });
        h.sync().await;
    }
    h
}

#[tokio::test]
async fn retention_refuses_below_its_horizon_and_answers_above_it() {
    let store = Arc::new(MemoryStore::with_retention(Retention {
        confirmed_blocks: KEPT,
    }));
    let h = walk(store.clone()).await;
    let fin = h.expected_finalized().expect("finalized");
    let horizon = fin - KEPT;
    let refused = store.history_at(h.users[0], horizon - 1).await;
    assert!(
        matches!(refused, Err(HistoryError::NotRetained { block, horizon: at }) if block == horizon - 1 && at == horizon),
        "{refused:?}"
    );
    let canonical = h.chain.canonical();
    for n in horizon..=fin {
        let cut: Vec<_> = canonical
            .iter()
            .take_while(|b| b.header.number <= n)
            .cloned()
            .collect();
        let oracle = replay(&cut, Some(n));
        for user in &h.users {
            let got = store.history_at(*user, n).await.expect("history_at");
            let balances: Vec<_> = got
                .balances
                .iter()
                .copied()
                .filter(|(_, b)| !b.is_zero())
                .collect();
            let want: Vec<_> = oracle
                .confirmed
                .iter()
                .filter(|(k, _)| k.user == *user)
                .map(|(k, b)| (k.asset, *b))
                .collect();
            assert_eq!(balances, want, "{user} after #{n}");
            for ((asset, _), price) in got.balances.iter().zip(&got.prices) {
                assert_eq!(
                    price.as_ref(),
                    oracle.confirmed_prices.get(asset),
                    "price of {asset} at #{n}"
                );
            }
        }
    }
    let reader = h.watcher.reader();
    let refused = reader.collateral_at_block(h.users[0], 1).await;
    assert!(
        matches!(
            refused,
            Err(Error::History(HistoryError::NotRetained { .. }))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_block_before_the_first_is_refused_as_before_the_log() {
    let store = Arc::new(MemoryStore::with_retention(Retention::UNBOUNDED));
    let h = walk(store.clone()).await;
    let refused = store.history_at(h.users[0], START - 1).await;
    assert!(
        matches!(refused, Err(HistoryError::BeforeLog { block, first: Some(first) }) if block == START - 1 && first == START),
        "{refused:?}"
    );
    store
        .history_at(h.users[0], START)
        .await
        .expect("the first block is answered");
}
