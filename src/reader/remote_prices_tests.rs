//! [`CollateralReader::with_price_from`] and the [`MultiChainReader`] over two harness
//! chains (memory stores): confirmed × confirmed, pending × pending, refused sources, the
//! price's origin in `explain`, a refused past read, and the reader's own refusals.

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};

use crate::chains::{ChainId, ChainsError, MultiChainReader};
use crate::error::Error;
use crate::model::{AssetId, PriceSource, PriceView};
use crate::reader::{CollateralReader, PriceOrigin};
use crate::store::MemoryStore;
use crate::testing::{Backends, Harness};
use crate::traits::HistoryError;

const A: ChainId = ChainId(1);
const B: ChainId = ChainId(10);

fn usd(whole: i64) -> I256 {
    I256::try_from(whole * 100_000_000).expect("small")
}

/// Chain A: WETH priced 2000 (finalized), then 2500 (pending). Chain B: the user holds WETH
/// and stETH (priced by the WETH feed), finalized, and B's own WETH feed says 1.
async fn two_chains() -> (Harness, Harness, Address) {
    let mut a = Harness::new(Backends::new(Arc::new(MemoryStore::new())), 2).await;
    let mut b = Harness::new(Backends::new(Arc::new(MemoryStore::new())), 2).await;
    let (weth, steth) = (a.assets[1].id, a.assets[4].id);
    let user = a.users[0];
    a.chain.mine(|x| {
        x.price(weth, usd(2_000), 8);
    });
    for _ in 0..2 {
        a.chain.mine(|_| {});
    }
    a.chain.mine(|x| {
        x.price(weth, usd(2_500), 8);
    });
    a.sync().await;
    b.chain.mine(|x| {
        x.deposit(weth, user, U256::from(10u64).pow(U256::from(18)))
            .deposit(
                steth,
                user,
                U256::from(2) * U256::from(10u64).pow(U256::from(18)),
            )
            .price(weth, usd(1), 8);
    });
    for _ in 0..3 {
        b.chain.mine(|_| {});
    }
    b.sync().await;
    (a, b, user)
}

fn reader_of(h: &Harness) -> CollateralReader {
    CollateralReader::new(h.backends.store.clone(), h.watcher.valuator().clone())
}

fn weth_of(h: &Harness) -> AssetId {
    h.assets[1].id
}

#[tokio::test]
async fn confirmed_balances_take_confirmed_prices_and_pending_ones_pending_prices() {
    let (a, b, user) = two_chains().await;
    let weth = weth_of(&a);
    let reader = reader_of(&b)
        .with_price_from(weth, a.backends.store.clone(), A, weth)
        .expect("WETH is its own price key");
    let there = a.backends.store.price(weth).await.expect("price");
    assert_eq!(there.confirmed.map(|p| p.answer), Some(usd(2_000)));
    assert_eq!(there.pending.map(|p| p.answer), Some(usd(2_500)));
    let got = reader.collateral(user).await.expect("collateral");
    for (side, want) in [(&got.confirmed, usd(2_000)), (&got.pending, usd(2_500))] {
        assert_eq!(side.assets.len(), 2, "WETH and stETH valued");
        for asset in &side.assets {
            assert_eq!(asset.price.map(|p| p.answer), Some(want), "{}", asset.asset);
        }
    }
    // The same valuation, by hand: A's price view, aged against the later head.
    let held = b
        .backends
        .store
        .user_balances(user)
        .await
        .expect("balances");
    let prices: Vec<PriceView> = held.iter().map(|_| there).collect();
    let (head_a, head_b) = (
        a.backends.store.head().await.unwrap().unwrap(),
        b.backends.store.head().await.unwrap().unwrap(),
    );
    let want = b
        .watcher
        .valuator()
        .collateral(
            user,
            head_b.number,
            head_a.timestamp.max(head_b.timestamp),
            &held,
            &prices,
        )
        .expect("valuation");
    assert_eq!(got, want);
    // Without the source, B's own feed (1 USD) values it.
    let own = reader_of(&b).collateral(user).await.expect("collateral");
    assert_eq!(own.pending.assets[0].price.map(|p| p.answer), Some(usd(1)));
}

