//! `RpcBlockSource` against a real Hardhat node: deploy an ERC-20 and a Chainlink-style
//! aggregator, make transfers and price updates, create real reorgs with `evm_snapshot` /
//! `evm_revert` followed by different transactions, and check after every sync that the
//! engine's pending and confirmed state equals the chain's own `balanceOf` and
//! `latestRoundData` (`eth_call` at the head and at the finalized height).
//!
//! The test support installs Hardhat (`npm ci --prefix tests/chain`) on first use; without
//! Node.js the tests fail, naming `node` / `npm`.

#[cfg(feature = "postgres")]
use crate::support::pg;

use std::sync::Arc;

use crate::dev_node::DevNode;
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{
    BalanceStore, BlockSource, EngineConfig, PriceFeed, SourceError, Watcher, WatcherConfig,
};

const CONFIRMATIONS: u64 = 6;

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

struct Chain {
    node: DevNode,
    token: Address,
    feed: Address,
    users: Vec<Address>,
}

impl Chain {
    async fn start() -> Chain {
        let node = DevNode::start().await;
        let token = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
        let feed = node
            .deploy("MockAggregator", &U256::from(8).abi_encode())
            .await;
        let users = node.accounts[..5].to_vec();
        Chain {
            node,
            token,
            feed,
            users,
        }
    }

    fn source(&self) -> Arc<RpcBlockSource> {
        let decoders = Decoders::new()
            .with(self.token, Contract::Token { asset: self.token })
            .with(
                self.feed,
                Contract::Feed {
                    asset: self.token,
                    decimals: 8,
                },
            );
        let mut config = RpcConfig::new(decoders);
        // Hardhat's `finalized` is its latest block: a snapshot revert would undo
        // "finalized" blocks, so confirm by depth.
        config.finality = FinalityTag::Depth;
        // Small ranges and batches so catch-up exercises several of each.
        config.max_log_range = 16;
        config.header_batch = 8;
        Arc::new(RpcBlockSource::http(&self.node.url, config).expect("source"))
    }

    fn watcher_config(&self) -> WatcherConfig {
        let assets =
            AssetRegistry::new([Asset::new(self.token, "TST", 18, 8_000)]).expect("assets");
        let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
        config.fetch_concurrency = 4;
        config.apply_batch = 3;
        config.max_price_age = u64::MAX;
        config
    }

    fn user(&self, i: usize) -> Address {
        self.users[i]
    }

    /// Transfers `amount` whole tokens from user `from` to user `to` (one block).
    async fn pay(&self, from: usize, to: usize, amount: u64) {
        self.node
            .transfer(self.token, self.user(from), self.user(to), e18(amount))
            .await;
    }

    /// A new oracle answer in whole dollars (one block).
    async fn price(&self, dollars: i64) {
        self.node.set_price(self.feed, dollars * 100_000_000).await;
    }
}

/// Syncs, then compares the engine's state with the chain's at the head and at the
/// finalized height.
async fn sync_and_check(
    chain: &Chain,
    watcher: &mut Watcher,
    store: &dyn BalanceStore,
    prices: &dyn PriceFeed,
    step: &str,
) {
    watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let node = &chain.node;
    let head = *watcher.window().head().expect("head");
    assert_eq!(head.number, node.head().await, "{step}: head height");
    assert_eq!(
        head.hash,
        node.hash_at(head.number).await,
        "{step}: head hash"
    );
    let finalized = watcher.window().finalized_number();
    // Finality never moves back, so after a reorg to a shorter fork it may be more than
    // CONFIRMATIONS below the head.
    assert!(
        finalized >= head.number.checked_sub(CONFIRMATIONS),
        "{step}: finalized {finalized:?} lags head #{}",
        head.number
    );
    for &user in &chain.users {
        let view = store
            .balance(BalanceKey {
                user,
                asset: chain.token,
            })
            .await
            .expect("balance");
        let pending = node.balance_at(chain.token, user, head.number).await;
        assert_eq!(view.pending, pending, "{step}: pending balance of {user}");
        let confirmed = match finalized {
            Some(f) => node.balance_at(chain.token, user, f).await,
            None => U256::ZERO,
        };
        assert_eq!(
            view.confirmed, confirmed,
            "{step}: confirmed balance of {user}"
        );
    }
    let view = prices.price(chain.token).await.expect("price");
    let round = node.round_at(chain.feed, head.number).await;
    let pending = view.pending.expect("a pending price");
    assert_eq!(pending.answer, round.answer, "{step}: pending price");
    assert_eq!(
        pending.round_id,
        U256::from(round.roundId),
        "{step}: pending round"
    );
    assert_eq!(
        pending.updated_at,
        round.updatedAt.to::<u64>(),
        "{step}: pending updatedAt"
    );
    let confirmed_round = match finalized {
        Some(f) => node.round_at(chain.feed, f).await,
        None => node.round_at(chain.feed, 0).await,
    };
    match view.confirmed {
        Some(p) => {
            assert_eq!(p.answer, confirmed_round.answer, "{step}: confirmed price");
            assert_eq!(
                p.round_id,
                U256::from(confirmed_round.roundId),
                "{step}: confirmed round"
            );
        }
        None => assert_eq!(
            confirmed_round.roundId.to::<u64>(),
            0,
            "{step}: no confirmed price"
        ),
    }
}

