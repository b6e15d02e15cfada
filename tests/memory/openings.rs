//! Lazy opening balances on the memory store, through a reorg: a watcher that starts in the
//! middle of a simulated chain, whose source reads balances from the chain's own replay
//! (`ChainBalances`), ends with every balance equal to the full chain's, where a watcher
//! without openings is refused at the first transfer out of a holder funded before its start;
//! a holder who never moves gets its balance from `opening_holders`.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use async_trait::async_trait;
use reorg_collateral::error::SourceError;
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceKey, Block, BlockNumber, BlockRef, Effect,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::oracle::replay;
use reorg_collateral::traits::ChainBalances;
use reorg_collateral::watcher::Openings;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const TOKEN: Address = Address::repeat_byte(0xA1);

/// The simulated chain, with `balanceOf` answered from its replay at the block asked.
#[derive(Debug)]
struct WithBalances(Arc<SimulatedChain>);

#[async_trait]
impl BlockSource for WithBalances {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.0.head().await
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.0.block_by_number(n).await
    }
    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.0.block_by_hash(h).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        self.0.chain_id().await
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.0.finalized().await
    }
    fn chain_balances(&self) -> Option<&dyn ChainBalances> {
        Some(self)
    }
}

#[async_trait]
impl ChainBalances for WithBalances {
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        let upto: Vec<Block> = self
            .0
            .canonical()
            .into_iter()
            .take_while(|b| b.header.number <= at.number)
            .collect();
        assert_eq!(
            upto.last().map(|b| b.header.hash),
            Some(at.hash),
            "read at a canonical block's hash"
        );
        let state = replay(&upto, None);
        Ok(keys.iter().map(|k| state.balance(k).pending).collect())
    }
}

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn config(start: BlockNumber, openings: Openings) -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 0, 10_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = start;
    config.openings = openings;
    config.max_price_age = u64::MAX;
    config
}

/// Blocks 0..=19: user 1..=4 funded in the first blocks, then transfers among them; user 5
/// funded at block 2 and never moving.
fn busy_chain() -> Arc<SimulatedChain> {
    let chain = Arc::new(SimulatedChain::new(0));
    for n in 0..20u64 {
        chain.mine(|b| {
            if n < 3 {
                for i in 1..=4 {
                    b.deposit(TOKEN, user(i), U256::from(1_000));
                }
                if n == 2 {
                    b.deposit(TOKEN, user(5), U256::from(77));
                }
            } else {
                let (from, to) = (1 + (n % 4) as u8, 1 + ((n + 1) % 4) as u8);
                b.transfer(TOKEN, user(from), user(to), U256::from(10 + n));
            }
        });
    }
    chain
}

async fn assert_equals_chain(store: &MemoryStore, chain: &SimulatedChain, step: &str) {
    let want = replay(&chain.canonical(), None);
    for i in 1..=4 {
        let key = BalanceKey {
            user: user(i),
            asset: TOKEN,
        };
        let got = store.balance(key).await.unwrap();
        assert_eq!(got.pending, want.balance(&key).pending, "{step}: user {i}");
    }
}

#[tokio::test]
async fn lazy_openings_equal_the_chain_through_a_reorg() {
    let chain = busy_chain();
    let source = Arc::new(WithBalances(chain.clone()));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config(10, Openings::Lazy), source, store.clone())
        .await
        .unwrap();
    watcher.sync().await.expect("sync from block 10");
    assert_equals_chain(&store, &chain, "from block 10").await;
    let openings = store.log(0..=u64::MAX).await.unwrap();
    let openings: Vec<_> = openings
        .iter()
        .filter(|r| matches!(r.effect, Effect::Reconcile(_)))
        .collect();
    assert_eq!(openings.len(), 4, "one opening per holder that moves");
    assert!(openings.iter().all(|r| r.log.is_correction()));

    // A reorg of the last two blocks with other transfers, and a new holder.
    chain.reorg(2);
    for n in 0..3u8 {
        chain.mine(|b| {
            b.transfer(TOKEN, user(1 + n), user(6), U256::from(5));
        });
    }
    watcher.sync().await.expect("sync after the reorg");
    assert_equals_chain(&store, &chain, "after the reorg").await;
    let key = BalanceKey {
        user: user(6),
        asset: TOKEN,
    };
    assert_eq!(store.balance(key).await.unwrap().pending, U256::from(15));
}

#[tokio::test]
async fn without_openings_a_late_start_quarantines_the_token() {
    let chain = busy_chain();
    let source = Arc::new(WithBalances(chain.clone()));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config(10, Openings::Off), source, store)
        .await
        .unwrap();
    // The first debit of a balance it never saw credited underflows: the token is
    // quarantined there (the default policy) instead of halting the watcher.
    let report = watcher.sync().await.expect("quarantined, not halted");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].asset, TOKEN);
    assert!(
        matches!(
            report.quarantined[0].reason,
            reorg_collateral::model::FaultReason::Underflow { .. }
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn opening_holders_are_read_at_the_start_block() {
    let chain = busy_chain();
    let source = Arc::new(WithBalances(chain.clone()));
    let store = Arc::new(MemoryStore::new());
    let mut config = config(10, Openings::Lazy);
    let silent = BalanceKey {
        user: user(5),
        asset: TOKEN,
    };
    config.opening_holders = vec![silent];
    let mut watcher = Watcher::new(config, source, store.clone()).await.unwrap();
    // User 5 never moves after block 2: no event names it, so only the operator's list
    // gives it its balance.
    watcher.sync().await.expect("sync");
    assert_eq!(store.balance(silent).await.unwrap().pending, U256::from(77));
    assert_equals_chain(&store, &chain, "with the named holder").await;
}
