//! Canonical WETH9 on a real Hardhat node, decoded as `Contract::Weth9`: the contract is
//! compiled by the test support from its published npm source (`canonical-weth`, with
//! solc 0.5.17 from the npm registry, see `published`), deployed, and driven
//! through wraps (`deposit` and plain ether sends), transfers, `transferFrom`, unwraps and a
//! reorg; after every sync each user's pending and confirmed balance equals WETH9's own
//! `balanceOf` at the head and at the finalized height. The same chain decoded as a plain
//! `Token` is refused at the first transfer of wrapped ether (the issue this kind fixes).

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, sol};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 4;

sol! {
    interface IWETH9 {
        function deposit() external payable;
        function withdraw(uint256 wad) external;
        function transfer(address dst, uint256 wad) external returns (bool);
        function approve(address guy, uint256 wad) external returns (bool);
        function transferFrom(address src, address dst, uint256 wad) external returns (bool);
        function totalSupply() external view returns (uint256);
    }
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

struct Weth {
    node: DevNode,
    weth: Address,
    users: Vec<Address>,
}

impl Weth {
    async fn start() -> Weth {
        let node = DevNode::start().await;
        let weth = published::deploy(&node, "WETH9", &[]).await;
        let users = node.accounts[1..6].to_vec();
        Weth { node, weth, users }
    }

    fn source(&self, contract: Contract) -> Arc<RpcBlockSource> {
        let mut config = RpcConfig::new(Decoders::new().with(self.weth, contract));
        // Hardhat's `finalized` is its head: confirm by depth (snapshots revert blocks).
        config.finality = FinalityTag::Depth;
        config.max_log_range = 8;
        Arc::new(RpcBlockSource::http(&self.node.url, config).expect("source"))
    }

    fn watcher_config(&self) -> WatcherConfig {
        let assets =
            AssetRegistry::new([Asset::new(self.weth, "WETH", 18, 8_000)]).expect("assets");
        let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
        config.max_price_age = u64::MAX;
        config
    }

    /// A transaction from user `from` to WETH9 with `value` wei attached (one block).
    async fn send(&self, from: usize, data: Vec<u8>, value: U256) {
        let tx = serde_json::json!({
            "from": self.users[from],
            "to": self.weth,
            "data": Bytes::from(data),
            "value": value,
            "gas": "0x200000",
        });
        let hash: B256 = self
            .node
            .client
            .request("eth_sendTransaction", (tx,))
            .await
            .expect("eth_sendTransaction");
        let receipt: serde_json::Value = self
            .node
            .client
            .request("eth_getTransactionReceipt", (hash,))
            .await
            .expect("receipt");
        assert_eq!(receipt["status"], "0x1", "transaction reverted: {receipt}");
    }

    async fn deposit(&self, user: usize, amount: u64) {
        self.send(user, IWETH9::depositCall {}.abi_encode(), ether(amount))
            .await;
    }

    /// A plain ether send: WETH9's fallback wraps it.
    async fn pay_in(&self, user: usize, amount: u64) {
        self.send(user, Vec::new(), ether(amount)).await;
    }

    async fn withdraw(&self, user: usize, amount: u64) {
        let call = IWETH9::withdrawCall { wad: ether(amount) };
        self.send(user, call.abi_encode(), U256::ZERO).await;
    }

    async fn transfer(&self, from: usize, to: usize, amount: u64) {
        let call = IWETH9::transferCall {
            dst: self.users[to],
            wad: ether(amount),
        };
        self.send(from, call.abi_encode(), U256::ZERO).await;
    }

    async fn approve(&self, owner: usize, spender: usize, amount: u64) {
        let call = IWETH9::approveCall {
            guy: self.users[spender],
            wad: ether(amount),
        };
        self.send(owner, call.abi_encode(), U256::ZERO).await;
    }

    async fn transfer_from(&self, spender: usize, from: usize, to: usize, amount: u64) {
        let call = IWETH9::transferFromCall {
            src: self.users[from],
            dst: self.users[to],
            wad: ether(amount),
        };
        self.send(spender, call.abi_encode(), U256::ZERO).await;
    }

    /// WETH9's `totalSupply()` (its ether balance) at block `number`; zero before the
    /// deployment (an `eth_call` to an address without code returns nothing).
    async fn total_supply_at(&self, number: u64) -> U256 {
        let out = self
            .node
            .call_at(self.weth, IWETH9::totalSupplyCall {}.abi_encode(), number)
            .await;
        if out.is_empty() {
            return U256::ZERO;
        }
        IWETH9::totalSupplyCall::abi_decode_returns(&out).expect("totalSupply")
    }
}

/// Syncs, then compares every user's balances with WETH9's `balanceOf` at the head and at
/// the finalized height, and their sum with `totalSupply` (every holder is a user here).
async fn sync_and_check(w: &Weth, watcher: &mut Watcher, store: &MemoryStore, step: &str) {
    watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let head = *watcher.window().head().expect("head");
    assert_eq!(head.number, w.node.head().await, "{step}: head height");
    assert_eq!(
        head.hash,
        w.node.hash_at(head.number).await,
        "{step}: head hash"
    );
    let finalized = watcher.window().finalized_number();
    let (mut pending_sum, mut confirmed_sum) = (U256::ZERO, U256::ZERO);
    for &user in &w.users {
        let view = store
            .balance(BalanceKey {
                user,
                asset: w.weth,
            })
            .await
            .expect("balance");
        let pending = w.node.balance_at(w.weth, user, head.number).await;
        assert_eq!(view.pending, pending, "{step}: pending balance of {user}");
        let confirmed = match finalized {
            Some(f) => w.node.balance_at(w.weth, user, f).await,
            None => U256::ZERO,
        };
        assert_eq!(
            view.confirmed, confirmed,
            "{step}: confirmed balance of {user}"
        );
        pending_sum += view.pending;
        confirmed_sum += view.confirmed;
    }
    assert_eq!(
        pending_sum,
        w.total_supply_at(head.number).await,
        "{step}: Σ pending = totalSupply"
    );
    if let Some(f) = finalized {
        assert_eq!(
            confirmed_sum,
            w.total_supply_at(f).await,
            "{step}: Σ confirmed = totalSupply at the finalized height"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weth9_balances_equal_balance_of_through_a_reorg() {
    let w = Weth::start().await;
    let store = Arc::new(MemoryStore::new());
    let source = w.source(Contract::Weth9 { asset: w.weth });
    let mut watcher = Watcher::new(w.watcher_config(), source, store.clone())
        .await
        .expect("watcher");
    let s = &*store;

    // Wrapping: deposit() and the fallback.
    w.deposit(0, 10).await;
    w.deposit(1, 5).await;
    w.pay_in(2, 3).await;
    sync_and_check(&w, &mut watcher, s, "wrapped").await;

    // Moving and unwrapping.
    w.transfer(0, 3, 4).await;
    w.approve(1, 2, 2).await;
    w.transfer_from(2, 1, 4, 2).await;
    w.withdraw(0, 1).await;
    sync_and_check(&w, &mut watcher, s, "moved and unwrapped").await;
    w.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(&w, &mut watcher, s, "confirmed").await;

    // A reorg replacing an unwrap and a wrap by other ones.
    let snap = w.node.snapshot().await;
    w.withdraw(3, 4).await;
    w.deposit(0, 1).await;
    sync_and_check(&w, &mut watcher, s, "before the reorg").await;
    w.node.revert(snap).await;
    w.transfer(3, 4, 1).await;
    w.withdraw(4, 3).await;
    w.pay_in(1, 2).await;
    sync_and_check(&w, &mut watcher, s, "after the reorg").await;
    assert_eq!(watcher.stats().reorgs, 1, "one reorg");

    w.withdraw(2, 3).await;
    w.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(&w, &mut watcher, s, "all confirmed").await;

    // The same chain decoded as a plain ERC-20, from deployment without openings (lazy
    // openings would read the missing balance at the first transfer): wrapped ether is never
    // credited, so the first transfer of it underflows. By default the asset is quarantined
    // there (the sync goes on); a strict asset refuses the block and nothing is applied from
    // it on.
    let token = Arc::new(MemoryStore::new());
    let mut config = w.watcher_config();
    config.openings = reorg_collateral::watcher::Openings::Off;
    let mut plain = Watcher::new(
        config,
        w.source(Contract::Token { asset: w.weth }),
        token.clone(),
    )
    .await
    .expect("watcher");
    let report = plain
        .sync()
        .await
        .expect("WETH9 as a plain token: quarantined");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].asset, w.weth);
    let mut config = w.watcher_config();
    let strict = Asset::new(w.weth, "WETH", 18, 8_000)
        .with_policy(reorg_collateral::model::FaultPolicy::Strict);
    config.engine = EngineConfig::new(AssetRegistry::new([strict]).expect("assets"), CONFIRMATIONS);
    config.openings = reorg_collateral::watcher::Openings::Off;
    let mut strict = Watcher::new(
        config,
        w.source(Contract::Token { asset: w.weth }),
        Arc::new(MemoryStore::new()),
    )
    .await
    .expect("watcher");
    let err = strict
        .sync()
        .await
        .expect_err("WETH9 as a strict plain token");
    assert!(err.to_string().contains("smaller than debit"), "{err}");
}
