//! Readers of the replica while the primary ingests: every answer is a whole committed
//! state of the primary (the replay of the scripted chain up to the head it names, at the
//! finalized height it names), finality never goes back, and the replica ends at the
//! primary's state.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reorg_collateral::model::{BalanceKey, Block, BlockRef, StateRef};
use reorg_collateral::prelude::*;
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::{PostgresReplica, ReplicaOptions};
use reorg_collateral::testing::{Expected, replay};
use support::pg_replica::PrivatePostgresReplica;

use super::{EVENTS, USERS, primary};

/// Scripted steps ingested while the readers read.
const STEPS: usize = 40;

/// The prefix of one of `chains` that ends at `head`, if any holds it.
fn prefix(chains: &[Vec<Block>], head: BlockRef) -> Option<&[Block]> {
    chains.iter().find_map(|chain| {
        let i = chain.iter().position(|b| b.header.id() == head)?;
        Some(&chain[..=i])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_readers_see_whole_advancing_states_while_the_primary_ingests() {
    let cluster = PrivatePostgresReplica::start();
    let (store, mut script, mut watcher, schema) = primary(&cluster.primary_url(), 23).await;
    cluster.wait_caught_up().await;
    let replica = Arc::new(
        PostgresReplica::open(
            &cluster.replica_url(),
            &ReplicaOptions {
                schema: Some(schema),
                ..Default::default()
            },
        )
        .await
        .expect("open the replica"),
    );
    let users: Vec<_> = (0..USERS).map(ScriptedChain::demo_user).collect();
    let assets: Vec<_> = ScriptedChain::demo_assets().iter().map(|a| a.id).collect();

    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (replica, done, users, assets) =
            (replica.clone(), done.clone(), users.clone(), assets.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let balances = replica.balances(&users).await.expect("replica balances");
                let prices = replica.prices(&assets).await.expect("replica prices");
                seen.push((balances.state, Some(balances.value), None));
                seen.push((prices.state, None, Some(prices.value)));
            }
            seen
        }));
    }
    let mut chains = vec![script.chain.canonical()];
    for _ in 0..STEPS {
        script.step(EVENTS);
        chains.push(script.chain.canonical());
        watcher.sync().await.unwrap();
    }
    cluster.wait_caught_up().await;
    done.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for r in readers {
        answers.push(r.await.unwrap());
    }

    // The replica ends where the primary is.
    let last = replica.balances(&users).await.unwrap();
    let primary_state = store.head_state().await.unwrap().map(|(_, s)| s);
    assert_eq!(
        last.state, primary_state,
        "the replica ends at the primary's state"
    );
    assert_eq!(last.value, store.user_balances_many(&users).await.unwrap());

    let mut expected: HashMap<StateRef, Expected> = HashMap::new();
    let mut compared = 0usize;
    for seen in &answers {
        let mut finalized = None;
        for (state, balances, prices) in seen {
            let state = state.expect("the primary had a block before the replica was opened");
            assert!(
                state.finalized >= finalized,
                "finality went back from {finalized:?} to {:?} in one reader's answers",
                state.finalized
            );
            finalized = state.finalized;
            let want = expected.entry(state).or_insert_with(|| {
                let chain = prefix(&chains, state.head).unwrap_or_else(|| {
                    panic!("the replica answered at {state}, a head no canonical chain held")
                });
                replay(chain, state.finalized)
            });
            if let Some(balances) = balances {
                for (user, held) in users.iter().zip(balances) {
                    for asset in &assets {
                        let got = held
                            .iter()
                            .find(|(a, _)| a == asset)
                            .map(|(_, v)| *v)
                            .unwrap_or_default();
                        let key = BalanceKey {
                            user: *user,
                            asset: *asset,
                        };
                        assert_eq!(
                            got,
                            want.balance(&key),
                            "{key:?} at {state}: half-applied or wrong"
                        );
                    }
                }
            }
            if let Some(prices) = prices {
                for (asset, got) in assets.iter().zip(prices) {
                    assert_eq!(*got, want.price(asset), "price of {asset} at {state}");
                }
            }
            compared += 1;
        }
    }
    assert!(compared > 0, "the readers answered nothing");
}

/// The replica's collateral (balances and prices of one snapshot) is the primary's at the
/// same state, labelled with that state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_collateral_is_the_primarys_at_the_state_it_names() {
    let cluster = PrivatePostgresReplica::start();
    let (store, mut script, mut watcher, schema) = primary(&cluster.primary_url(), 5).await;
    for _ in 0..10 {
        script.step(EVENTS);
        watcher.sync().await.unwrap();
    }
    cluster.wait_caught_up().await;
    let replica = PostgresReplica::open(
        &cluster.replica_url(),
        &ReplicaOptions {
            schema: Some(schema),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let users: Vec<_> = (0..USERS).map(ScriptedChain::demo_user).collect();
    let valuator = watcher.valuator().clone();
    let read = replica.collateral(&valuator, &users).await.unwrap();
    let (state, on_primary) = CollateralReader::new(store.clone(), valuator)
        .collateral_snapshot(&users)
        .await
        .unwrap();
    assert_eq!(read.state, state);
    assert_eq!(read.block(), state.map(|s| s.head.number));
    let got: Vec<_> = read.value.into_iter().map(|c| c.unwrap()).collect();
    let want: Vec<_> = on_primary.into_iter().map(|c| c.unwrap()).collect();
    assert_eq!(got, want);
    assert_eq!(read.lag.blocks, None, "no primary configured: no block lag");
}
