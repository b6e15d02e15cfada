//! Two development chains at once (#20 item 6): two Hardhat nodes on private ports with
//! different chain ids (31337 and 1337), an OpenZeppelin 5.1 ERC20 (compiled from its npm
//! source, see `published`) and a price feed on each — the token at the same address on
//! both, two assets — one watcher per chain into its own memory store, started from the
//! chain's `ChainDefaults`. One chain reorgs (`evm_snapshot` / `evm_revert`) while the other
//! advances; after every sync each chain's balances equal its own `balanceOf` at the head
//! and at the finalized height, the other chain's store is untouched, and the multi-chain
//! collateral equals the sum of the chains' `balanceOf` × price.

use std::sync::Arc;

use alloy_primitives::{Address, U64, U256};
use alloy_sol_types::SolValue;
use reorg_collateral::chains::{ChainDefaults, ChainId, MultiChainReader};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::watcher::Openings;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use rust_decimal::Decimal;

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 4;

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// One chain: its node, token, feed and price, and its own watcher and store.
struct Chain {
    id: ChainId,
    node: DevNode,
    token: Address,
    feed: Address,
    price: i64,
    users: Vec<Address>,
    store: Arc<MemoryStore>,
    watcher: Watcher,
}

impl Chain {
    async fn start(id: u64, price: i64) -> Chain {
        let node = DevNode::start_on_chain(id).await;
        let served: U64 = node
            .client
            .request_noparams("eth_chainId")
            .await
            .expect("eth_chainId");
        assert_eq!(served.to::<u64>(), id, "the node serves its own chain id");
        let users = node.accounts[..5].to_vec();
        let args = (users.clone(), e18(1_000)).abi_encode_params();
        let token = published::deploy(&node, "OzToken", &args).await;
        let feed = node
            .deploy("MockAggregator", &U256::from(8).abi_encode())
            .await;
        node.set_price(feed, price * 100_000_000).await;
        let decoders = Decoders::new()
            .with(token, Contract::Token { asset: token })
            .with(
                feed,
                Contract::Feed {
                    asset: token,
                    decimals: 8,
                },
            );
        let defaults = ChainDefaults::for_chain(id);
        assert_eq!(
            defaults.finality,
            FinalityTag::Depth,
            "a dev chain confirms by depth"
        );
        let mut rpc = RpcConfig::new(decoders);
        defaults.apply(&mut rpc);
        // Small ranges so catch-up fetches several.
        rpc.max_log_range = 8;
        let source = Arc::new(RpcBlockSource::http(&node.url, rpc).expect("source"));
        let assets = AssetRegistry::new([Asset::new(token, "OZT", 18, 10_000)]).expect("assets");
        // A shallower depth than the dev default, so the test sees blocks finalize.
        let mut config = WatcherConfig::new(EngineConfig::new(
            assets,
            defaults.with_confirmations(CONFIRMATIONS).confirmations,
        ));
        config.max_price_age = u64::MAX;
        // From genesis: the constructor's mints are Transfer events.
        config.openings = Openings::Off;
        let store = Arc::new(MemoryStore::new());
        let watcher = Watcher::new(config, source, store.clone())
            .await
            .expect("watcher");
        Chain {
            id: ChainId(id),
            node,
            token,
            feed,
            price,
            users,
            store,
            watcher,
        }
    }

    async fn pay(&self, from: usize, to: usize, amount: u64) {
        self.node
            .transfer(self.token, self.users[from], self.users[to], e18(amount))
            .await;
    }

    /// Syncs, then checks this chain's store against its own node.
    async fn sync_and_check(&mut self, step: &str) {
        self.watcher
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{} {step}: sync: {e}", self.id));
        let head = self.watcher.window().head().expect("head").number;
        assert_eq!(head, self.node.head().await, "{} {step}: head", self.id);
        self.check(step).await;
    }

    /// Every user's pending and confirmed balance equals `balanceOf` at the store's head
    /// and at its finalized height, and the store's head is a block of the node's chain
    /// (the node may be ahead: blocks not synced yet).
    async fn check(&self, step: &str) {
        let head = *self.watcher.window().head().expect("head");
        assert_eq!(
            head.hash,
            self.node.hash_at(head.number).await,
            "{} {step}: head hash",
            self.id
        );
        let finalized = self.watcher.window().finalized_number();
        for &user in &self.users {
            let view = self
                .store
                .balance(BalanceKey {
                    user,
                    asset: self.token,
                })
                .await
                .expect("balance");
            let pending = self.node.balance_at(self.token, user, head.number).await;
            assert_eq!(
                view.pending, pending,
                "{} {step}: pending of {user}",
                self.id
            );
            let confirmed = match finalized {
                Some(f) => self.node.balance_at(self.token, user, f).await,
                None => U256::ZERO,
            };
            assert_eq!(
                view.confirmed, confirmed,
                "{} {step}: confirmed of {user}",
                self.id
            );
        }
    }

