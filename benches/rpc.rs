//! Catch-up of N blocks from a local Hardhat node: the watcher's parallel, ranged fetch
//! (`RpcBlockSource::blocks`: batched headers + range `eth_getLogs`, 8 chunks in flight)
//! against fetching one block at a time (`eth_getBlockByNumber` + `eth_getLogs` by hash,
//! sequentially), measured in the same run on the same chain. Also shown: per-block fetches
//! with 8 in flight, to separate concurrency from batching, and the ranged fetch through
//! two endpoints (the same node twice), for the cost of the fallback policy.
//!
//! ```sh
//! cargo bench --bench rpc --features rpc,testing            # N = 10,000
//! RPC_BENCH_BLOCKS=2000 cargo bench --bench rpc --features rpc,testing
//! ```

#[path = "../tests/rpc/dev_node.rs"]
mod node;

use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolValue;
use async_trait::async_trait;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey, Block, BlockNumber};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{BlockSource, EngineConfig, SourceError, Watcher, WatcherConfig};

/// The RPC source without its range override: `blocks()` falls back to the trait's
/// default, one `block_by_number` after another.
#[derive(Debug)]
struct OneAtATime(Arc<RpcBlockSource>);

#[async_trait]
impl BlockSource for OneAtATime {
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
}

async fn catch_up(
    source: Arc<dyn BlockSource>,
    token: Address,
    users: &[Address],
    concurrency: usize,
    apply_batch: usize,
) -> (f64, Vec<U256>) {
    let assets = AssetRegistry::new([Asset::new(token, "TST", 18, 8_000)]).expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    config.fetch_concurrency = concurrency;
    config.apply_batch = apply_batch;
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, source, store.clone())
        .await
        .expect("watcher");
    let t = Instant::now();
    watcher.sync().await.expect("sync");
    let secs = t.elapsed().as_secs_f64();
    let mut balances = Vec::new();
    for &user in users {
        let v = store
            .balance(BalanceKey { user, asset: token })
            .await
            .expect("balance");
        balances.push(v.pending);
    }
    (secs, balances)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("RPC_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let node = node::DevNode::start().await;
    let e18 = U256::from(10u64).pow(U256::from(18));
    let token = node
        .deploy("TestToken", &(U256::from(1_000_000u64) * e18).abi_encode())
        .await;
    let feed = node
        .deploy("MockAggregator", &U256::from(8).abi_encode())
        .await;
    let users = node.accounts[..5].to_vec();

    // The chain: one block in ten carries a transfer or a price update, the rest are empty.
    let t = Instant::now();
    let mut i = 0u64;
    while node.head().await < n {
        if i.is_multiple_of(2) {
            node.transfer(
                token,
                users[0],
                users[1 + (i as usize / 2) % 4],
                U256::from(1 + i),
            )
            .await;
        } else {
            node.set_price(feed, 200_000_000_000 + i as i64).await;
        }
        node.mine(9).await;
        i += 1;
    }
    let head = node.head().await;
    eprintln!(
        "chain of {head} blocks ({i} with events) built in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let decoders = Decoders::new()
        .with(token, Contract::Token { asset: token })
        .with(
            feed,
            Contract::Feed {
                asset: token,
                decimals: 8,
            },
        );
    let mut config = RpcConfig::new(decoders);
    config.finality = FinalityTag::Depth;
    let rpc = Arc::new(RpcBlockSource::http(&node.url, config.clone()).expect("source"));
    // The same node behind two endpoints: the fallback policy's cost (heads from both,
    // endpoint ordering) on the ranged path.
    let two =
        Arc::new(RpcBlockSource::http_fallback(&[&node.url, &node.url], config).expect("source"));

    let (one, b1) = catch_up(Arc::new(OneAtATime(rpc.clone())), token, &users, 1, 1).await;
    eprintln!(
        "one at a time            : {head} blocks in {one:7.2} s ({:8.0} blocks/s)",
        head as f64 / one
    );
    let (conc, b2) = catch_up(Arc::new(OneAtATime(rpc.clone())), token, &users, 8, 64).await;
    eprintln!(
        "per-block, 8 in flight   : {head} blocks in {conc:7.2} s ({:8.0} blocks/s)",
        head as f64 / conc
    );
    let (par, b3) = catch_up(rpc.clone(), token, &users, 8, 64).await;
    eprintln!(
        "ranged, 8 chunks parallel: {head} blocks in {par:7.2} s ({:8.0} blocks/s)",
        head as f64 / par
    );
    assert_eq!(b1, b2, "same end state");
    let (fb, b4) = catch_up(two, token, &users, 8, 64).await;
    eprintln!(
        "ranged, 2 endpoints      : {head} blocks in {fb:7.2} s ({:8.0} blocks/s)",
        head as f64 / fb
    );
    assert_eq!(b1, b3, "same end state");
    assert_eq!(b1, b4, "same end state");
    println!(
        "rpc catch-up of {head} blocks: one at a time {one:.2} s, per-block x8 {conc:.2} s ({:.1}x), ranged parallel {par:.2} s ({:.1}x), ranged over 2 endpoints {fb:.2} s ({:.1}x)",
        one / conc,
        one / par,
        one / fb
    );
}
