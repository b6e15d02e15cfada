//! `RpcBlockSource` over two endpoints of one chain: two Hardhat nodes in replica mode
//! (same genesis date, every block's timestamp set), given the same transactions, serve
//! identical blocks. One is killed mid-run, or lags (fewer blocks); ingestion goes on from
//! the other, and the engine's state equals the chain's `balanceOf`.

use std::sync::Arc;
use std::time::Duration;

use crate::dev_node::DevNode;
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Two replica nodes and the token deployed on both.
struct Replicas {
    nodes: [DevNode; 2],
    token: Address,
    users: Vec<Address>,
}

impl Replicas {
    async fn start() -> Replicas {
        let (a, b) = tokio::join!(DevNode::replica(), DevNode::replica());
        let nodes = [a, b];
        let mut token = Address::ZERO;
        for node in &nodes {
            token = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
        }
        let users = nodes[0].accounts[..4].to_vec();
        let r = Replicas {
            nodes,
            token,
            users,
        };
        r.assert_same_block(r.nodes[0].head().await).await;
        r
    }

    /// On the nodes `on`: a transfer from user `from` to user `to`, then `empty` blocks.
    async fn step(&self, on: &[usize], from: usize, to: usize, amount: u64, empty: u64) {
        for &i in on {
            let node = &self.nodes[i];
            node.transfer(self.token, self.users[from], self.users[to], e18(amount))
                .await;
            node.mine(empty).await;
        }
    }

    async fn assert_same_block(&self, number: u64) {
        assert_eq!(
            self.nodes[0].hash_at(number).await,
            self.nodes[1].hash_at(number).await,
            "replicas differ at #{number}"
        );
    }

    fn source(&self, order: [usize; 2]) -> Arc<RpcBlockSource> {
        let decoders = Decoders::new().with(self.token, Contract::Token { asset: self.token });
        let mut config = RpcConfig::new(decoders);
        config.finality = FinalityTag::Depth;
        config.max_log_range = 16;
        config.header_batch = 8;
        // Fail over after one retry of a dead endpoint.
        config.transport.max_retries = 1;
        config.transport.backoff = Duration::from_millis(50);
        let urls = order.map(|i| self.nodes[i].url.as_str());
        Arc::new(RpcBlockSource::http_fallback(&urls, config).expect("source"))
    }

    async fn watcher(&self, source: Arc<RpcBlockSource>) -> (Watcher, Arc<MemoryStore>) {
        let assets =
            AssetRegistry::new([Asset::new(self.token, "TST", 18, 8_000)]).expect("assets");
        let mut config = WatcherConfig::new(EngineConfig::new(assets, 6));
        config.fetch_concurrency = 4;
        config.apply_batch = 3;
        let store = Arc::new(MemoryStore::new());
        let watcher = Watcher::new(config, source, store.clone())
            .await
            .expect("watcher");
        (watcher, store)
    }

    /// After a sync: the watcher's head is node `i`'s, and every pending balance is its
    /// `balanceOf` there.
    async fn check(&self, watcher: &mut Watcher, store: &MemoryStore, i: usize, step: &str) {
        watcher
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
        let node = &self.nodes[i];
        let head = *watcher.window().head().expect("head");
        assert_eq!(head.number, node.head().await, "{step}: head");
        assert_eq!(head.hash, node.hash_at(head.number).await, "{step}: hash");
        for &user in &self.users {
            let view = store
                .balance(BalanceKey {
                    user,
                    asset: self.token,
                })
                .await
                .expect("balance");
            let chain = node.balance_at(self.token, user, head.number).await;
            assert_eq!(view.pending, chain, "{step}: balance of {user}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_goes_on_when_one_endpoint_is_killed() {
    let mut r = Replicas::start().await;
    let both = [0, 1];
    r.step(&both, 0, 1, 1_000, 3).await;
    r.step(&both, 0, 2, 500, 20).await;
    r.assert_same_block(r.nodes[1].head().await).await;

    let source = r.source([0, 1]);
    let (mut watcher, store) = r.watcher(source.clone()).await;
    r.check(&mut watcher, &store, 0, "both up").await;

    // The primary dies. Both endpoints reported the same head, so the primary is asked
    // first: the fetch fails over to the replica.
    r.nodes[0].kill();
    let head = r.nodes[1].head().await;
    let blocks = source
        .blocks(1, head)
        .await
        .expect("range from the replica");
    assert_eq!(blocks.len() as u64, head);
    assert_eq!(
        blocks.last().map(|b| b.header.hash),
        Some(r.nodes[1].hash_at(head).await)
    );
    // The chain goes on (on the replica) with a long catch-up.
    for k in 0..4u64 {
        r.step(&[1], 1, 3, 10 + k, 30).await;
    }
    r.check(&mut watcher, &store, 1, "primary killed").await;
    r.step(&[1], 2, 3, 7, 2).await;
    r.check(&mut watcher, &store, 1, "primary still down").await;
    let block = source
        .block_by_number(r.nodes[1].head().await - 2)
        .await
        .expect("fetch")
        .expect("block");
    assert_eq!(block.events.len(), 1, "the last transfer, from the replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_endpoint_does_not_hold_ingestion_back() {
    let r = Replicas::start().await;
    let both = [0, 1];
    r.step(&both, 0, 1, 1_000, 3).await;
    r.step(&both, 0, 2, 500, 5).await;
    // Node 1 stops here; node 0 goes on.
    let lag_head = r.nodes[1].head().await;
    r.assert_same_block(lag_head).await;
    for k in 0..3u64 {
        r.step(&[0], 1, 3, 10 + k, 25).await;
    }
    assert!(r.nodes[0].head().await > lag_head + 50);

    // The lagging node is the primary: the source follows the node ahead.
    let source = r.source([1, 0]);
    let (mut watcher, store) = r.watcher(source.clone()).await;
    r.check(&mut watcher, &store, 0, "primary lags").await;
    r.step(&[0], 2, 3, 3, 1).await;
    r.check(&mut watcher, &store, 0, "primary still lags").await;
    // Heights the lagging node has are the same blocks on both.
    let low = source
        .block_by_number(lag_head)
        .await
        .expect("fetch")
        .expect("block");
    assert_eq!(low.header.hash, r.nodes[1].hash_at(lag_head).await);
}
