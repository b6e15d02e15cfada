//! Reconciliation and opening balances on a real Hardhat node, against contracts compiled
//! from their published npm sources (`published`):
//!
//! - canonical WETH9 decoded by a decoder that drops `Withdrawal` (a deliberately missed
//!   event): the [`Reconciler`] reports each drift exactly and writes nothing; with the
//!   asset opted into "the chain is the truth", the drift becomes a correction row and every
//!   balance equals `balanceOf`, confirmed and pending;
//! - OpenZeppelin 5.1's ERC20, busy for 130 blocks, followed by a watcher that starts at
//!   head − 100 with lazy openings and the operator's holders: every balance equals
//!   `balanceOf`.

use std::collections::BTreeSet;
use std::sync::Arc;

use alloy_primitives::Log;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoded, Decoders, LogDecoder};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BalanceKey, BlockRef, Effect, LogId,
};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::watcher::{Openings, Reconciler, ReconcilerConfig, Sample};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

pub(crate) const CONFIRMATIONS: u64 = 3;

sol! {
    interface IWeth {
        function deposit() external payable;
        function withdraw(uint256 wad) external;
        function transfer(address dst, uint256 wad) external returns (bool);
    }
}

/// WETH9 decoded as [`Contract::Weth9`], except that `Withdrawal` is dropped.
#[derive(Debug)]
struct DropWithdrawals {
    inner: Decoders,
}

impl LogDecoder for DropWithdrawals {
    fn decode(&self, log: &Log, id: LogId) -> Result<Option<Decoded>, String> {
        let at = BlockRef {
            number: 0,
            hash: B256::ZERO,
        };
        match self.inner.decode(at, log, id).map_err(|e| e.to_string())? {
            Some(Decoded::Balance(e)) if matches!(e.change, BalanceChange::Withdraw { .. }) => {
                Ok(None)
            }
            other => Ok(other),
        }
    }
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn source(node: &DevNode, decoders: Decoders) -> Arc<RpcBlockSource> {
    let mut config = RpcConfig::new(decoders);
    config.finality = FinalityTag::Depth;
    Arc::new(RpcBlockSource::http(&node.url, config).expect("source"))
}

pub(crate) fn watcher_config(asset: Address, symbol: &str) -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(asset, symbol, 18, 8_000)]).expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
    config.max_price_age = u64::MAX;
    config
}

async fn send_value(node: &DevNode, from: Address, to: Address, data: Vec<u8>, value: U256) {
    let tx = serde_json::json!({
        "from": from, "to": to, "data": Bytes::from(data), "value": value, "gas": "0x200000",
    });
    let hash: B256 = node
        .client
        .request("eth_sendTransaction", (tx,))
        .await
        .expect("eth_sendTransaction");
    let receipt: serde_json::Value = node
        .client
        .request("eth_getTransactionReceipt", (hash,))
        .await
        .expect("receipt");
    assert_eq!(receipt["status"], "0x1", "transaction reverted: {receipt}");
}

/// Every user's pending balance equals `balanceOf` at the head, and the confirmed one at
/// the finalized height.
async fn assert_equals_chain(
    node: &DevNode,
    watcher: &Watcher,
    store: &MemoryStore,
    token: Address,
    users: &[Address],
    step: &str,
) {
    let head = watcher.window().head().expect("head").number;
    let fin = watcher.window().finalized_number().expect("finalized");
    for &user in users {
        let view = store
            .balance(BalanceKey { user, asset: token })
            .await
            .expect("balance");
        let pending = node.balance_at(token, user, head).await;
        let confirmed = node.balance_at(token, user, fin).await;
        assert_eq!(view.pending, pending, "{step}: pending balance of {user}");
        assert_eq!(
            view.confirmed, confirmed,
            "{step}: confirmed balance of {user}"
        );
    }
}

