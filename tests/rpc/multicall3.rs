//! Balance reads through the real Multicall3 on a Hardhat node: its published runtime code
//! (OP's contracts-bedrock preinstall, see `published`) written at its canonical address,
//! an OpenZeppelin 5.1 ERC20 and USDC (`FiatTokenV2_2` behind its proxy) with random
//! transfers. `balances_each` over `aggregate3` equals the JSON-RPC batch path and
//! `balanceOf`, at the head and at a block before Multicall3 existed (where the read falls
//! back to batches); a watcher starting below the head reads its openings through it, and the
//! reconciler compares through it. With USDC's proxy upgraded to an implementation without
//! `balanceOf`, its keys are typed per-key errors on both paths and every other key is
//! still read, compared and opened.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey, BlockRef};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, MULTICALL3, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::traits::{BalanceReadError, ChainBalances};
use reorg_collateral::watcher::{Reconciler, ReconcilerConfig};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;
use crate::usdc::Usdc;

const CONFIRMATIONS: u64 = 3;

sol! {
    interface IErc20 {
        function transfer(address to, uint256 value) external returns (bool);
    }
}

fn units(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

struct Chain {
    node: DevNode,
    oz: Address,
    usdc: Usdc,
    users: Vec<Address>,
}

impl Chain {
    fn source(&self, multicall3: bool) -> Arc<RpcBlockSource> {
        let decoders = Decoders::new()
            .with(self.oz, Contract::Token { asset: self.oz })
            .with(
                self.usdc.proxy,
                Contract::Token {
                    asset: self.usdc.proxy,
                },
            );
        let mut config = RpcConfig::new(decoders);
        config.finality = FinalityTag::Depth;
        config.multicall3 = multicall3;
        Arc::new(RpcBlockSource::http(&self.node.url, config).expect("source"))
    }

    fn keys(&self) -> Vec<BalanceKey> {
        let mut keys = Vec::new();
        for asset in [self.oz, self.usdc.proxy] {
            for &user in &self.users {
                keys.push(BalanceKey { user, asset });
            }
        }
        keys
    }

    async fn at(&self, number: u64) -> BlockRef {
        BlockRef {
            number,
            hash: self.node.hash_at(number).await,
        }
    }

    fn watcher_config(&self) -> WatcherConfig {
        let assets = AssetRegistry::new([
            Asset::new(self.oz, "OZT", 18, 8_000),
            Asset::new(self.usdc.proxy, "USDC", 6, 9_000),
        ])
        .expect("assets");
        let mut config = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
        config.max_price_age = u64::MAX;
        config
    }
}

/// Both tokens, 40 random transfers of each; Multicall3 written after the deployments.
async fn chain() -> Chain {
    let node = DevNode::start().await;
    let users = node.accounts[1..7].to_vec();
    let oz = published::deploy(
        &node,
        "OzToken",
        &(users.clone(), units(1_000)).abi_encode_params(),
    )
    .await;
    let usdc = Usdc::deploy(&node).await;
    for &u in &users {
        usdc.mint(&node, u, units(1_000)).await;
    }
    published::install_multicall3(&node).await;
    let mut x: u64 = 0xC0FF_EE11;
    for _ in 0..40 {
        for token in [oz, usdc.proxy] {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let (a, b) = (
                (x >> 33) as usize % users.len(),
                (x >> 17) as usize % users.len(),
            );
            let call = IErc20::transferCall {
                to: users[b],
                value: units((x >> 40) % 90 + 1),
            };
            node.send(users[a], Some(token), call.abi_encode()).await;
        }
    }
    node.mine(CONFIRMATIONS + 1).await;
    Chain {
        node,
        oz,
        usdc,
        users,
    }
}

/// Every user's pending balance of `asset` equals `balanceOf` at the head, and the
/// confirmed one at the finalized height.
async fn assert_equals_chain(c: &Chain, watcher: &Watcher, store: &MemoryStore, asset: Address) {
    let head = watcher.window().head().expect("head").number;
    let fin = watcher.window().finalized_number().expect("finalized");
    for &user in &c.users {
        let view = store
            .balance(BalanceKey { user, asset })
            .await
            .expect("balance");
        let pending = c.node.balance_at(asset, user, head).await;
        assert_eq!(view.pending, pending, "pending {asset} of {user}");
        let confirmed = c.node.balance_at(asset, user, fin).await;
        assert_eq!(view.confirmed, confirmed, "confirmed {asset} of {user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate3_reads_equal_the_batch_path_and_balance_of() {
    let c = chain().await;
    let (multi, batch) = (c.source(true), c.source(false));
    let keys = c.keys();
    let head = c.node.head().await;
    // At the head (through aggregate3) and at block 2, before Multicall3 had code (falls
    // back to batches).
    for number in [head, 2] {
        let at = c.at(number).await;
        let through = multi.balances_each(&keys, at).await.expect("aggregate3");
        let batched = batch.balances_each(&keys, at).await.expect("batch");
        assert_eq!(through, batched, "aggregate3 = batch at {number}");
        for (key, read) in keys.iter().zip(&through) {
            let want = c.node.balance_at(key.asset, key.user, number).await;
            assert_eq!(read, &Ok(want), "{key:?} at {number}");
        }
        assert_eq!(
            multi.balances_of(&keys, at).await.expect("balances_of"),
            batched
                .into_iter()
                .map(|r| r.expect("read"))
                .collect::<Vec<_>>()
        );
    }

    // A watcher starting below the head: lazy openings and the operator's holders, read
    // through aggregate3, equal the batch path's and `balanceOf`.
    let mut stores = Vec::new();
    let mut watchers = Vec::new();
    for source in [multi.clone(), batch.clone()] {
        let mut config = c.watcher_config();
        config.start_block = head - 30;
        config.opening_holders = keys.clone();
        let store = Arc::new(MemoryStore::new());
        let mut watcher = Watcher::new(config, source.clone(), store.clone())
            .await
            .expect("watcher");
        watcher.sync().await.expect("sync from head - 30");
        assert_equals_chain(&c, &watcher, &store, c.oz).await;
        assert_equals_chain(&c, &watcher, &store, c.usdc.proxy).await;
        let mut reconciler = Reconciler::new(source, ReconcilerConfig::new([c.oz, c.usdc.proxy]));
        let report = reconciler.run(store.as_ref()).await.expect("reconcile");
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.compared, keys.len());
        stores.push(store);
        watchers.push(watcher);
    }
    for key in &keys {
        assert_eq!(
            stores[0].balance(*key).await.expect("balance"),
            stores[1].balance(*key).await.expect("balance"),
            "aggregate3 store = batch store for {key:?}"
        );
    }

    // USDC's proxy upgraded to an implementation without `balanceOf` (Multicall3 itself):
    // each USDC read is that key's error, every OZ read goes on, on both paths.
    c.usdc.upgrade_to(&c.node, MULTICALL3).await;
    c.node.mine(CONFIRMATIONS + 1).await;
    let at = c.at(c.node.head().await).await;
    for (source, through_multicall) in [(&multi, true), (&batch, false)] {
        let reads = source
            .balances_each(&keys, at)
            .await
            .expect("per-key reads");
        for (key, read) in keys.iter().zip(reads) {
            if key.asset == c.oz {
                let want = c.node.balance_at(key.asset, key.user, at.number).await;
                assert_eq!(read, Ok(want), "{key:?}");
            } else {
                let err = read.expect_err("USDC without balanceOf");
                let BalanceReadError::Reverted { reason, .. } = &err else {
                    panic!("not a revert: {err}");
                };
                // aggregate3 reports the sub-call's revert data; a node's `eth_call`, its
                // message: the path each source took.
                assert_eq!(
                    reason.starts_with("revert data"),
                    through_multicall,
                    "{err}"
                );
                assert_eq!(err.key(), *key);
            }
        }
        let err = source
            .balances_of(&keys, at)
            .await
            .expect_err("balances_of fails on a failed key");
        assert!(err.to_string().contains("reverted"), "{err}");
    }
    for ((source, store), watcher) in [&multi, &batch].into_iter().zip(&stores).zip(&mut watchers) {
        let mut reconciler =
            Reconciler::new(source.clone(), ReconcilerConfig::new([c.oz, c.usdc.proxy]));
        watcher.sync().await.expect("sync after the upgrade");
        let report = reconciler.run(store.as_ref()).await.expect("reconcile");
        assert_eq!(report.compared, c.users.len(), "the OZ keys: {report:?}");
        assert!(report.drifts.is_empty(), "{report:?}");
        assert_eq!(
            report.unread.len(),
            c.users.len(),
            "the USDC keys: {report:?}"
        );
        assert!(report.unread.iter().all(|e| e.key().asset == c.usdc.proxy));
        assert!(!report.is_clean());
    }

    // Openings after the upgrade: the OZ holders are opened, the USDC ones cannot be and
    // do not stop them.
    let mut config = c.watcher_config();
    // The parent of the start block is the upgrade's block: its state has no balanceOf.
    config.start_block = c.node.head().await - CONFIRMATIONS;
    config.opening_holders = keys.clone();
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, multi.clone(), store.clone())
        .await
        .expect("watcher");
    watcher.sync().await.expect("sync with a reverting token");
    assert_equals_chain(&c, &watcher, &store, c.oz).await;
    for &user in &c.users {
        let view = store
            .balance(BalanceKey {
                user,
                asset: c.usdc.proxy,
            })
            .await
            .expect("balance");
        assert_eq!(view.pending, U256::ZERO, "no USDC opening for {user}");
    }
}
