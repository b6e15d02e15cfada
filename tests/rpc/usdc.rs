//! USDC on a real Hardhat node, decoded as `Contract::Token` at its proxy's address: Circle's
//! `FiatTokenV2_2` behind its `FiatTokenProxy`, compiled by the test support from the
//! sources Stargate publishes (`@stargatefinance/stg-evm-v2`, with solc 0.8.22 from the npm
//! registry, see `published`), initialized through V2_2 as on mainnet, then driven by
//! random mints, burns, transfers and `transferFrom`s, through two reorgs; after every sync
//! each holder's pending and confirmed balance equals the proxy's `balanceOf` at the head
//! and at the finalized height, and their sum its `totalSupply`.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 6;

sol! {
    interface IFiatToken {
        function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals, address newMasterMinter, address newPauser, address newBlacklister, address newOwner) external;
        function initializeV2(string newName) external;
        function initializeV2_1(address lostAndFound) external;
        function initializeV2_2(address[] accountsToBlacklist, string newSymbol) external;
        function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
        function mint(address to, uint256 amount) external returns (bool);
        function burn(uint256 amount) external;
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        function totalSupply() external view returns (uint256);
        function upgradeTo(address newImplementation) external;
        function changeAdmin(address newAdmin) external;
    }
}

/// A USDC deployment: the proxy (the token users hold), its admin (who cannot call the
/// token through it: account 9, not account 0, which Hardhat's `eth_call` sends from by
/// default) and the operator (owner, master minter and minter).
pub(crate) struct Usdc {
    pub proxy: Address,
    pub admin: Address,
    pub operator: Address,
}

impl Usdc {
    /// Deploys the `SignatureChecker` library, `FiatTokenV2_2` linked to it and a
    /// `FiatTokenProxy` to it from account 0, hands the proxy's admin to account 9,
    /// initializes it through
    /// V2_2 with account 7 as every role, and lets it mint.
    pub(crate) async fn deploy(node: &DevNode) -> Usdc {
        let checker = published::deploy(node, "SignatureChecker", &[]).await;
        let implementation = published::deploy_linked(node, "FiatTokenV2_2", checker, &[]).await;
        let proxy = published::deploy(node, "FiatTokenProxy", &implementation.abi_encode()).await;
        let (admin, op) = (node.accounts[9], node.accounts[7]);
        let change = IFiatToken::changeAdminCall { newAdmin: admin };
        node.send(node.accounts[0], Some(proxy), change.abi_encode())
            .await;
        let usdc = Usdc {
            proxy,
            admin,
            operator: op,
        };
        usdc.call(
            node,
            op,
            IFiatToken::initializeCall {
                tokenName: "USD Coin".into(),
                tokenSymbol: "USDC".into(),
                tokenCurrency: "USD".into(),
                tokenDecimals: 6,
                newMasterMinter: op,
                newPauser: op,
                newBlacklister: op,
                newOwner: op,
            }
            .abi_encode(),
        )
        .await;
        let v2 = IFiatToken::initializeV2Call {
            newName: "USD Coin".into(),
        };
        usdc.call(node, op, v2.abi_encode()).await;
        let v2_1 = IFiatToken::initializeV2_1Call { lostAndFound: op };
        usdc.call(node, op, v2_1.abi_encode()).await;
        let v2_2 = IFiatToken::initializeV2_2Call {
            accountsToBlacklist: Vec::new(),
            newSymbol: "USDC".into(),
        };
        usdc.call(node, op, v2_2.abi_encode()).await;
        let minter = IFiatToken::configureMinterCall {
            minter: op,
            minterAllowedAmount: U256::MAX,
        };
        usdc.call(node, op, minter.abi_encode()).await;
        usdc
    }

    /// A call to the token (through the proxy) from `from`; panics on revert.
    pub(crate) async fn call(&self, node: &DevNode, from: Address, data: Vec<u8>) {
        node.send(from, Some(self.proxy), data).await;
    }

    pub(crate) async fn mint(&self, node: &DevNode, to: Address, amount: U256) {
        let call = IFiatToken::mintCall { to, amount };
        self.call(node, self.operator, call.abi_encode()).await;
    }

    /// Upgrades the proxy to `implementation` (from its admin).
    pub(crate) async fn upgrade_to(&self, node: &DevNode, implementation: Address) {
        let call = IFiatToken::upgradeToCall {
            newImplementation: implementation,
        };
        node.send(self.admin, Some(self.proxy), call.abi_encode())
            .await;
    }

    async fn total_supply_at(&self, node: &DevNode, number: u64) -> U256 {
        let out = node
            .call_at(
                self.proxy,
                IFiatToken::totalSupplyCall {}.abi_encode(),
                number,
            )
            .await;
        if out.is_empty() {
            return U256::ZERO;
        }
        IFiatToken::totalSupplyCall::abi_decode_returns(&out).expect("totalSupply")
    }
}

