//! Multi-chain conformance scenarios of what crosses chains, on the backends of
//! [`chains`](super::chains): the same token address on two chains, a price from another
//! chain's feed, and writer claims per chain. Every step is checked as there
//! ([`MultiHarness::step`]), with explicit values on top.

use std::sync::Arc;

use alloy_primitives::U256;
use rust_decimal::Decimal;

use super::{Backends, deposit, mine, priced};
use crate::chains::MultiChainReader;
use crate::error::{Error, StoreError};
use crate::model::{AssetRegistry, PriceSource, StoreIdentity};
use crate::reader::CollateralReader;
use crate::testing::harness::default_assets;
use crate::testing::multichain::{CHAIN_IDS, MultiHarness};
use crate::testing::strategy::{BlockSpec, Op};
use crate::valuation::Valuator;
use crate::watcher::Watcher;

/// USDC (`0xA1…`, asset 0) is tracked on two chains at one address: user 0 holds 1 USDC
/// on chain 0 (at $1) and 2 on chain 1 (at $0.99, chain 1's own feed). They are two
/// (chain, asset) lines, each valued with its own chain's balance and price; grouped by
/// symbol they are one "USDC" line summing both. A reader whose registry of chain 1 names
/// the token "USDC.e" keeps two symbol lines: only the symbol maps two assets to one.
pub async fn same_token_on_two_chains(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 10).await;
    m.run(&[
        (0, priced(0, 100_000_000)),
        (1, priced(0, 99_000_000)),
        (0, mine(vec![deposit(0, 0, 1_000_000)])),
        (1, mine(vec![deposit(0, 0, 2_000_000)])),
    ])
    .await;
    let (user, usdc) = (m.chains[0].1.users[0], m.chains[0].1.assets[0].id);
    let c = m.reader.collateral(user).await.expect("collateral");
    let line = |i: usize| c.asset(CHAIN_IDS[i], usdc).expect("a line per chain");
    let pending = |i: usize| line(i).pending.expect("pending side");
    assert_eq!(pending(0).balance, U256::from(1_000_000));
    assert_eq!(pending(1).balance, U256::from(2_000_000));
    // 1 × $1 × 0.9 and 2 × $0.99 × 0.9.
    assert_eq!(pending(0).value, Some(Decimal::new(9, 1)));
    assert_eq!(pending(1).value, Some(Decimal::new(1782, 3)));
    let symbols = c.by_symbol();
    assert_eq!(symbols.len(), 1, "{symbols:?}");
    let usdc_line = &symbols["USDC"];
    assert_eq!(usdc_line.pending, Decimal::new(2682, 3));
    assert_eq!(
        usdc_line.assets,
        vec![(CHAIN_IDS[0], usdc), (CHAIN_IDS[1], usdc)]
    );

    let mut assets = default_assets();
    assets[0].symbol = "USDC.e".to_owned();
    let renamed = AssetRegistry::new(assets.clone())
        .and_then(|r| {
            r.with_price_source(
                assets[3].id,
                PriceSource::Derived {
                    underlying: assets[0].id,
                },
            )
        })
        .and_then(|r| r.with_price_source(assets[4].id, PriceSource::SameAs(assets[1].id)))
        .expect("valid assets");
    let h0 = &m.chains[0].1;
    let h1 = &m.chains[1].1;
    let max_age = h1.config.max_price_age;
    let reader = MultiChainReader::new([
        (
            CHAIN_IDS[0],
            CollateralReader::new(h0.backends.store.clone(), h0.watcher.valuator().clone()),
        ),
        (
            CHAIN_IDS[1],
            CollateralReader::new(
                h1.backends.store.clone(),
                Valuator::new(Arc::new(renamed), max_age),
            ),
        ),
    ])
    .expect("two chains");
    let c = reader.collateral(user).await.expect("collateral");
    let symbols = c.by_symbol();
    assert_eq!(symbols["USDC"].pending, Decimal::new(9, 1));
    assert_eq!(symbols["USDC.e"].pending, Decimal::new(1782, 3));
    assert_eq!(symbols["USDC.e"].assets, vec![(CHAIN_IDS[1], usdc)]);
}

