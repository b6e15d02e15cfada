//! Multi-chain conformance scenarios: several chains in one backend (memory: one store per
//! chain; Postgres: one schema per chain of the chains catalog, see
//! [`Backends::with_chains`]), each chain written by its own watcher. Every step goes
//! through [`MultiHarness::step`]: the stepped chain's store equals its replay oracle,
//! every other chain's store (checkpoint, window, balances, log, prices, rates,
//! quarantines) is exactly what it was, and the multi-chain collateral equals the
//! per-chain oracle valuations summed. The chains share block hashes at every height
//! until one of them forks. On top, each scenario asserts explicit values.

use alloy_primitives::U256;
use rust_decimal::Decimal;

use super::{Backends, deposit, mine, priced};
use crate::model::{BalanceKey, BlockNumber};
use crate::testing::multichain::{CHAIN_IDS, MultiHarness};
use crate::testing::strategy::{BlockSpec, Op};

/// USDC (asset 0) at $1 on every chain, user 0 deposits 1 and then 0.5 USDC on each.
async fn usdc_on_every_chain(m: &mut MultiHarness) {
    for c in 0..m.chains.len() as u8 {
        m.run(&[
            (c, priced(0, 100_000_000)),
            (c, mine(vec![deposit(0, 0, 1_000_000)])),
            (c, mine(vec![deposit(0, 0, 500_000)])),
        ])
        .await;
    }
}

/// User `user`'s pending and confirmed USDC on chain `chain` as its store has them.
async fn usdc(m: &MultiHarness, chain: usize, user: usize) -> (U256, U256) {
    let h = &m.chains[chain].1;
    let key = BalanceKey {
        user: h.users[user],
        asset: h.assets[0].id,
    };
    let view = h.backends.store.balance(key).await.expect("balance");
    (view.pending, view.confirmed)
}

/// Each chain's head height in its store.
async fn heads(m: &MultiHarness) -> Vec<Option<BlockNumber>> {
    let mut out = Vec::new();
    for (_, h) in &m.chains {
        let window = h.backends.store.window().await.expect("window");
        out.push(window.head().map(|b| b.number));
    }
    out
}

/// Three chains with identical blocks; reorgs on one chain (depth 2, then twice depth 1
/// in a row, a counter that must not go negative) and one on another leave the third
/// chain's rows, and each other chain's, exactly as they were, though every chain's
/// blocks had the same hashes.
pub async fn reorg_on_one_chain_leaves_the_others(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 4).await;
    usdc_on_every_chain(&mut m).await;
    let hashes: Vec<_> = m
        .chains
        .iter()
        .map(|(_, h)| h.chain.canonical().last().expect("head").header.hash)
        .collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "identical heads");
    let one_and_a_half = (U256::from(1_500_000), U256::ZERO);
    m.step(
        1,
        &Op::Reorg {
            depth: 2,
            blocks: vec![BlockSpec {
                events: vec![deposit(1, 0, 7)],
                prices: vec![],
                rates: vec![],
            }],
        },
    )
    .await;
    assert_eq!(
        usdc(&m, 1, 0).await,
        (U256::ZERO, U256::ZERO),
        "reorged out"
    );
    assert_eq!(usdc(&m, 1, 1).await, (U256::from(7), U256::ZERO));
    for c in [0, 2] {
        assert_eq!(usdc(&m, c, 0).await, one_and_a_half, "chain {c} untouched");
        assert_eq!(usdc(&m, c, 1).await, (U256::ZERO, U256::ZERO));
    }
    let one_block_back = Op::Reorg {
        depth: 1,
        blocks: vec![BlockSpec::default()],
    };
    m.run(&[(1, one_block_back.clone()), (1, one_block_back.clone())])
        .await;
    assert_eq!(usdc(&m, 1, 1).await, (U256::ZERO, U256::ZERO));
    m.step(0, &one_block_back).await;
    assert_eq!(usdc(&m, 0, 0).await, (U256::from(1_000_000), U256::ZERO));
    assert_eq!(usdc(&m, 2, 0).await, one_and_a_half, "chain 2 untouched");

    let c = m
        .reader
        .collateral(m.chains[0].1.users[0])
        .await
        .expect("collateral");
    let pending = |i: usize| c.chains[&CHAIN_IDS[i]].pending.total;
    // 1 USDC × $1 × 0.9 on chain 0, none on chain 1, 1.5 USDC on chain 2.
    assert_eq!(pending(0), Decimal::new(9, 1));
    assert_eq!(pending(1), Decimal::ZERO);
    assert_eq!(pending(2), Decimal::new(135, 2));
    assert_eq!(c.pending, Decimal::new(225, 2), "the sum over the chains");
}