/// The whole scenario against any store.
async fn scenario(chain: &Chain, store: Arc<dyn BalanceStore>, prices: Arc<dyn PriceFeed>) {
    let source = chain.source();
    let mut watcher = Watcher::new(chain.watcher_config(), source.clone(), store.clone())
        .await
        .expect("watcher");
    let (s, p) = (&*store, &*prices);
    let node = &chain.node;

    // Plain history: funding, a price, a few transfers.
    chain.price(2_000).await;
    chain.pay(0, 1, 1_000).await;
    chain.pay(0, 2, 500).await;
    chain.pay(0, 3, 250).await;
    sync_and_check(chain, &mut watcher, s, p, "funding").await;
    chain.pay(1, 2, 100).await;
    chain.price(2_100).await;
    node.mine(CONFIRMATIONS + 2).await;
    sync_and_check(chain, &mut watcher, s, p, "confirmed history").await;

    // Reorg to a longer fork: blocks the watcher saw are replaced by different ones.
    let snap = node.snapshot().await;
    chain.pay(2, 3, 50).await;
    chain.pay(1, 3, 10).await;
    chain.price(2_200).await;
    sync_and_check(chain, &mut watcher, s, p, "before reorg 1").await;
    node.revert(snap).await;
    chain.pay(2, 1, 70).await;
    chain.price(1_900).await;
    chain.pay(3, 4, 5).await;
    node.mine(2).await;
    sync_and_check(chain, &mut watcher, s, p, "after reorg 1 (longer fork)").await;
    assert_eq!(watcher.stats().reorgs, 1, "one reorg");

    // Reorg to a shorter fork: the node's head goes back.
    let snap = node.snapshot().await;
    chain.pay(1, 4, 1).await;
    chain.pay(1, 4, 2).await;
    chain.price(2_500).await;
    sync_and_check(chain, &mut watcher, s, p, "before reorg 2").await;
    node.revert(snap).await;
    chain.pay(4, 0, 3).await;
    sync_and_check(chain, &mut watcher, s, p, "after reorg 2 (shorter fork)").await;

    // Same-height reorg: one block replaced by a different one.
    let snap = node.snapshot().await;
    chain.pay(2, 4, 9).await;
    sync_and_check(chain, &mut watcher, s, p, "before reorg 3").await;
    node.revert(snap).await;
    chain.price(2_050).await;
    sync_and_check(chain, &mut watcher, s, p, "after reorg 3 (same height)").await;
    assert_eq!(watcher.stats().reorgs, 3, "three reorgs");

    // Long catch-up through range getLogs, several chunks, with events spread out.
    for i in 0..5u64 {
        node.mine(40 + i).await;
        chain.pay(i as usize % 4, 4, 1 + i).await;
        chain.price(2_000 + i as i64).await;
    }
    node.mine(3).await;
    sync_and_check(chain, &mut watcher, s, p, "catch-up").await;

    // A reorg right after catch-up, then everything confirmed.
    let snap = node.snapshot().await;
    chain.pay(0, 1, 42).await;
    sync_and_check(chain, &mut watcher, s, p, "before reorg 4").await;
    node.revert(snap).await;
    chain.pay(0, 2, 43).await;
    chain.pay(0, 3, 44).await;
    node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(chain, &mut watcher, s, p, "final").await;
    assert_eq!(watcher.stats().reorgs, 4, "four reorgs");

    // The range path and the per-block path deliver the same blocks.
    let head = node.head().await;
    let ranged = source.blocks(0, head).await.expect("range fetch");
    assert_eq!(ranged.len() as u64, head + 1);
    for block in &ranged {
        let single = source
            .block_by_number(block.header.number)
            .await
            .expect("fetch")
            .expect("block");
        assert_eq!(&single, block, "block #{}", block.header.number);
        let by_hash = source
            .block_by_hash(block.header.hash)
            .await
            .expect("fetch")
            .expect("block");
        assert_eq!(&by_hash, block);
    }
    let events: usize = ranged.iter().map(|b| b.events.len()).sum();
    let updates: usize = ranged.iter().map(|b| b.prices.len()).sum();
    assert!(
        events >= 12 && updates >= 8,
        "{events} events, {updates} prices"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_follows_a_real_chain_through_reorgs() {
    let chain = Chain::start().await;
    let store = Arc::new(MemoryStore::new());
    scenario(&chain, store.clone(), store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_follows_a_real_chain_through_reorgs() {
    let chain = Chain::start().await;
    let store = Arc::new(pg::fresh_store().await);
    let assets = AssetRegistry::new([Asset::new(chain.token, "TST", 18, 8_000)]).expect("assets");
    store
        .register_assets(&assets)
        .await
        .expect("register assets");
    scenario(&chain, store.clone(), store).await;
}

/// Hardhat's `finalized` tag is its latest block: following it would finalize blocks that
/// `evm_revert` undoes. With the default finality (the tag) the source refuses, naming
/// the chain and the fix; with depth finality it reports no tag and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_tag_finality_is_refused_and_depth_works() {
    let chain = Chain::start().await;
    let decoders = Decoders::new().with(chain.token, Contract::Token { asset: chain.token });
    let source =
        RpcBlockSource::http(&chain.node.url, RpcConfig::new(decoders.clone())).expect("source");
    let err = source
        .head()
        .await
        .expect_err("tag finality on a dev chain");
    assert!(
        matches!(
            err,
            SourceError::DevChainFinality {
                chain_id: 31_337,
                tag: "finalized",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("FinalityTag::Depth"), "{err}");
    let err = source.finalized().await.expect_err("still refused");
    assert!(matches!(err, SourceError::DevChainFinality { .. }), "{err}");

    let mut config = RpcConfig::new(decoders);
    config.finality = FinalityTag::Depth;
    let source = RpcBlockSource::http(&chain.node.url, config).expect("source");
    let head = source.head().await.expect("head");
    assert_eq!(head, chain.node.head().await);
    assert_eq!(source.finalized().await.expect("finalized"), None);
    assert!(
        source
            .block_by_number(head + 10)
            .await
            .expect("fetch")
            .is_none()
    );
    assert!(
        source
            .block_by_hash(alloy_primitives::B256::repeat_byte(7))
            .await
            .expect("fetch")
            .is_none()
    );
}

/// The MockAggregator has 8 decimals: configured as 18, the source refuses to start and
/// names the feed and both figures; configured as 8, it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_decimals_are_checked_against_the_aggregator() {
    let chain = Chain::start().await;
    let config = |decimals| {
        let decoders = Decoders::new()
            .with(chain.token, Contract::Token { asset: chain.token })
            .with(
                chain.feed,
                Contract::Feed {
                    asset: chain.token,
                    decimals,
                },
            );
        let mut config = RpcConfig::new(decoders);
        config.finality = FinalityTag::Depth;
        config
    };
    let wrong = RpcBlockSource::http(&chain.node.url, config(18)).expect("source");
    let err = wrong.block_by_number(0).await.expect_err("decimals differ");
    assert!(
        matches!(err, SourceError::FeedDecimals { feed, configured: 18, on_chain: 8 } if feed == chain.feed),
        "{err}"
    );
    assert!(err.to_string().contains(&chain.feed.to_string()), "{err}");
    let right = RpcBlockSource::http(&chain.node.url, config(8)).expect("source");
    right.check().await.expect("decimals match");
    assert!(right.block_by_number(0).await.expect("fetch").is_some());
}

#[cfg(feature = "rpc-ws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_new_heads_drive_the_watcher() {
    use futures::StreamExt;
    let chain = Chain::start().await;
    let ws = chain.node.url.replacen("http://", "ws://", 1);
    let decoders = Decoders::new().with(chain.token, Contract::Token { asset: chain.token });
    let mut config = RpcConfig::new(decoders);
    config.finality = FinalityTag::Depth;
    let source = Arc::new(RpcBlockSource::ws(&ws, config).await.expect("ws source"));
    let mut heads = Box::pin(source.new_heads().await.expect("subscribe"));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(chain.watcher_config(), source.clone(), store.clone())
        .await
        .expect("watcher");
    for amount in [3, 4, 5] {
        chain.pay(0, 1, amount).await;
        // A hang guard, not a latency bound: a busy machine may take seconds.
        let head = tokio::time::timeout(std::time::Duration::from_secs(60), heads.next())
            .await
            .expect("a newHeads notification (hang guard: 60 s)")
            .expect("subscription open");
        assert_eq!(head, chain.node.head().await);
        watcher.sync().await.expect("sync");
        assert_eq!(watcher.window().head().map(|h| h.number), Some(head));
    }
    let view = store
        .balance(BalanceKey {
            user: chain.user(1),
            asset: chain.token,
        })
        .await
        .expect("balance");
    assert_eq!(view.pending, e18(12));
}
