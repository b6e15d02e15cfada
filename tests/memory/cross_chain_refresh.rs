//! A price that moves on chain A refreshes chain B's cached holders of the asset it prices,
//! with no block on B (the watcher polls its remote prices), and every update names the
//! chain of the watcher that made it.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, I256, U256};
use async_trait::async_trait;
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::chains::ChainId;
use reorg_collateral::error::SourceError;
use reorg_collateral::model::{Asset, AssetRegistry, Block, BlockNumber};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::{BlockSource, ChainBalances, CollateralCache};
use reorg_collateral::watcher::{Notification, UpdateCause};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;

/// Ethereum's WETH, whose feed prices it there.
const WETH_A: Address = Address::repeat_byte(0xA1);
/// Base's WETH, priced by Ethereum's feed.
const WETH_B: Address = Address::repeat_byte(0xB1);
const USER: Address = Address::repeat_byte(0x01);

/// A simulated chain that names its chain id.
#[derive(Debug)]
struct Named {
    chain: SimulatedChain,
    id: u64,
}

#[async_trait]
impl BlockSource for Named {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.chain.head().await
    }
    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_number(number).await
    }
    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(hash).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(Some(self.id))
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }
    fn chain_balances(&self) -> Option<&dyn ChainBalances> {
        self.chain.chain_balances()
    }
}

fn config(asset: Address, symbol: &str) -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(asset, symbol, 18, 10_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    config.max_price_age = u64::MAX;
    config.remote_price_interval = Duration::from_millis(10);
    config
}

fn usd(dollars: i64) -> I256 {
    I256::try_from(dollars * 100_000_000).unwrap()
}

/// The first update of `sub` that values `USER`'s pending side at `pending` (earlier ones,
/// e.g. of the first poll of the remote price, are passed over). Waits at most 20 s per
/// notification: a missing refresh fails, it is not skipped.
async fn update_with(
    sub: &mut reorg_collateral::watcher::Subscription,
    pending: Decimal,
) -> Arc<reorg_collateral::watcher::CollateralUpdate> {
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), sub.recv())
            .await
            .unwrap_or_else(|_| panic!("no refresh at {pending} within 20 s"))
            .expect("watcher gone");
        if let Notification::Update(u) = n
            && u.users
                .iter()
                .any(|t| t.user == USER && t.pending == pending)
        {
            return u;
        }
    }
}

#[tokio::test]
async fn a_price_moving_on_chain_a_refreshes_chain_b_without_a_block_on_b() {
    let (eth, base) = (SimulatedChain::new(0), SimulatedChain::new(0));
    let eth = Arc::new(Named { chain: eth, id: 1 });
    let base = Arc::new(Named {
        chain: base,
        id: 8453,
    });
    let (store_a, store_b) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let mut watcher_a = Watcher::new(config(WETH_A, "WETH"), eth.clone(), store_a.clone())
        .await
        .unwrap();
    eth.chain.mine(|b| {
        b.price(WETH_A, usd(2_000), 8);
    });
    watcher_a.sync().await.unwrap();

    let cache = Arc::new(MemoryCache::new());
    let mut watcher_b = Watcher::new(config(WETH_B, "WETH"), base.clone(), store_b.clone())
        .await
        .unwrap()
        .with_cache(cache.clone())
        .with_price_from(WETH_B, store_a.clone(), ChainId(1), WETH_A)
        .unwrap();
    let mut sub = watcher_b.subscribe();
    base.chain.mine(|b| {
        b.deposit(WETH_B, USER, U256::from(10u64).pow(U256::from(18)));
    });
    watcher_b.sync().await.unwrap();
    // The first poll of the remote price refreshes B's holders at A's price.
    let first = update_with(&mut sub, Decimal::from(2_000)).await;
    assert_eq!(
        first.chain,
        ChainId(8453),
        "updates name the watcher's chain"
    );
    let pending = |e: &reorg_collateral::model::CachedCollateral| e.pending;
    assert_eq!(
        cache.get(USER).await.unwrap().map(|e| pending(&e)),
        Some(Decimal::from(2_000))
    );

    // The price moves on A; B mines nothing.
    let b_head = watcher_b.window().head().copied();
    eth.chain.mine(|b| {
        b.price(WETH_A, usd(2_500), 8);
    });
    watcher_a.sync().await.unwrap();
    let update = update_with(&mut sub, Decimal::from(2_500)).await;
    assert_eq!(
        update.cause,
        UpdateCause::PriceFanOut,
        "a price refresh, not a step"
    );
    assert_eq!(update.chain, ChainId(8453));
    assert_eq!(
        Some(update.block),
        b_head.map(|h| h.id()),
        "valued at B's unchanged head"
    );
    let entry = cache.get(USER).await.unwrap().expect("entry");
    assert_eq!(
        entry.pending,
        Decimal::from(2_500),
        "B's cache follows A's pending price"
    );
    assert_eq!(watcher_b.window().head().copied(), b_head, "no block on B");
    let read = watcher_b.collateral(USER).await.unwrap();
    assert_eq!(read.pending.total, Decimal::from(2_500));

    // A's price becomes confirmed (3 blocks on top), and so does B's balance: the confirmed
    // value follows A's confirmed price, still with no new price on B.
    for _ in 0..3 {
        eth.chain.mine(|_| {});
    }
    watcher_a.sync().await.unwrap();
    for _ in 0..3 {
        base.chain.mine(|_| {});
    }
    watcher_b.sync().await.unwrap();
    let confirmed = loop {
        let entry = cache.get(USER).await.unwrap().expect("entry");
        let idle = watcher_b.refresh_status().idle;
        if idle && entry.confirmed == Decimal::from(2_500) {
            break entry.confirmed;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), sub.recv())
            .await
            .expect("no refresh within 20 s");
    };
    assert_eq!(confirmed, Decimal::from(2_500));
}