    /// `user`'s pending value from the node: `balanceOf` at the head × the price.
    async fn pending_value(&self, user: Address) -> Decimal {
        let head = self.node.head().await;
        let raw = self.node.balance_at(self.token, user, head).await;
        let whole = raw / e18(1);
        assert_eq!(whole * e18(1), raw, "whole tokens only");
        Decimal::from(whole.to::<u64>()) * Decimal::from(self.price)
    }
}

/// Both chains' multi-chain collateral of every user equals the sum of the chains' own
/// values: the node's `balanceOf` × price (pending) and each chain's confirmed valuation.
async fn check_multi(a: &Chain, b: &Chain, step: &str) {
    let multi = MultiChainReader::new([
        (a.id, a.watcher.reader().clone()),
        (b.id, b.watcher.reader().clone()),
    ])
    .expect("two chains");
    for &user in &a.users {
        let m = multi
            .collateral(user)
            .await
            .expect("multi-chain collateral");
        let pending = a.pending_value(user).await + b.pending_value(user).await;
        assert_eq!(m.pending, pending, "{step}: pending of {user}");
        let (ca, cb) = (
            a.watcher.collateral(user).await.expect("a"),
            b.watcher.collateral(user).await.expect("b"),
        );
        assert_eq!(
            m.confirmed,
            ca.confirmed.total + cb.confirmed.total,
            "{step}: confirmed of {user}"
        );
        assert_eq!(m.chains[&a.id].pending.total, ca.pending.total);
        assert_eq!(m.chains[&b.id].pending.total, cb.pending.total);
        assert_eq!(m.at.len(), 2, "{step}: a state of each chain");
        let by_symbol = m.by_symbol();
        assert_eq!(by_symbol.len(), 1, "one OZT line for both chains");
        assert_eq!(
            by_symbol["OZT"].assets.len(),
            2,
            "two assets, one per chain"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hardhat_nodes_reorg_one_while_the_other_advances() {
    let (mut a, mut b) = tokio::join!(Chain::start(31_337, 2), Chain::start(1_337, 3));
    assert_ne!(a.node.url, b.node.url);
    assert_eq!(a.token, b.token, "the same address on both chains");
    assert_ne!(a.feed, Address::ZERO);
    a.sync_and_check("deployed").await;
    b.sync_and_check("deployed").await;
    check_multi(&a, &b, "deployed").await;

    // A forks off; B advances.
    let snap = a.node.snapshot().await;
    a.pay(0, 1, 100).await;
    a.pay(1, 2, 50).await;
    a.pay(2, 3, 7).await;
    b.pay(4, 0, 20).await;
    b.pay(3, 1, 30).await;
    a.sync_and_check("a forked").await;
    b.sync_and_check("b advanced").await;
    check_multi(&a, &b, "a forked").await;

    // A's fork is reverted and replaced by other blocks; B keeps advancing meanwhile.
    a.node.revert(snap).await;
    a.pay(3, 4, 11).await;
    b.pay(0, 2, 5).await;
    a.pay(4, 0, 13).await;
    b.node.mine(CONFIRMATIONS + 1).await;
    b.check("before a's reorg is synced").await;
    a.sync_and_check("a reorged").await;
    b.check("after a's reorg").await;
    b.sync_and_check("b finalized").await;
    assert!(
        b.watcher.window().finalized_number().is_some(),
        "b finalized blocks"
    );
    check_multi(&a, &b, "a reorged").await;

    // A reorgs again while B moves on, then both finalize past the reorgs.
    let snap = a.node.snapshot().await;
    a.pay(0, 3, 1).await;
    a.sync_and_check("a forked again").await;
    a.node.revert(snap).await;
    a.pay(1, 3, 2).await;
    a.pay(2, 3, 3).await;
    b.pay(1, 4, 9).await;
    a.sync_and_check("a reorged again").await;
    b.sync_and_check("b advanced again").await;
    a.node.mine(CONFIRMATIONS + 1).await;
    b.node.mine(CONFIRMATIONS + 1).await;
    a.sync_and_check("a finalized").await;
    b.sync_and_check("b finalized again").await;
    assert!(
        a.watcher.window().finalized_number().is_some(),
        "a finalized blocks"
    );
    check_multi(&a, &b, "both finalized").await;
}