/// The head of one chain moves back without a new block (an `evm_revert`, a fail-over to a
/// node behind): that chain ends one block lower, the other chain keeps its head, its
/// rows and its window, and both go on mining afterwards.
pub async fn head_back_on_one_chain_leaves_the_others(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 10).await;
    usdc_on_every_chain(&mut m).await;
    let before = heads(&m).await;
    m.step(0, &Op::HeadBack { depth: 1 }).await;
    let after = heads(&m).await;
    assert_eq!(
        after[0],
        before[0].map(|n| n - 1),
        "chain 0 one block lower"
    );
    assert_eq!(after[1..], before[1..], "the other chains' heads");
    assert_eq!(usdc(&m, 0, 0).await, (U256::from(1_000_000), U256::ZERO));
    assert_eq!(usdc(&m, 1, 0).await, (U256::from(1_500_000), U256::ZERO));
    m.run(&[
        (1, mine(vec![deposit(0, 0, 2)])),
        (0, mine(vec![deposit(0, 0, 1)])),
    ])
    .await;
    assert_eq!(usdc(&m, 0, 0).await, (U256::from(1_000_001), U256::ZERO));
    assert_eq!(usdc(&m, 1, 0).await, (U256::from(1_500_002), U256::ZERO));
}

/// With depth finality out of reach (50 confirmations), a `finalized` tag on one chain
/// confirms only that chain's rows; a writer restart, a redelivered block and a refused
/// gap on other chains change nothing anywhere; a later tag on another chain confirms its
/// own rows only.
pub async fn finality_and_restart_on_one_chain_leave_the_others(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 50).await;
    usdc_on_every_chain(&mut m).await;
    let finalized = async |m: &MultiHarness| {
        let mut out = Vec::new();
        for (_, h) in &m.chains {
            out.push(
                h.backends
                    .store
                    .window()
                    .await
                    .expect("window")
                    .finalized_number(),
            );
        }
        out
    };
    let anchors = vec![None; m.chains.len()];
    assert_eq!(finalized(&m).await, anchors, "nothing final at depth 50");
    // Chain 0 finalizes its first deposit (the head is one block above it).
    m.step(0, &Op::FinalizeTag { lag: 1 }).await;
    let tag = m.chains[0].1.chain.head_number() - 1;
    let mut want = anchors.clone();
    want[0] = Some(tag);
    assert_eq!(finalized(&m).await, want);
    assert_eq!(
        usdc(&m, 0, 0).await,
        (U256::from(1_500_000), U256::from(1_000_000))
    );
    assert_eq!(usdc(&m, 1, 0).await, (U256::from(1_500_000), U256::ZERO));

    let last = m.chains.len() as u8 - 1;
    m.run(&[
        (1, Op::Restart),
        (1, Op::Redeliver { back: 1 }),
        (last, Op::Gap),
        (last, Op::Restart),
        (1, mine(vec![deposit(1, 0, 3)])),
        (0, Op::Restart),
        (0, mine(vec![deposit(1, 0, 4)])),
    ])
    .await;
    assert_eq!(finalized(&m).await, want, "restarts finalize nothing");
    m.step(1, &Op::FinalizeTag { lag: 0 }).await;
    want[1] = Some(m.chains[1].1.chain.head_number());
    assert_eq!(finalized(&m).await, want);
    assert_eq!(
        usdc(&m, 1, 0).await,
        (U256::from(1_500_000), U256::from(1_500_000))
    );
    assert_eq!(usdc(&m, 1, 1).await, (U256::from(3), U256::from(3)));
    assert_eq!(
        usdc(&m, 0, 0).await,
        (U256::from(1_500_000), U256::from(1_000_000))
    );
    assert_eq!(usdc(&m, 0, 1).await, (U256::from(4), U256::ZERO));
}
