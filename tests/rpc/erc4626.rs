//! An OpenZeppelin 5.1 ERC-4626 vault on a real Hardhat node, compiled from the published
//! `@openzeppelin/contracts` source (see `published`), decoded as `Contract::Erc4626` with
//! each `ShareMints` choice by its own watcher and store over the same chain. OpenZeppelin's
//! vault emits a share `Transfer` from/to the zero address *and* `Deposit` / `Withdraw`, so
//! each choice must count every mint and burn exactly once. After every sync, both stores'
//! share balances equal the vault's `balanceOf` at the head and at the finalized height,
//! through deposits, mints for another receiver, share transfers, a donation (the rate moves,
//! no share does), withdrawals and redemptions on behalf of an owner, and a reorg.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders, ShareMints};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 4;

sol! {
    interface IVault {
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function deposit(uint256 assets, address receiver) external returns (uint256);
        function mint(uint256 shares, address receiver) external returns (uint256);
        function withdraw(uint256 assets, address receiver, address owner) external returns (uint256);
        function redeem(uint256 shares, address receiver, address owner) external returns (uint256);
        function totalSupply() external view returns (uint256);
    }
}

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

struct Vault {
    node: DevNode,
    token: Address,
    vault: Address,
    users: Vec<Address>,
}

/// One watcher over the vault with one `ShareMints` choice, and its store.
struct Follower {
    mints: ShareMints,
    watcher: Watcher,
    store: Arc<MemoryStore>,
}

impl Vault {
    async fn start() -> Vault {
        let node = DevNode::start().await;
        let token = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
        let vault = published::deploy(&node, "TestVault", &token.abi_encode()).await;
        let users = node.accounts[1..6].to_vec();
        let v = Vault {
            node,
            token,
            vault,
            users,
        };
        for &user in &v.users {
            v.node
                .transfer(v.token, v.node.accounts[0], user, e18(1_000))
                .await;
            let approve = IVault::approveCall {
                spender: v.vault,
                value: U256::MAX,
            };
            v.node.send(user, Some(v.token), approve.abi_encode()).await;
        }
        v
    }

    async fn follower(&self, mints: ShareMints) -> Follower {
        let decoders = Decoders::new().with(
            self.vault,
            Contract::Erc4626 {
                asset: self.vault,
                mints,
            },
        );
        let mut config = RpcConfig::new(decoders);
        // Hardhat's `finalized` is its head: confirm by depth (snapshots revert blocks).
        config.finality = FinalityTag::Depth;
        config.max_log_range = 8;
        let source = Arc::new(RpcBlockSource::http(&self.node.url, config).expect("source"));
        let assets =
            AssetRegistry::new([Asset::new(self.vault, "vTST", 18, 8_000)]).expect("assets");
        let mut wconfig = WatcherConfig::new(EngineConfig::new(assets, CONFIRMATIONS));
        wconfig.max_price_age = u64::MAX;
        let store = Arc::new(MemoryStore::new());
        let watcher = Watcher::new(wconfig, source, store.clone())
            .await
            .expect("watcher");
        Follower {
            mints,
            watcher,
            store,
        }
    }

    /// A call from user `from` to the vault (one block).
    async fn call(&self, from: usize, data: Vec<u8>) {
        self.node
            .send(self.users[from], Some(self.vault), data)
            .await;
    }

    async fn deposit(&self, from: usize, receiver: usize, assets: u64) {
        let call = IVault::depositCall {
            assets: e18(assets),
            receiver: self.users[receiver],
        };
        self.call(from, call.abi_encode()).await;
    }

    async fn mint(&self, from: usize, receiver: usize, shares: u64) {
        let call = IVault::mintCall {
            shares: e18(shares),
            receiver: self.users[receiver],
        };
        self.call(from, call.abi_encode()).await;
    }

    async fn send_shares(&self, from: usize, to: usize, shares: u64) {
        let call = IVault::transferCall {
            to: self.users[to],
            value: e18(shares),
        };
        self.call(from, call.abi_encode()).await;
    }

    async fn allow_shares(&self, owner: usize, spender: usize) {
        let call = IVault::approveCall {
            spender: self.users[spender],
            value: U256::MAX,
        };
        self.call(owner, call.abi_encode()).await;
    }

    async fn withdraw(&self, from: usize, receiver: usize, owner: usize, assets: u64) {
        let call = IVault::withdrawCall {
            assets: e18(assets),
            receiver: self.users[receiver],
            owner: self.users[owner],
        };
        self.call(from, call.abi_encode()).await;
    }

