//! The one-statement collateral read over the schemas of one chains catalog equals the
//! separate reads (the same stores through a decorator, read chain by chain with every
//! state checked before and after): a vault (rates), a rebasing token (indexes), a price
//! from another chain's feed (`with_price_from`, directly and through a `SameAs`), a
//! quarantined asset, unconfirmed blocks, chains at different heads, a chain the user holds
//! nothing on and a chain with no block at all.

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::chains::{ChainId, MultiChainReader};
use reorg_collateral::model::{BalanceChange, IndexFormula, PriceStatus, UserId};
use reorg_collateral::prelude::*;
use reorg_collateral::reader::ValuationPoint;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::{ComposedStore, PostgresStore};
use reorg_collateral::testing::harness::{default_registry, user};
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{CollateralReader, EngineConfig, Watcher, WatcherConfig};

use sqlx::{AssertSqlSafe, Executor};

use crate::support::pg::{database_url, unique_schema_name};
use reorg_collateral::source::SimulatedOnChain;

const ETH: ChainId = ChainId(1);
const OP: ChainId = ChainId(10);
const BASE: ChainId = ChainId(8453);
const ARB: ChainId = ChainId(42161);

fn asset(byte: u8) -> Address {
    Address::repeat_byte(byte)
}

fn usd(dollars: i64) -> I256 {
    I256::try_from(dollars * 100_000_000).expect("fits")
}

/// A chain writing `store` through its own watcher (confirmations 3).
struct Chain {
    chain: Arc<SimulatedChain>,
    watcher: Watcher,
}

impl Chain {
    async fn new(id: ChainId, store: Arc<PostgresStore>) -> Self {
        let chain = Arc::new(SimulatedChain::new(1));
        let mut config = WatcherConfig::new(EngineConfig::new(default_registry(), 3));
        config.start_block = 1;
        let source = Arc::new(SimulatedOnChain::new(chain.clone(), Some(id.0)));
        let watcher = Watcher::new(config, source, store).await.expect("claim");
        Self { chain, watcher }
    }

    async fn mine(&mut self, build: impl FnOnce(&mut reorg_collateral::source::BlockBuilder)) {
        self.chain.mine(build);
        self.watcher.sync().await.expect("sync");
    }
}

