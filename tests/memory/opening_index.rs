//! The opening index of rebasing assets on the memory store: a watcher that starts in the
//! middle of a simulated chain holding a UFragments-style asset (`gons ÷ gonsPerFragment`)
//! and a stETH-style one (`shares × pooled ÷ total shares`, moved by `TransferShares`),
//! whose source reads balances and indexes from the chain's own replay, writes each
//! asset's index at its start block before the opening balances, and ends with the
//! chain's balances through a reorg that removes a report, within what converting an
//! opening balance back to shares floors away; without the index read it does not.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use async_trait::async_trait;
use reorg_collateral::error::SourceError;
use reorg_collateral::model::{
    Asset, AssetId, AssetIndex, AssetRegistry, BalanceChange, BalanceKey, Block, BlockNumber,
    BlockRef,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::oracle::{Expected, replay};
use reorg_collateral::traits::ChainBalances;
use reorg_collateral::watcher::Openings;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const AMPL: Address = Address::repeat_byte(0xA1);
const STETH: Address = Address::repeat_byte(0xAE);
const START: BlockNumber = 10;

/// The simulated chain, with `balanceOf` and (if `indexes`) the index answered from its
/// replay at the block asked.
#[derive(Debug)]
struct FromReplay {
    chain: Arc<SimulatedChain>,
    indexes: bool,
}

impl FromReplay {
    fn state_at(&self, at: BlockRef) -> Expected {
        let upto: Vec<Block> = self
            .chain
            .canonical()
            .into_iter()
            .take_while(|b| b.header.number <= at.number)
            .collect();
        assert_eq!(
            upto.last().map(|b| b.header.hash),
            Some(at.hash),
            "read at a canonical block's hash"
        );
        replay(&upto, None)
    }
}

#[async_trait]
impl BlockSource for FromReplay {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.chain.head().await
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_number(n).await
    }
    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.chain.block_by_hash(h).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        self.chain.chain_id().await
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.chain.finalized().await
    }
    fn chain_balances(&self) -> Option<&dyn ChainBalances> {
        Some(self)
    }
}

#[async_trait]
impl ChainBalances for FromReplay {
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        let state = self.state_at(at);
        Ok(keys.iter().map(|k| state.balance(k).pending).collect())
    }

    async fn index_at(
        &self,
        asset: AssetId,
        at: BlockRef,
    ) -> Result<Option<AssetIndex>, SourceError> {
        if !self.indexes {
            return Ok(None);
        }
        Ok(self.state_at(at).pending_indexes.get(&asset).copied())
    }
}