#[tokio::test]
async fn a_source_on_an_asset_that_is_not_its_own_price_key_is_refused() {
    let (a, b, _) = two_chains().await;
    let other = a.backends.store.clone();
    let (steth, vault) = (b.assets[4].id, b.assets[3].id);
    let e = reader_of(&b)
        .with_price_from(steth, other.clone(), A, steth)
        .unwrap_err();
    assert!(
        matches!(e, ChainsError::NotAPriceKey { asset, price_source: PriceSource::SameAs(_) } if asset == steth),
        "{e}"
    );
    let e = reader_of(&b)
        .with_price_from(vault, other.clone(), A, vault)
        .unwrap_err();
    assert!(
        matches!(e, ChainsError::NotAPriceKey { asset, .. } if asset == vault),
        "{e}"
    );
    let unknown = Address::repeat_byte(0x77);
    let e = reader_of(&b)
        .with_price_from(unknown, other, A, unknown)
        .unwrap_err();
    assert!(
        matches!(e, ChainsError::UnknownAsset { asset } if asset == unknown),
        "{e}"
    );
}

#[tokio::test]
async fn explain_names_the_other_chain_and_the_past_is_refused() {
    let (a, b, user) = two_chains().await;
    let weth = weth_of(&a);
    let reader = reader_of(&b)
        .with_price_from(weth, a.backends.store.clone(), A, weth)
        .expect("source");
    let explained = reader.explain(user, 5).await.expect("explain");
    assert_eq!(
        explained.collateral,
        reader.collateral(user).await.expect("collateral")
    );
    for asset in &explained.assets {
        let origin = asset.pending.price.map(|p| p.origin);
        assert_eq!(
            origin,
            Some(PriceOrigin::OtherChain {
                chain: A,
                key: weth
            })
        );
    }
    let fin = b.expected_finalized().expect("B finalized");
    let past = reader.collateral_at_block(user, fin).await;
    assert!(
        matches!(past, Err(Error::History(HistoryError::Unsupported { .. }))),
        "{past:?}"
    );
    // The same read without a remote price answers.
    reader_of(&b)
        .collateral_at_block(user, fin)
        .await
        .expect("a past read of one chain");
}

#[tokio::test]
async fn a_multi_chain_reader_refuses_a_chain_twice_and_leaves_out_an_empty_chain() {
    let (a, b, user) = two_chains().await;
    let e = MultiChainReader::new([(A, reader_of(&a)), (B, reader_of(&b)), (A, reader_of(&b))])
        .unwrap_err();
    assert!(
        matches!(e, ChainsError::DuplicateChain { chain } if chain == A),
        "{e}"
    );

    let empty = CollateralReader::new(Arc::new(MemoryStore::new()), b.watcher.valuator().clone());
    let weth = weth_of(&a);
    let priced = reader_of(&b)
        .with_price_from(weth, a.backends.store.clone(), A, weth)
        .expect("source");
    let reader = MultiChainReader::new([(B, priced.clone()), (ChainId(8453), empty)])
        .expect("distinct chains");
    let c = reader.collateral(user).await.expect("collateral");
    // Chain A is read for its price (so it is in `at`), the empty chain is absent.
    let a_state = a.backends.store.window().await.unwrap().state().unwrap();
    let b_state = b.backends.store.window().await.unwrap().state().unwrap();
    assert_eq!(c.at, [(A, a_state), (B, b_state)].into_iter().collect());
    assert_eq!(c.chains.keys().copied().collect::<Vec<_>>(), vec![B]);
    let one = priced.collateral(user).await.expect("one chain");
    assert_eq!(c.chains[&B], one);
    assert_eq!(
        (c.confirmed, c.pending),
        (one.confirmed.total, one.pending.total)
    );
    assert_eq!(c.by_symbol().len(), 2, "WETH and stETH");
    assert_eq!(reader.holders().await.expect("holders"), vec![user]);
    assert!(c.asset(B, weth).is_some());
}