/// Chain 1's WETH is priced by chain 0's WETH feed (chain 1's own WETH feed, $1, is not
/// used). The confirmed side of chain 1's balance takes chain 0's confirmed price, the
/// pending side its pending price, and a reorg of either chain moves only the pending
/// side: 1 WETH final on chain 1, $2,000 final and $3,000 pending on chain 0.
pub async fn price_from_another_chain(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 50).await;
    let weth = 1;
    let eth = 10u64.pow(18);
    m.run(&[
        (0, priced(weth, 200_000_000_000)),
        (0, Op::FinalizeTag { lag: 0 }),
        (1, priced(weth, 100_000_000)),
        (1, mine(vec![deposit(0, weth, eth)])),
        (1, Op::FinalizeTag { lag: 0 }),
        (0, priced(weth, 300_000_000_000)),
    ])
    .await;
    let user = m.chains[0].1.users[0];
    let on_chain_1 = async |m: &MultiHarness| {
        let c = m.reader.collateral(user).await.expect("collateral");
        let c = &c.chains[&CHAIN_IDS[1]];
        (c.confirmed.total, c.pending.total)
    };
    // WETH's factor is 0.8: 1 × $2,000 × 0.8 confirmed, 1 × $3,000 × 0.8 pending.
    let dollars = |n: i64| Decimal::from(n);
    assert_eq!(on_chain_1(&m).await, (dollars(1_600), dollars(2_400)));
    m.step(1, &mine(vec![deposit(0, weth, eth)])).await;
    assert_eq!(on_chain_1(&m).await, (dollars(1_600), dollars(4_800)));
    let back = Op::Reorg {
        depth: 1,
        blocks: vec![BlockSpec::default()],
    };
    m.step(0, &back).await;
    assert_eq!(
        on_chain_1(&m).await,
        (dollars(1_600), dollars(3_200)),
        "the feed's chain reorged: its pending price is $2,000 again"
    );
    m.step(1, &back).await;
    assert_eq!(
        on_chain_1(&m).await,
        (dollars(1_600), dollars(1_600)),
        "the balance's chain reorged: 1 WETH pending"
    );
}

/// Each chain's store is claimed by its own writer: claiming it again with its identity
/// succeeds, a claim with another chain's identity is refused naming both, and writers of
/// the other chains claimed and go on writing meanwhile. On backends that open chains'
/// stores ([`Backends::with_chains`]), a second handle of a chain's store (a second writer
/// of that chain) is refused with [`StoreError::WriterTaken`] while every other chain's
/// writer keeps writing, and a restarted writer of one chain takes nobody else's claim.
pub async fn writer_claims_per_chain(chains: Vec<Backends>) {
    let mut m = MultiHarness::new(chains, 4).await;
    let identities: Vec<StoreIdentity> = m
        .chains
        .iter()
        .map(|(id, h)| StoreIdentity::new(Some(id.0), &h.config.engine.assets))
        .collect();
    let identity = |i: usize| identities[i];
    let n = m.chains.len();
    for i in 0..n {
        let store = &m.chains[i].1.backends.store;
        store
            .claim_writer(&identity(i))
            .await
            .expect("its own identity again");
        let other = identity((i + 1) % n);
        match store.claim_writer(&other).await {
            Err(StoreError::IdentityMismatch {
                stored, claimed, ..
            }) => assert_eq!(
                (stored, claimed),
                (identity(i), other),
                "the error names both"
            ),
            got => panic!(
                "a writer of {} on the store of {}: {got:?}",
                CHAIN_IDS[(i + 1) % n],
                CHAIN_IDS[i]
            ),
        }
    }
    let second = m.chains[0].1.backends.open_chain(CHAIN_IDS[0]).await;
    if let Some(second) = &second {
        match second.store.claim_writer(&identity(0)).await {
            Err(StoreError::WriterTaken { .. }) => {}
            got => panic!("a second claim of {}: {got:?}", CHAIN_IDS[0]),
        }
        let h = &m.chains[0].1;
        let writer = Watcher::new(h.config.clone(), h.source(), second.store.clone()).await;
        assert!(
            matches!(writer, Err(Error::Store(StoreError::WriterTaken { .. }))),
            "a second writer of {}: {:?}",
            CHAIN_IDS[0],
            writer.err()
        );
    }
    for c in 0..n as u8 {
        m.step(c, &mine(vec![deposit(c, 0, 10)])).await;
    }
    m.step(0, &Op::Restart).await;
    if let Some(other) = m.chains[1].1.backends.open_chain(CHAIN_IDS[1]).await {
        assert!(
            matches!(
                other.store.claim_writer(&identity(1)).await,
                Err(StoreError::WriterTaken { .. })
            ),
            "a restart of {}'s writer left {}'s claim held",
            CHAIN_IDS[0],
            CHAIN_IDS[1]
        );
    }
    for c in (0..n as u8).rev() {
        m.step(c, &mine(vec![deposit(0, 0, 1)])).await;
    }
    for i in 0..n {
        let store = &m.chains[i].1.backends.store;
        store
            .claim_writer(&identity(i))
            .await
            .expect("every claim still held");
    }
}
