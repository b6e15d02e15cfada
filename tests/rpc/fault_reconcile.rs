//! `FaultPolicy::Reconcile` on real contracts (#19 items 1 and 3): OpenZeppelin 5.1's ERC20
//! and canonical WETH9, compiled from their published npm sources (see `published`),
//! followed by one watcher that is told WETH9 is a plain `Token` — its decoder misses the
//! `Deposit` kind, so the first transfer of wrapped ether debits a balance the crate never
//! credited. With WETH9 opted into `Reconcile`, each such fault is repaired from the chain
//! in the faulting block (read with JSON-RPC `balanceOf` batches): nothing is quarantined,
//! and at every block every holder's WETH balance the decoder ever named, and every OZ
//! balance, equals `balanceOf` at that block — through several faults in one catch-up, a
//! reorg that takes the corrections of its blocks with it, and finalization. The OZ token
//! never stalls.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey, FaultPolicy};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::{AssetStateReader, LogStatus};
use reorg_collateral::{EngineConfig, StepReport, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 8;

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
    /// Holders a decoded WETH log named so far, and the first block that did (the others'
    /// wrapped ether is invisible to a watcher without openings until they move it).
    named: BTreeMap<Address, u64>,
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

    async fn send_weth(&mut self, from: usize, to: usize, amount: u64) {
        let data = IWeth::transferCall {
            dst: self.holders[to],
            wad: e18(amount),
        }
        .abi_encode();
        self.send(self.holders[from], self.weth, data, U256::ZERO)
            .await;
        let n = self.node.head().await;
        for user in [self.holders[from], self.holders[to]] {
            self.named.entry(user).or_insert(n);
        }
    }

    async fn send_oz(&self, from: usize, to: usize, amount: u64) {
        self.node
            .transfer(self.oz, self.holders[from], self.holders[to], e18(amount))
            .await;
    }
}

/// Syncs (it must succeed), then compares, at every block from the finalized height (or
/// `from`) to the head, every OZ balance and every named holder's WETH balance with
/// `balanceOf` at that block, and the confirmed side at the finalized height.
async fn sync_and_check(
    c: &Chain,
    watcher: &mut Watcher,
    store: &MemoryStore,
    from: u64,
    step: &str,
) -> StepReport {
    let report = watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let head = *watcher.window().head().expect("head");
    assert_eq!(head.number, c.node.head().await, "{step}: head height");
    assert_eq!(head.hash, c.node.hash_at(head.number).await, "{step}: hash");
    let progress = *watcher.progress().borrow();
    assert_eq!(progress.behind(), Some(0), "{step}: {progress}");
    assert_eq!(progress.quarantined.0, 0, "{step}: {progress}");
    let finalized = watcher.window().finalized_number();
    let keys_at = |n: u64| -> Vec<BalanceKey> {
        let mut keys: Vec<BalanceKey> = c
            .holders
            .iter()
            .map(|&user| BalanceKey { user, asset: c.oz })
            .collect();
        keys.extend(
            c.named
                .iter()
                .filter(|(_, at)| **at <= n)
                .map(|(&user, _)| BalanceKey {
                    user,
                    asset: c.weth,
                }),
        );
        keys
    };
    let low = finalized.unwrap_or(from).max(from);
    for n in low..=head.number {
        let keys = keys_at(n);
        let ours = store.balances_at(&keys, n).await.expect("balances_at");
        for (key, ours) in keys.iter().zip(ours) {
            let chain = c.node.balance_at(key.asset, key.user, n).await;
            assert_eq!(
                ours, chain,
                "{step}: block {n}, {} of {}",
                key.asset, key.user
            );
        }
    }
    if let Some(f) = finalized {
        for key in &keys_at(f) {
            let view = store.balance(*key).await.expect("balance");
            let chain = c.node.balance_at(key.asset, key.user, f).await;
            assert_eq!(
                view.confirmed, chain,
                "{step}: confirmed {} of {}",
                key.asset, key.user
            );
        }
    }
    assert!(
        store.asset_states().await.expect("states").is_empty(),
        "{step}: nothing stays quarantined"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_decoder_misses_deposits_is_reconciled_from_balance_of() {
    let node = DevNode::start().await;
    let args = (vec![node.accounts[0]], e18(1_000_000)).abi_encode_params();
    let oz = published::deploy(&node, "OzToken", &args).await;
    let weth = published::deploy(&node, "WETH9", &[]).await;
    let holders = node.accounts[0..5].to_vec();
    let mut c = Chain {
        node,
        oz,
        weth,
        holders,
        named: BTreeMap::new(),
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
        Asset::new(c.weth, "WETH", 18, 8_000).with_policy(FaultPolicy::Reconcile),
    ])
    .expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
    config.max_price_age = u64::MAX;
    // Without openings, so the missed `Deposit` faults (lazy openings would read it).
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
    let from = c.node.head().await;
    let report = sync_and_check(&c, &mut watcher, s, from, "funded").await;
    assert!(report.reconciled.is_empty());

    // Two faults in one catch-up: each is repaired in its own block.
    let snap = c.node.snapshot().await;
    let first = c.node.head().await + 1;
    c.send_weth(1, 3, 2).await;
    c.send_oz(1, 2, 7).await;
    c.send_weth(2, 4, 1).await;
    c.send_oz(3, 4, 11).await;
    c.send_weth(3, 1, 1).await;
    let report = sync_and_check(&c, &mut watcher, s, first, "two faults").await;
    assert!(report.quarantined.is_empty(), "{report:?}");
    let blocks: Vec<u64> = report.reconciled.iter().map(|r| r.block.number).collect();
    assert_eq!(blocks, vec![first, first + 2], "{report:?}");
    assert!(report.reconciled.iter().all(|r| r.asset == c.weth));

    // A reorg of those blocks takes their corrections with it; the fault on the new
    // branch is repaired in its block.
    c.node.revert(snap).await;
    let fork = c.node.head().await + 1;
    c.named.retain(|_, n| *n < fork);
    c.send_oz(4, 1, 3).await;
    c.send_weth(2, 1, 1).await;
    let report = sync_and_check(&c, &mut watcher, s, fork, "reorged").await;
    assert!(report.reverted > 0, "{report:?}");
    assert_eq!(
        report
            .reconciled
            .iter()
            .map(|r| r.block.number)
            .collect::<Vec<_>>(),
        vec![fork + 1]
    );
    let rows = s.log(first..=c.node.head().await).await.expect("log");
    let canonical_fixes: Vec<_> = rows
        .iter()
        .filter(|r| r.log.is_fault_correction() && r.status != LogStatus::Reverted)
        .map(|r| r.block.number)
        .collect();
    assert!(
        !canonical_fixes.is_empty() && canonical_fixes.iter().all(|&n| n == fork + 1),
        "only the new branch's corrections are canonical: {canonical_fixes:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.log.is_fault_correction() && r.status == LogStatus::Reverted),
        "the old branch's corrections were reverted with it"
    );

    // The asset folds on from the corrected balances; finalized, the confirmed side too.
    c.send_weth(1, 2, 1).await;
    c.send_oz(2, 3, 5).await;
    let report = sync_and_check(&c, &mut watcher, s, fork, "folding on").await;
    assert!(report.reconciled.is_empty(), "no new fault: {report:?}");
    c.node.mine(CONFIRMATIONS + 1).await;
    c.send_oz(1, 4, 1).await;
    sync_and_check(&c, &mut watcher, s, fork, "finalized").await;
    assert!(watcher.window().finalized_number() >= Some(fork + 1));
}