fn user(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn ratio(pooled: u128, shares: u128) -> AssetIndex {
    AssetIndex::shares_ratio(U256::from(pooled), U256::from(shares)).unwrap()
}

fn config() -> WatcherConfig {
    let assets = AssetRegistry::new([
        Asset::new(AMPL, "AMPL", 0, 10_000),
        Asset::new(STETH, "stETH", 0, 10_000),
    ])
    .unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = START;
    config.openings = Openings::Lazy;
    config.max_price_age = u64::MAX;
    config
}

/// Blocks 0..=19: both assets minted to users 1..=4 at block 0 (AMPL at its first index,
/// stETH 1:1 before any report), rebased before the start block (stETH at 3, AMPL at 5)
/// and after it (AMPL at 12, stETH at 18), and moved among the users in every other block.
fn rebasing_chain() -> Arc<SimulatedChain> {
    let chain = Arc::new(SimulatedChain::new(0));
    mine(&chain, 0..=START);
    chain
}

/// Mines blocks `numbers` of [`rebasing_chain`] (the rest of it: `START + 1..20`).
fn mine(chain: &SimulatedChain, numbers: std::ops::RangeInclusive<u64>) {
    for n in numbers {
        chain.mine(|b| match n {
            0 => {
                b.event(
                    AMPL,
                    BalanceChange::Rebase {
                        index: AssetIndex::div_by(U256::from(1_000)),
                    },
                );
                for i in 1..=4u8 {
                    b.deposit(AMPL, user(i), U256::from(1_000));
                    b.event(
                        STETH,
                        BalanceChange::TransferShares {
                            from: Address::ZERO,
                            to: user(i),
                            shares: U256::from(10u128.pow(21) + u128::from(i)),
                        },
                    );
                }
            }
            3 | 18 => {
                let index = if n == 3 {
                    ratio(1_073_333_333_333_333_333_337, 1_000_000_000_000_000_000_003)
                } else {
                    ratio(1_191_919_191_919_191_919_191, 1_000_000_000_000_000_012_345)
                };
                b.event(STETH, BalanceChange::Rebase { index });
            }
            5 | 12 => {
                let gpf = if n == 5 { 700 } else { 1_300 };
                b.event(
                    AMPL,
                    BalanceChange::Rebase {
                        index: AssetIndex::div_by(U256::from(gpf)),
                    },
                );
            }
            _ => {
                let (from, to) = (user(1 + (n % 4) as u8), user(1 + ((n + 1) % 4) as u8));
                b.transfer(AMPL, from, to, U256::from(10 + n));
                b.event(
                    STETH,
                    BalanceChange::TransferShares {
                        from,
                        to,
                        shares: U256::from(1_000_003 * n),
                    },
                );
            }
        });
    }
}

/// Each user's pending balance of both assets in the store and on the chain.
async fn balances(store: &MemoryStore, chain: &SimulatedChain) -> Vec<(AssetId, U256, U256)> {
    let want = replay(&chain.canonical(), None);
    let mut out = Vec::new();
    for asset in [AMPL, STETH] {
        for i in 1..=4 {
            let key = BalanceKey {
                user: user(i),
                asset,
            };
            let got = store.balance(key).await.unwrap().pending;
            out.push((asset, got, want.balance(&key).pending));
        }
    }
    out
}

/// Every balance at most what the opening floored away below the chain's: an opening
/// balance converted to shares drops what is below one unit (AMPL: under one
/// `gonsPerFragment` of the start, worth at most `ceil(gpf_start ÷ gpf_now)` units now;
/// stETH: at most one share, as pooled ether exceeds shares, worth at most
/// `ceil(pooled ÷ shares)` wei now).
async fn assert_equals_chain(store: &MemoryStore, chain: &SimulatedChain, step: &str) {
    let want = replay(&chain.canonical(), None);
    let start = replay(&chain.canonical()[..START as usize], None);
    let (ampl, steth) = (want.pending_indexes[&AMPL], want.pending_indexes[&STETH]);
    let slack_ampl = start.pending_indexes[&AMPL].den.div_ceil(ampl.den);
    let slack_steth = steth.num.div_ceil(steth.den);
    for (asset, got, chain_value) in balances(store, chain).await {
        let slack = if asset == AMPL {
            slack_ampl
        } else {
            slack_steth
        };
        assert!(
            got <= chain_value && chain_value - got <= slack,
            "{step}: {asset}: {got}, the chain's {chain_value} (slack {slack})"
        );
    }
}

#[tokio::test]
async fn opening_indexes_are_written_at_the_start_block_and_convert_the_openings() {
    let chain = rebasing_chain();
    let source = Arc::new(FromReplay {
        chain: chain.clone(),
        indexes: true,
    });
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config(), source, store.clone()).await.unwrap();
    let report = watcher.sync().await.expect("sync of the start block");
    assert!(report.quarantined.is_empty(), "{report:?}");
    // The start block carries the indexes in effect at its parent.
    let before = replay(&chain.canonical()[..START as usize], None);
    assert_eq!(
        store.indexes_at(&[AMPL, STETH], START).await.unwrap(),
        vec![
            Some(before.pending_indexes[&AMPL]),
            Some(before.pending_indexes[&STETH])
        ],
        "the indexes at the start block"
    );
    mine(&chain, START + 1..=19);
    let report = watcher.sync().await.expect("sync to block 19");
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_equals_chain(&store, &chain, "at block 19").await;

    assert_eq!(
        store.indexes_at(&[STETH], 19).await.unwrap(),
        vec![Some(
            replay(&chain.canonical(), None).pending_indexes[&STETH]
        )],
        "the index of the report at block 18"
    );
    // A reorg of the last three blocks (the report at 18 among them) with other share
    // moves: the index rolls back to the opening one.
    chain.reorg(3);
    for n in 0..3u8 {
        chain.mine(|b| {
            b.transfer(AMPL, user(1 + n), user(2 + n), U256::from(3));
            b.event(
                STETH,
                BalanceChange::TransferShares {
                    from: user(1 + n),
                    to: user(2 + n),
                    shares: U256::from(777),
                },
            );
        });
    }
    let report = watcher.sync().await.expect("sync after the reorg");
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(
        store.indexes_at(&[STETH], 19).await.unwrap(),
        vec![Some(before.pending_indexes[&STETH])],
        "the opening index once the report is reorged out"
    );
    assert_equals_chain(&store, &chain, "after the reorg").await;
}

#[tokio::test]
async fn without_the_opening_index_a_late_start_reads_wrong_balances() {
    let chain = rebasing_chain();
    let source = Arc::new(FromReplay {
        chain: chain.clone(),
        indexes: false,
    });
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config(), source, store.clone()).await.unwrap();
    watcher.sync().await.expect("sync of the start block");
    assert_eq!(
        store.indexes_at(&[AMPL, STETH], START).await.unwrap(),
        vec![None, None],
        "no index before the first rebase the watcher sees"
    );
    mine(&chain, START + 1..=19);
    let _ = watcher.sync().await.expect("sync to block 19");
    // The openings are taken as shares 1:1 until the first rebase the watcher sees: every
    // AMPL balance is wrong after it.
    let wrong = balances(&store, &chain)
        .await
        .into_iter()
        .filter(|(asset, got, want)| *asset == AMPL && got != want)
        .count();
    assert_eq!(wrong, 4, "AMPL balances that differ from the chain's");
}