fn usdc_units(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// Syncs, then compares every holder's balances with `balanceOf` at the head and at the
/// finalized height, and their sum with `totalSupply` (every holder is in `holders`).
async fn sync_and_check(
    node: &DevNode,
    usdc: &Usdc,
    holders: &[Address],
    watcher: &mut Watcher,
    store: &MemoryStore,
    step: &str,
) {
    watcher
        .sync()
        .await
        .unwrap_or_else(|e| panic!("{step}: sync: {e}"));
    let head = *watcher.window().head().expect("head");
    assert_eq!(head.hash, node.hash_at(head.number).await, "{step}: head");
    let finalized = watcher.window().finalized_number();
    let (mut pending_sum, mut confirmed_sum) = (U256::ZERO, U256::ZERO);
    for &user in holders {
        let view = store
            .balance(BalanceKey {
                user,
                asset: usdc.proxy,
            })
            .await
            .expect("balance");
        let pending = node.balance_at(usdc.proxy, user, head.number).await;
        assert_eq!(view.pending, pending, "{step}: pending balance of {user}");
        let confirmed = match finalized {
            Some(f) => node.balance_at(usdc.proxy, user, f).await,
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
        usdc.total_supply_at(node, head.number).await,
        "{step}: Σ pending = totalSupply"
    );
    if let Some(f) = finalized {
        assert_eq!(
            confirmed_sum,
            usdc.total_supply_at(node, f).await,
            "{step}: Σ confirmed = totalSupply at the finalized height"
        );
    }
}

/// `n` random operations: mints to a holder, burns of the operator's own balance, transfers
/// and `transferFrom`s of at most what the sender holds (read from the node).
async fn random_ops(node: &DevNode, usdc: &Usdc, holders: &[Address], x: &mut u64, n: usize) {
    for _ in 0..n {
        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let (a, b) = (
            (*x >> 33) as usize % holders.len(),
            (*x >> 17) as usize % holders.len(),
        );
        let amount = usdc_units((*x >> 40) % 500 + 1);
        let head = node.head().await;
        match (*x >> 29) % 5 {
            0 => usdc.mint(node, holders[a], amount).await,
            1 => {
                let held = node.balance_at(usdc.proxy, usdc.operator, head).await;
                usdc.mint(node, usdc.operator, amount).await;
                let burn = IFiatToken::burnCall {
                    amount: (held + amount) / U256::from(2),
                };
                usdc.call(node, usdc.operator, burn.abi_encode()).await;
            }
            2 => {
                let held = node.balance_at(usdc.proxy, holders[a], head).await;
                let spender = holders[(a + 1) % holders.len()];
                let value = held / U256::from(3);
                let approve = IFiatToken::approveCall { spender, value };
                usdc.call(node, holders[a], approve.abi_encode()).await;
                let call = IFiatToken::transferFromCall {
                    from: holders[a],
                    to: holders[b],
                    value,
                };
                usdc.call(node, spender, call.abi_encode()).await;
            }
            _ => {
                let held = node.balance_at(usdc.proxy, holders[a], head).await;
                let call = IFiatToken::transferCall {
                    to: holders[b],
                    value: held.min(amount),
                };
                usdc.call(node, holders[a], call.abi_encode()).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdc_fiat_token_v2_2_balances_equal_balance_of_through_reorgs() {
    let node = DevNode::start().await;
    let usdc = Usdc::deploy(&node).await;
    let mut holders = node.accounts[1..7].to_vec();
    holders.push(usdc.operator);

    let mut config =
        RpcConfig::new(Decoders::new().with(usdc.proxy, Contract::Token { asset: usdc.proxy }));
    config.finality = FinalityTag::Depth;
    config.max_log_range = 8;
    let source = Arc::new(RpcBlockSource::http(&node.url, config).expect("source"));
    let assets = AssetRegistry::new([Asset::new(usdc.proxy, "USDC", 6, 9_000)]).expect("assets");
    let mut wconfig = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
    wconfig.max_price_age = u64::MAX;
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(wconfig, source, store.clone())
        .await
        .expect("watcher");
    let s = &*store;

    for (i, &h) in holders.iter().enumerate() {
        usdc.mint(&node, h, usdc_units(1_000 * (i as u64 + 1)))
            .await;
    }
    sync_and_check(&node, &usdc, &holders, &mut watcher, s, "minted").await;
    let mut x: u64 = 0x5DEE_CE66;
    for round in 0..3 {
        random_ops(&node, &usdc, &holders, &mut x, 6).await;
        sync_and_check(
            &node,
            &usdc,
            &holders,
            &mut watcher,
            s,
            &format!("round {round}"),
        )
        .await;
    }
    for reorg in 0..2 {
        let snap = node.snapshot().await;
        // At most 3 blocks each: the fork stays above the finalized height.
        random_ops(&node, &usdc, &holders, &mut x, 2).await;
        sync_and_check(
            &node,
            &usdc,
            &holders,
            &mut watcher,
            s,
            &format!("fork {reorg}"),
        )
        .await;
        node.revert(snap).await;
        random_ops(&node, &usdc, &holders, &mut x, 6).await;
        // Longer than the fork it replaces, whatever the operations were.
        node.mine(12).await;
        sync_and_check(
            &node,
            &usdc,
            &holders,
            &mut watcher,
            s,
            &format!("reorg {reorg}"),
        )
        .await;
    }
    assert_eq!(watcher.stats().reorgs, 2, "two reorgs");
    node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(&node, &usdc, &holders, &mut watcher, s, "all confirmed").await;
}
