//! A log the decoder rejects quarantines its asset, on a real node (#19 item 1): a
//! pre-2016-style token that emits `Transfer(address,address,uint256)` with nothing indexed
//! (one topic, the three words in the data: `Transfer`'s `sol!` decoder rejects it), next
//! to OpenZeppelin 5.1's ERC20 compiled from its npm sources, followed by one watcher. The
//! legacy token is quarantined at that log (not a stall), a reorg lifts it, and the OZ
//! token's balances equal `balanceOf` after every sync; told strict, the same log refuses
//! the block with a typed error.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{SolEvent, SolValue};
use reorg_collateral::decode::{Contract, Decoders, Transfer};
use reorg_collateral::error::{EngineError, Error};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey, FaultPolicy, FaultReason};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::AssetStateReader;
use reorg_collateral::watcher::{Notification, Openings};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 6;

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Creation code of a contract whose every call emits `LOG1(Transfer's topic0)` with 96
/// bytes of data (`from`, `to`, `value` not indexed): runtime `PUSH32 topic0; PUSH1 0x60;
/// PUSH1 0; LOG1; STOP`, returned by a 12-byte constructor.
fn legacy_token_code() -> Vec<u8> {
    let mut runtime = vec![0x7f];
    runtime.extend_from_slice(Transfer::SIGNATURE_HASH.as_slice());
    runtime.extend_from_slice(&[0x60, 0x60, 0x60, 0x00, 0xa1, 0x00]);
    let len = runtime.len() as u8;
    let mut init = vec![
        0x60, len, 0x60, 0x0c, 0x60, 0x00, 0x39, // CODECOPY(0, 12, len)
        0x60, len, 0x60, 0x00, 0xf3, // RETURN(0, len)
    ];
    assert_eq!(init.len(), 0x0c);
    init.extend_from_slice(&runtime);
    init
}

struct Chain {
    node: DevNode,
    oz: Address,
    legacy: Address,
    holders: Vec<Address>,
}

impl Chain {
    async fn start() -> Self {
        let node = DevNode::start().await;
        let args = (vec![node.accounts[0]], e18(1_000_000)).abi_encode_params();
        let oz = published::deploy(&node, "OzToken", &args).await;
        let receipt = node.send(node.accounts[0], None, legacy_token_code()).await;
        let legacy: Address = receipt["contractAddress"]
            .as_str()
            .expect("contract address")
            .parse()
            .expect("address");
        let holders = node.accounts[0..4].to_vec();
        Self {
            node,
            oz,
            legacy,
            holders,
        }
    }

    async fn send_oz(&self, from: usize, to: usize, amount: u64) {
        self.node
            .transfer(self.oz, self.holders[from], self.holders[to], e18(amount))
            .await;
    }

    /// A call of the legacy token: its unindexed `Transfer`.
    async fn legacy_log(&self) {
        let receipt = self
            .node
            .send(self.holders[1], Some(self.legacy), Vec::new())
            .await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        assert_eq!(
            receipt["logs"].as_array().map(Vec::len),
            Some(1),
            "{receipt}"
        );
    }

    async fn watcher(&self, legacy: FaultPolicy) -> (Watcher, Arc<MemoryStore>) {
        let decoders = Decoders::new()
            .with(self.oz, Contract::Token { asset: self.oz })
            .with(self.legacy, Contract::Token { asset: self.legacy });
        let mut rpc = RpcConfig::new(decoders);
        rpc.finality = FinalityTag::Depth;
        let source = Arc::new(RpcBlockSource::http(&self.node.url, rpc).expect("source"));
        let assets = AssetRegistry::new([
            Asset::new(self.oz, "OZT", 18, 9_000),
            Asset::new(self.legacy, "OLD", 18, 8_000).with_policy(legacy),
        ])
        .expect("assets");
        let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
        config.max_price_age = u64::MAX;
        config.openings = Openings::Off;
        let store = Arc::new(MemoryStore::new());
        let watcher = Watcher::new(config, source, store.clone())
            .await
            .expect("watcher");
        (watcher, store)
    }
}