    async fn redeem(&self, from: usize, receiver: usize, owner: usize, shares: u64) {
        let call = IVault::redeemCall {
            shares: e18(shares),
            receiver: self.users[receiver],
            owner: self.users[owner],
        };
        self.call(from, call.abi_encode()).await;
    }

    /// Underlying tokens sent straight to the vault: the share price rises, no share moves.
    async fn donate(&self, from: usize, assets: u64) {
        self.node
            .transfer(self.token, self.users[from], self.vault, e18(assets))
            .await;
    }

    /// The vault's `totalSupply()` of shares at block `number` (zero before deployment).
    async fn total_shares_at(&self, number: u64) -> U256 {
        let out = self
            .node
            .call_at(self.vault, IVault::totalSupplyCall {}.abi_encode(), number)
            .await;
        if out.is_empty() {
            return U256::ZERO;
        }
        IVault::totalSupplyCall::abi_decode_returns(&out).expect("totalSupply")
    }
}

/// Syncs every follower, then compares each user's shares in its store with the vault's
/// `balanceOf` at the head and at the finalized height, and their sum with `totalSupply`.
async fn sync_and_check(v: &Vault, followers: &mut [Follower], step: &str) {
    let node_head = v.node.head().await;
    for f in followers.iter_mut() {
        let label = format!("{step} ({:?})", f.mints);
        f.watcher
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{label}: sync: {e}"));
        let head = *f.watcher.window().head().expect("head");
        assert_eq!(head.number, node_head, "{label}: head height");
        let finalized = f.watcher.window().finalized_number();
        let (mut pending_sum, mut confirmed_sum) = (U256::ZERO, U256::ZERO);
        for &user in &v.users {
            let view = f
                .store
                .balance(BalanceKey {
                    user,
                    asset: v.vault,
                })
                .await
                .expect("balance");
            let pending = v.node.balance_at(v.vault, user, head.number).await;
            assert_eq!(view.pending, pending, "{label}: pending shares of {user}");
            let confirmed = match finalized {
                Some(n) => v.node.balance_at(v.vault, user, n).await,
                None => U256::ZERO,
            };
            assert_eq!(
                view.confirmed, confirmed,
                "{label}: confirmed shares of {user}"
            );
            pending_sum += view.pending;
            confirmed_sum += view.confirmed;
        }
        assert_eq!(
            pending_sum,
            v.total_shares_at(head.number).await,
            "{label}: Σ pending = totalSupply"
        );
        if let Some(n) = finalized {
            assert_eq!(
                confirmed_sum,
                v.total_shares_at(n).await,
                "{label}: Σ confirmed = totalSupply at the finalized height"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc4626_shares_equal_balance_of_with_either_mint_source() {
    let v = Vault::start().await;
    let mut followers = vec![
        v.follower(ShareMints::Transfers).await,
        v.follower(ShareMints::Events).await,
    ];
    let f = followers.as_mut_slice();

    v.deposit(0, 0, 100).await;
    v.mint(1, 2, 40).await; // user 1 pays, user 2 gets the shares
    v.send_shares(0, 3, 25).await;
    sync_and_check(&v, f, "deposits").await;

    // A donation moves the rate: later deposits mint fewer shares than assets.
    v.donate(4, 70).await;
    v.deposit(4, 4, 30).await;
    v.withdraw(3, 1, 3, 10).await; // user 3 withdraws its own shares' assets to user 1
    v.allow_shares(2, 4).await;
    v.redeem(4, 4, 2, 15).await; // user 4 redeems user 2's shares: user 2's burn
    sync_and_check(&v, f, "donation, withdrawals").await;
    v.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(&v, f, "confirmed").await;

    // A reorg replacing a redemption and a deposit by a transfer and a mint.
    let snap = v.node.snapshot().await;
    v.redeem(0, 0, 0, 20).await;
    v.deposit(1, 1, 5).await;
    sync_and_check(&v, f, "before the reorg").await;
    v.node.revert(snap).await;
    v.send_shares(4, 0, 3).await;
    v.mint(3, 3, 2).await;
    sync_and_check(&v, f, "after the reorg").await;
    for follower in f.iter() {
        assert_eq!(follower.watcher.stats().reorgs, 1, "{:?}", follower.mints);
    }

    v.redeem(0, 0, 0, 50).await;
    v.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(&v, f, "all confirmed").await;
}
