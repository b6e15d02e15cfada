//! One asset never stalls the rest (#19 item 1), on real contracts: OpenZeppelin 5.1's
//! ERC20 and canonical WETH9, both compiled from their published npm sources (see
//! `published`), followed by ONE watcher that is told WETH9 is a plain `Token` (the
//! misconfiguration of #19: its `Deposit` is not decoded, so the first transfer of wrapped
//! ether debits a balance the crate never credited). WETH9 is quarantined at that block —
//! not a stall — and the OZ token's balances equal its `balanceOf` at the head and at the
//! finalized height after every sync, through the fault, a reorg that lifts the quarantine,
//! the fault again, and finalization. The watcher's progress names the quarantine; reads
//! flag the asset and leave it out of the totals.

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::AssetStateReader;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 6;

sol! {
    interface IWeth {
        function deposit() external payable;
        function transfer(address dst, uint256 wad) external returns (bool);
    }
}

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

struct Chain {
    node: DevNode,
    oz: Address,
    weth: Address,
    holders: Vec<Address>,
}

impl Chain {
    async fn send(&self, from: Address, to: Address, data: Vec<u8>, value: U256) {
        let tx = serde_json::json!({
            "from": from, "to": to, "data": Bytes::from(data), "value": value, "gas": "0x200000",
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

    async fn wrap(&self, user: usize, amount: u64) {
        let data = IWeth::depositCall {}.abi_encode();
        self.send(self.holders[user], self.weth, data, e18(amount))
            .await;
    }

    async fn send_weth(&self, from: usize, to: usize, amount: u64) {
        let data = IWeth::transferCall {
            dst: self.holders[to],
            wad: e18(amount),
        }
        .abi_encode();
        self.send(self.holders[from], self.weth, data, U256::ZERO)
            .await;
    }

    async fn send_oz(&self, from: usize, to: usize, amount: u64) {
        self.node
            .transfer(self.oz, self.holders[from], self.holders[to], e18(amount))
            .await;
    }
}

/// Syncs (it must succeed: a quarantine is not a stall), then compares every holder's OZ
/// balance with `balanceOf` at the head and at the finalized height.
async fn sync_and_check(c: &Chain, watcher: &mut Watcher, store: &MemoryStore, step: &str) {
    watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let head = *watcher.window().head().expect("head");
    assert_eq!(head.number, c.node.head().await, "{step}: head height");
    assert_eq!(
        head.hash,
        c.node.hash_at(head.number).await,
        "{step}: head hash"
    );
    let progress = *watcher.progress().borrow();
    assert_eq!(progress.behind(), Some(0), "{step}: {progress}");
    assert!(!progress.stalled, "{step}: {progress}");
    let finalized = watcher.window().finalized_number();
    for &user in &c.holders {
        let key = BalanceKey { user, asset: c.oz };
        let view = store.balance(key).await.expect("balance");
        let pending = c.node.balance_at(c.oz, user, head.number).await;
        assert_eq!(view.pending, pending, "{step}: pending OZT of {user}");
        let confirmed = match finalized {
            Some(f) => c.node.balance_at(c.oz, user, f).await,
            None => U256::ZERO,
        };
        assert_eq!(view.confirmed, confirmed, "{step}: confirmed OZT of {user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misdecoded_token_is_quarantined_and_the_other_follows_balance_of() {
    let node = DevNode::start().await;
    // The whole supply to the deploying account.
    let args = (vec![node.accounts[0]], e18(1_000_000)).abi_encode_params();
    let oz = published::deploy(&node, "OzToken", &args).await;
    let weth = published::deploy(&node, "WETH9", &[]).await;
    let holders = node.accounts[0..5].to_vec();
    let c = Chain {
        node,
        oz,
        weth,
        holders,
    };
    let decoders = Decoders::new()
        .with(c.oz, Contract::Token { asset: c.oz })
        .with(c.weth, Contract::Token { asset: c.weth });
    let mut rpc = RpcConfig::new(decoders);
    // Hardhat's `finalized` is its head: confirm by depth (snapshots revert blocks).
    rpc.finality = FinalityTag::Depth;
    rpc.max_log_range = 8;
    let source = Arc::new(RpcBlockSource::http(&c.node.url, rpc).expect("source"));
    let assets = AssetRegistry::new([
        Asset::new(c.oz, "OZT", 18, 9_000),
        Asset::new(c.weth, "WETH", 18, 8_000),
    ])
    .expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
    config.max_price_age = u64::MAX;
    // From the deployment block without openings: lazy openings would read the wrapped
    // balance WETH9's undecoded `Deposit` made, and nothing would fault.
    config.openings = reorg_collateral::watcher::Openings::Off;
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, source, store.clone())
        .await
        .expect("watcher");
    let s = &*store;

    for to in 1..5 {
        c.send_oz(0, to, 100 * to as u64).await;
    }
    c.wrap(1, 5).await;
    c.wrap(2, 3).await;
    sync_and_check(&c, &mut watcher, s, "funded").await;
    assert!(
        s.asset_states().await.unwrap().is_empty(),
        "nothing faulted yet"
    );

    // The fault: WETH9's Deposit was never decoded, so this debit underflows.
    let snap = c.node.snapshot().await;
    c.send_oz(1, 2, 7).await;
    c.send_weth(1, 3, 2).await;
    let faulting = c.node.head().await;
    c.send_oz(3, 4, 11).await;
    c.send_weth(2, 4, 1).await;
    sync_and_check(&c, &mut watcher, s, "after the fault").await;
    let states = s.asset_states().await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    let q = states[0].pending.quarantine().expect("WETH quarantined");
    assert_eq!((q.asset, q.block.number), (c.weth, faulting));
    let progress = watcher.progress().borrow().to_string();
    assert!(
        progress.contains(&format!("asset {} quarantined at #{faulting}", c.weth)),
        "{progress}"
    );
    // Nobody was ever credited WETH here (its Deposit is not decoded), so no user has a
    // WETH balance to flag: reads show the OZ token alone, and the asset state says why.
    let col = watcher.collateral(c.holders[2]).await.expect("collateral");
    assert!(
        col.pending.assets.iter().all(|a| a.asset != c.weth),
        "{col:?}"
    );

    // A reorg of the faulting block lifts the quarantine; the fault comes back when mined again.
    c.node.revert(snap).await;
    c.send_oz(4, 1, 3).await;
    sync_and_check(&c, &mut watcher, s, "reorged out").await;
    assert!(
        s.asset_states().await.unwrap().is_empty(),
        "lifted by the reorg"
    );
    c.send_weth(2, 1, 1).await;
    let faulting = c.node.head().await;
    c.send_oz(2, 3, 5).await;
    sync_and_check(&c, &mut watcher, s, "the fault again").await;
    assert_eq!(watcher.stats().reorgs, 1, "one reorg");

    // Finalized: the quarantine is confirmed; the OZ token still follows the chain.
    c.node.mine(CONFIRMATIONS + 1).await;
    c.send_oz(1, 4, 1).await;
    sync_and_check(&c, &mut watcher, s, "confirmed").await;
    let states = s.asset_states().await.unwrap();
    let q = states[0]
        .confirmed
        .quarantine()
        .expect("confirmed quarantine");
    assert_eq!((q.asset, q.block.number), (c.weth, faulting));
}