/// Readers of the four chains over `stores` (ETH, OP, BASE, ARB), OP's WETH (and the stETH
/// its feed prices) priced by ETH's WETH feed.
fn readers(stores: &[Arc<dyn BalanceStore>]) -> Vec<(ChainId, CollateralReader)> {
    let valuator = Valuator::new(Arc::new(default_registry()), 3_600);
    let reader = |i: usize| CollateralReader::new(stores[i].clone(), valuator.clone());
    vec![
        (ETH, reader(0)),
        (
            OP,
            reader(1)
                .with_price_from(asset(0xA2), stores[0].clone(), ETH, asset(0xA2))
                .expect("WETH is its own price key"),
        ),
        (BASE, reader(2)),
        (ARB, reader(3)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_over_a_catalog_equals_the_separate_reads() {
    let base_schema = unique_schema_name();
    let base = PostgresStore::connect_in_schema(&database_url(), &base_schema)
        .await
        .expect("base store");
    let mut stores = vec![Arc::new(base.clone())];
    for id in [OP, BASE, ARB] {
        stores.push(Arc::new(base.chain(id).await.expect("chain store")));
    }
    let (usdc, weth, wbtc, vusdc, steth) = (
        asset(0xA1),
        asset(0xA2),
        asset(0xA3),
        asset(0xA4),
        asset(0xA5),
    );
    let u: Vec<UserId> = (0..6).map(user).collect();

    // Ethereum: prices, balances, six blocks (three of them unconfirmed).
    let mut eth = Chain::new(ETH, stores[0].clone()).await;
    eth.mine(|b| {
        b.price(usdc, usd(1), 8).price(weth, usd(3_000), 8);
        b.deposit(usdc, u[0], U256::from(1_000_000_000u64))
            .deposit(weth, u[1], U256::from(2u128 * 10u128.pow(18)))
            .deposit(steth, u[4], U256::from(10u128.pow(18)));
    })
    .await;
    for k in 0..5u64 {
        eth.mine(|b| {
            b.deposit(usdc, u[(k % 5) as usize], U256::from(1_000 + k));
            if k == 4 {
                b.price(weth, usd(3_100), 8);
            }
        })
        .await;
    }

    // Optimism: a vault with its rate, WETH and stETH priced on Ethereum, a rebasing WBTC.
    let formula = IndexFormula::DivByIndex {
        total_gons: U256::from(10u64).pow(U256::from(30)),
    };
    let index = |supply: u64| {
        formula
            .index(U256::from(supply) * U256::from(10u64).pow(U256::from(24)))
            .expect("a positive supply")
    };
    let mut op = Chain::new(OP, stores[1].clone()).await;
    op.mine(|b| {
        b.price(usdc, usd(1), 8).price(wbtc, usd(60_000), 8);
        b.rate(vusdc, U256::from(105_000_000u64));
        b.event(
            wbtc,
            BalanceChange::Rebase {
                index: index(1_000),
            },
        );
        b.deposit(vusdc, u[0], U256::from(500_000_000u64))
            .deposit(weth, u[0], U256::from(10u128.pow(18)))
            .deposit(steth, u[1], U256::from(3u128 * 10u128.pow(18)))
            .deposit(wbtc, u[3], U256::from(10u128.pow(12)));
    })
    .await;
    for k in 0..4u64 {
        op.mine(|b| {
            b.rate(vusdc, U256::from(105_000_000 + k * 1_000_000));
            b.event(
                wbtc,
                BalanceChange::Rebase {
                    index: index(1_000 + 100 * k),
                },
            );
            b.deposit(wbtc, u[3], U256::from(10u64.pow(9)));
        })
        .await;
    }

    // Base: USDC quarantined at its head by a withdrawal above the balance; nothing of u[4].
    let mut base_chain = Chain::new(BASE, stores[2].clone()).await;
    base_chain
        .mine(|b| {
            b.price(usdc, usd(1), 8);
            b.deposit(usdc, u[0], U256::from(100_000_000u64))
                .deposit(usdc, u[1], U256::from(50_000_000u64))
                .deposit(weth, u[2], U256::from(10u128.pow(17)));
        })
        .await;
    base_chain
        .mine(|b| {
            b.withdraw(usdc, u[1], U256::from(70_000_000u64));
        })
        .await;
    // Arbitrum: registered, nothing applied.

    let fast_stores: Vec<Arc<dyn BalanceStore>> = stores
        .iter()
        .map(|s| s.clone() as Arc<dyn BalanceStore>)
        .collect();
    let separate_stores: Vec<Arc<dyn BalanceStore>> = stores
        .iter()
        .map(|s| {
            Arc::new(ComposedStore::new((**s).clone(), Arc::new((**s).clone())))
                as Arc<dyn BalanceStore>
        })
        .collect();
    let fast = MultiChainReader::new(readers(&fast_stores)).expect("reader");
    let separate = MultiChainReader::new(readers(&separate_stores)).expect("reader");
    assert!(fast.reads_in_one_statement(), "schemas of one catalog");
    assert!(!separate.reads_in_one_statement(), "decorated stores");

    let got = fast.collateral_many(&u).await.expect("one statement");
    let want = separate.collateral_many(&u).await.expect("separate reads");
    assert_eq!(got.len(), u.len());
    let got: Vec<_> = got.into_iter().map(|c| c.expect("valuation")).collect();
    let want: Vec<_> = want.into_iter().map(|c| c.expect("valuation")).collect();
    assert_eq!(
        got, want,
        "the one-statement read equals the separate reads"
    );
    let single = fast.collateral(u[0]).await.expect("one user");
    assert_eq!(single, got[0], "collateral(user) is collateral_many's");

    // What the read covered (so that the equality above is not of empty values).
    let c0 = &got[0];
    let heads: Vec<_> = c0.at.iter().map(|(c, s)| (*c, s.head.number)).collect();
    assert_eq!(
        heads,
        vec![(ETH, 7), (OP, 6), (BASE, 3)],
        "every chain with a block at its own head (the anchor is #1); Arbitrum has none"
    );
    assert!(
        c0.at[&ETH].finalized.is_some(),
        "Ethereum has a finalized block"
    );
    assert!(!c0.chains.contains_key(&ARB));
    let line = |c: &reorg_collateral::chains::MultiCollateral, chain, a| {
        c.asset(chain, a)
            .and_then(|l| l.pending)
            .unwrap_or_else(|| panic!("a pending line of {a} on {chain}"))
    };
    let vault = line(c0, OP, vusdc);
    assert!(vault.rate.is_some() && vault.value.is_some_and(|v| !v.is_zero()));
    let remote = line(c0, OP, weth);
    assert_eq!(remote.status, PriceStatus::Fresh);
    assert_eq!(
        remote.price.map(|p| p.answer),
        Some(usd(3_100)),
        "OP's WETH at Ethereum's pending price"
    );
    let same_as = line(&got[1], OP, steth);
    assert_eq!(same_as.price.map(|p| p.answer), Some(usd(3_100)));
    let rebased = line(&got[3], OP, wbtc);
    assert!(rebased.value.is_some_and(|v| !v.is_zero()));
    let quarantined = line(&got[1], BASE, usdc);
    assert!(
        matches!(quarantined.status, PriceStatus::Quarantined { .. }),
        "{quarantined:?}"
    );
    assert!(!got[1].complete);
    assert!(
        got[4].chains[&BASE].pending.assets.is_empty(),
        "u[4] holds nothing on Base"
    );
    assert!(got[5].assets.is_empty(), "u[5] holds nothing anywhere");

    // One chain's reader: the snapshot (state and values) and a valuation at a point.
    let (fast_op, separate_op) = (
        fast.reader(OP).expect("OP read"),
        separate.reader(OP).expect("OP read"),
    );
    assert!(fast_op.reads_in_one_statement() && !separate_op.reads_in_one_statement());
    let (state, values) = fast_op.collateral_snapshot(&u).await.expect("snapshot");
    let (state_sep, values_sep) = separate_op.collateral_snapshot(&u).await.expect("snapshot");
    assert_eq!(state, state_sep, "the state the snapshot reports");
    assert_eq!(state.map(|s| s.head.number), Some(6));
    let ok =
        |v: Vec<Result<_, _>>| -> Vec<_> { v.into_iter().map(|c| c.expect("value")).collect() };
    let values = ok(values);
    assert_eq!(values, ok(values_sep), "OP's snapshot");
    assert_eq!(
        values[0], got[0].chains[&OP],
        "the chain's part of the multi-chain read"
    );
    let head = fast_op.head().await.expect("head").expect("a block");
    let at = ValuationPoint {
        block: head.number,
        now: head.timestamp + 60,
    };
    let at_fast = fast_op.collateral_many(&u, at).await.expect("values");
    let at_separate = separate_op.collateral_many(&u, at).await.expect("values");
    assert_eq!(ok(at_fast), ok(at_separate), "OP valued at a given point");
    let single = fast_op.collateral(u[3]).await.expect("one user");
    assert_eq!(single, values[3]);

    drop((eth, op, base_chain));
    for id in [OP, BASE, ARB] {
        let schema = format!("{base_schema}_c{}", id.0);
        let _ = base
            .pool()
            .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await;
    }
    let _ = base
        .pool()
        .execute(AssertSqlSafe(format!("DROP SCHEMA {base_schema} CASCADE")))
        .await;
}