/// Syncs (it must succeed), then compares every holder's OZ balance with `balanceOf`.
async fn sync_and_check(c: &Chain, watcher: &mut Watcher, store: &MemoryStore, step: &str) {
    watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let head = watcher.window().head().expect("head").number;
    assert_eq!(head, c.node.head().await, "{step}: head");
    assert!(!watcher.progress().borrow().stalled, "{step}");
    for &user in &c.holders {
        let key = BalanceKey { user, asset: c.oz };
        let view = store.balance(key).await.expect("balance");
        let chain = c.node.balance_at(c.oz, user, head).await;
        assert_eq!(view.pending, chain, "{step}: pending OZT of {user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_the_decoder_rejects_quarantines_its_token_and_the_other_follows_balance_of() {
    let c = Chain::start().await;
    let (mut watcher, store) = c.watcher(FaultPolicy::Quarantine).await;
    let mut subscription = watcher.subscribe();
    let s = &*store;
    for to in 1..4 {
        c.send_oz(0, to, 100 * to as u64).await;
    }
    sync_and_check(&c, &mut watcher, s, "funded").await;
    assert!(s.asset_states().await.unwrap().is_empty());

    let snap = c.node.snapshot().await;
    c.send_oz(1, 2, 7).await;
    c.legacy_log().await;
    let faulting = c.node.head().await;
    c.send_oz(2, 3, 11).await;
    sync_and_check(&c, &mut watcher, s, "after the undecodable log").await;
    let states = s.asset_states().await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    let q = states[0].pending.quarantine().expect("legacy quarantined");
    assert_eq!((q.asset, q.block.number), (c.legacy, faulting));
    assert_eq!(q.block.hash, c.node.hash_at(faulting).await);
    assert_eq!(q.log.log_index, 0, "{q}");
    let FaultReason::Undecodable { detail } = &q.reason else {
        panic!("{q}")
    };
    assert!(detail.starts_with("Transfer:"), "{detail}");
    // Subscribers were told, with the block and the log.
    watcher.flush().await;
    let mut told = Vec::new();
    while let Some(n) = subscription.try_recv() {
        if let Notification::Quarantined { quarantine: q, .. } = n {
            told.push(q);
        }
    }
    assert_eq!(told.as_slice(), std::slice::from_ref(q));

    // A reorg of the block lifts it; the log mined again quarantines again.
    c.node.revert(snap).await;
    c.send_oz(3, 1, 3).await;
    sync_and_check(&c, &mut watcher, s, "reorged out").await;
    assert!(s.asset_states().await.unwrap().is_empty(), "lifted");
    c.legacy_log().await;
    let faulting = c.node.head().await;
    sync_and_check(&c, &mut watcher, s, "again").await;
    let states = s.asset_states().await.unwrap();
    let q = states[0].pending.quarantine().expect("quarantined again");
    assert_eq!(q.block.number, faulting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_the_decoder_rejects_refuses_the_block_of_a_strict_token() {
    let c = Chain::start().await;
    let (mut watcher, store) = c.watcher(FaultPolicy::Strict).await;
    c.send_oz(0, 1, 5).await;
    sync_and_check(&c, &mut watcher, &store, "funded").await;
    let head = c.node.head().await;
    c.legacy_log().await;
    for _ in 0..2 {
        let err = watcher.sync().await.unwrap_err();
        let Error::Engine(EngineError::Undecodable(fault)) = &err else {
            panic!("{err}")
        };
        let (block, log, asset) = (fault.block, fault.log, &fault.asset);
        assert_eq!(
            (block.number, *asset, log.log_index),
            (head + 1, c.legacy, 0)
        );
        assert_ne!(log.tx_hash, B256::ZERO);
        assert_eq!(watcher.window().head().map(|b| b.number), Some(head));
        assert!(watcher.progress().borrow().stalled);
    }
}