/// Canonical WETH9 with four users who wrapped 10–13 ether, two of whom unwrapped part
/// (3 and 5 ether) and one of whom sent 1 to another, then `CONFIRMATIONS` blocks; and a
/// source decoding it with a decoder that drops `Withdrawal` (the missed event).
pub(crate) async fn missed_withdrawals(
    node: &DevNode,
) -> (Address, Vec<Address>, Arc<RpcBlockSource>) {
    let weth = published::deploy(node, "WETH9", &[]).await;
    let users = node.accounts[1..5].to_vec();
    for (i, user) in users.iter().enumerate() {
        let call = IWeth::depositCall {}.abi_encode();
        send_value(node, *user, weth, call, ether(10 + i as u64)).await;
    }
    // Missed by the decoder: users 0 and 2 unwrap part of their WETH.
    let unwrap = |wad| IWeth::withdrawCall { wad }.abi_encode();
    send_value(node, users[0], weth, unwrap(ether(3)), U256::ZERO).await;
    send_value(node, users[2], weth, unwrap(ether(5)), U256::ZERO).await;
    let transfer = IWeth::transferCall {
        dst: users[3],
        wad: ether(1),
    };
    send_value(node, users[1], weth, transfer.abi_encode(), U256::ZERO).await;
    node.mine(CONFIRMATIONS).await;

    let decoder = DropWithdrawals {
        inner: Decoders::new().with(weth, Contract::Weth9 { asset: weth }),
    };
    let source = source(
        node,
        Decoders::new().with(weth, Contract::Custom(Arc::new(decoder))),
    );
    (weth, users, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_catches_a_missed_event_and_corrects_it_when_the_chain_is_the_truth() {
    let node = DevNode::start().await;
    let (weth, users, source) = missed_withdrawals(&node).await;
    let store = Arc::new(MemoryStore::new());
    let mut config = watcher_config(weth, "WETH");
    // From deployment: every balance comes from events (the missed ones stay missed).
    config.openings = Openings::Off;
    let mut watcher = Watcher::new(config, source.clone(), store.clone())
        .await
        .expect("watcher");
    watcher.sync().await.expect("sync");

    // Report only: the two drifts, exactly, and nothing written.
    let mut report_only = Reconciler::new(source.clone(), ReconcilerConfig::new([weth]));
    let log_before = store.log(0..=u64::MAX).await.expect("log");
    let report = report_only.run(store.as_ref()).await.expect("reconcile");
    let fin = watcher.window().finalized.expect("finalized").id();
    assert_eq!(report.at, Some(fin));
    assert_eq!(report.compared, users.len());
    let mut drifts: Vec<_> = report
        .drifts
        .iter()
        .map(|d| (d.user, d.ours, d.chain_value, d.block))
        .collect();
    drifts.sort_by_key(|d| d.0);
    let mut want = vec![
        (users[0], ether(10), ether(7), fin),
        (users[2], ether(12), ether(7), fin),
    ];
    want.sort_by_key(|d| d.0);
    assert_eq!(drifts, want);
    assert!(report.drifts.iter().all(|d| d.difference.is_negative()));
    assert!(report.corrections.is_empty());
    assert_eq!(report_only.drifts(), &report.drifts[..]);
    assert_eq!(store.log(0..=u64::MAX).await.expect("log"), log_before);

    // The chain is the truth: corrected in the next block, then final, then clean.
    let mut config = ReconcilerConfig::new([weth]);
    config.chain_is_truth = BTreeSet::from([weth]);
    config.sample = Sample::Rotating { keys: 2 };
    let mut truth = Reconciler::new(source.clone(), config);
    let mut corrected = 0;
    for _ in 0..2 {
        let report = watcher.reconcile_with(&mut truth).await.expect("reconcile");
        assert_eq!(report.compared, 2, "a rotating sample of two keys");
        corrected += report.corrections.len();
    }
    assert_eq!(corrected, 2, "both drifts corrected once");
    node.mine(1).await;
    watcher.sync().await.expect("sync with corrections");
    node.mine(CONFIRMATIONS).await;
    watcher.sync().await.expect("sync");
    assert_equals_chain(&node, &watcher, &store, weth, &users, "after correction").await;
    let mut rows: Vec<_> = store
        .log(0..=u64::MAX)
        .await
        .expect("log")
        .into_iter()
        .filter(|r| matches!(r.effect, Effect::Reconcile(_)))
        .map(|r| (r.key.user, r.effect, r.log.is_correction()))
        .collect();
    rows.sort_by_key(|r| r.0);
    let mut want = vec![
        (users[0], Effect::Reconcile(ether(7)), true),
        (users[2], Effect::Reconcile(ether(7)), true),
    ];
    want.sort_by_key(|r| r.0);
    assert_eq!(rows, want);
    let mut all = Reconciler::new(source.clone(), ReconcilerConfig::new([weth]));
    let report = all.run(store.as_ref()).await.expect("reconcile");
    assert!(
        report.is_clean(),
        "drifts after correction: {:?}",
        report.drifts
    );
}

sol! {
    interface IOz {
        function transfer(address to, uint256 value) external returns (bool);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_starting_below_the_head_with_openings_equals_balance_of() {
    let node = DevNode::start().await;
    let users = node.accounts[1..11].to_vec();
    let args = (users.clone(), ether(1_000)).abi_encode_params();
    let token = published::deploy(&node, "OzToken", &args).await;
    // 130 blocks of transfers among the first nine users; the tenth never moves.
    let mut x: u64 = 0x9E37_79B9;
    for _ in 0..130 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let (from, to) = ((x >> 33) as usize % 9, (x >> 17) as usize % 9);
        let amount = U256::from((x >> 40) % 50 + 1) * ether(1) / U256::from(10);
        let call = IOz::transferCall {
            to: users[to],
            value: amount,
        };
        node.send(users[from], Some(token), call.abi_encode()).await;
    }
    let head = node.head().await;
    let mut config = watcher_config(token, "OZT");
    config.start_block = head - 100;
    assert_eq!(
        config.openings,
        Openings::Lazy,
        "openings are on by default"
    );
    config.opening_holders = vec![BalanceKey {
        user: users[9],
        asset: token,
    }];
    let source = source(
        &node,
        Decoders::new().with(token, Contract::Token { asset: token }),
    );
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, source.clone(), store.clone())
        .await
        .expect("watcher");
    watcher.sync().await.expect("sync from head - 100");
    assert_equals_chain(&node, &watcher, &store, token, &users, "head - 100").await;
    let openings = store
        .log(0..=u64::MAX)
        .await
        .expect("log")
        .into_iter()
        .filter(|r| matches!(r.effect, Effect::Reconcile(_)))
        .count();
    assert!(
        (1..=users.len()).contains(&openings),
        "one opening row per holder at most, got {openings}"
    );
    let mut reconciler = Reconciler::new(source.clone(), ReconcilerConfig::new([token]));
    let report = reconciler.run(store.as_ref()).await.expect("reconcile");
    assert!(report.is_clean(), "drifts: {:?}", report.drifts);
    assert_eq!(report.compared, users.len());
}
