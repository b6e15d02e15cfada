//! ERC-4626 shares valued at `convertToAssets` on a real Hardhat node: OpenZeppelin 5.1's
//! ERC4626 compiled from the published `@openzeppelin/contracts` source (see `published`),
//! its underlying priced by a Chainlink-style feed that also prices a second token
//! (`PriceSource::SameAs`), the vault `PriceSource::Derived` from the underlying, its rate
//! read by the source (`RpcConfig::vault_rates`). After every sync, on the memory store and
//! on Postgres, every user's confirmed and pending value of each asset equals what the chain
//! says at the finalized height and at the head: `balanceOf × convertToAssets(10^18) / 10^18`
//! (floor) × the feed's answer × the factor, and the stored rate equals `convertToAssets`
//! there, through donations (the rate moves, no share does) and a reorg that undoes one.

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use reorg_collateral::decode::{Contract, Decoders, ShareMints};
use reorg_collateral::model::{Asset, AssetRegistry, PriceSource, PriceStatus, Valuation};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig, VaultRate};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

use crate::dev_node::DevNode;
use crate::published;

const CONFIRMATIONS: u64 = 3;
/// Collateral factors: the underlying, the vault's shares, the second token.
const FACTORS: [u16; 3] = [9_000, 8_000, 7_000];

sol! {
    interface IVaultCalls {
        function approve(address spender, uint256 value) external returns (bool);
        function deposit(uint256 assets, address receiver) external returns (uint256);
        function redeem(uint256 shares, address receiver, address owner) external returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function convertToAssets(uint256 shares) external view returns (uint256);
    }
}

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

struct Setup {
    node: DevNode,
    token: Address,
    other: Address,
    vault: Address,
    feed: Address,
    users: Vec<Address>,
}

impl Setup {
    async fn start() -> Setup {
        let node = DevNode::start().await;
        let token = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
        let other = node.deploy("TestToken", &e18(1_000_000).abi_encode()).await;
        let vault = published::deploy(&node, "TestVault", &token.abi_encode()).await;
        let feed = node
            .deploy("MockAggregator", &U256::from(8).abi_encode())
            .await;
        let users = node.accounts[1..5].to_vec();
        let s = Setup {
            node,
            token,
            other,
            vault,
            feed,
            users,
        };
        s.node.set_price(s.feed, 100_000_000).await; // $1.00
        for &user in &s.users {
            for t in [s.token, s.other] {
                s.node
                    .transfer(t, s.node.accounts[0], user, e18(1_000))
                    .await;
            }
            let approve = IVaultCalls::approveCall {
                spender: s.vault,
                value: U256::MAX,
            };
            s.node.send(user, Some(s.token), approve.abi_encode()).await;
        }
        s
    }

    fn registry(&self) -> AssetRegistry {
        AssetRegistry::new([
            Asset::new(self.token, "TST", 18, FACTORS[0]),
            Asset::new(self.vault, "vTST", 18, FACTORS[1]),
            Asset::new(self.other, "OTH", 18, FACTORS[2]),
        ])
        .and_then(|r| {
            r.with_price_source(
                self.vault,
                PriceSource::Derived {
                    underlying: self.token,
                },
            )
        })
        .and_then(|r| r.with_price_source(self.other, PriceSource::SameAs(self.token)))
        .expect("assets")
    }

    async fn watcher(&self, store: Arc<dyn BalanceStore>) -> Watcher {
        let decoders = Decoders::new()
            .with(self.token, Contract::Token { asset: self.token })
            .with(self.other, Contract::Token { asset: self.other })
            .with(
                self.vault,
                Contract::Erc4626 {
                    asset: self.vault,
                    mints: ShareMints::Transfers,
                },
            )
            .with(
                self.feed,
                Contract::Feed {
                    asset: self.token,
                    decimals: 8,
                },
            );
        let mut config =
            RpcConfig::new(decoders).with_vault_rate(VaultRate::new(self.vault, self.token, 18));
        config.finality = FinalityTag::Depth;
        config.max_log_range = 8;
        config.rate_interval = 5;
        let source = Arc::new(RpcBlockSource::http(&self.node.url, config).expect("source"));
        let mut wconfig = WatcherConfig::new(EngineConfig::new(self.registry(), CONFIRMATIONS));
        wconfig.max_price_age = u64::MAX;
        Watcher::new(wconfig, source, store).await.expect("watcher")
    }

    async fn call(&self, from: usize, to: Address, data: Vec<u8>) {
        self.node.send(self.users[from], Some(to), data).await;
    }

    async fn deposit(&self, from: usize, assets: u64) {
        let call = IVaultCalls::depositCall {
            assets: e18(assets),
            receiver: self.users[from],
        };
        self.call(from, self.vault, call.abi_encode()).await;
    }

    async fn redeem(&self, from: usize, shares: u64) {
        let call = IVaultCalls::redeemCall {
            shares: e18(shares),
            receiver: self.users[from],
            owner: self.users[from],
        };
        self.call(from, self.vault, call.abi_encode()).await;
    }

    async fn send_shares(&self, from: usize, to: usize, shares: u64) {
        let call = IVaultCalls::transferCall {
            to: self.users[to],
            value: e18(shares),
        };
        self.call(from, self.vault, call.abi_encode()).await;
    }

    /// Underlying sent straight to the vault: the rate rises, no share moves.
    async fn donate(&self, from: usize, assets: u64) {
        self.node
            .transfer(self.token, self.users[from], self.vault, e18(assets))
            .await;
    }

    /// `convertToAssets(10^18)` at block `number`.
    async fn rate_at(&self, number: u64) -> U256 {
        let call = IVaultCalls::convertToAssetsCall { shares: e18(1) };
        let out = self
            .node
            .call_at(self.vault, call.abi_encode(), number)
            .await;
        IVaultCalls::convertToAssetsCall::abi_decode_returns(&out).expect("convertToAssets")
    }

    /// The feed's answer at block `number`.
    async fn answer_at(&self, number: u64) -> I256 {
        self.node.round_at(self.feed, number).await.answer
    }
}

/// `units × answer × factor / 10^30` (18 token and 8 feed decimals, bps), the exact value
/// times `10^30`, as a 512-bit-safe U256 (the amounts here are small).
fn scaled_value(units: U256, answer: I256, factor: u16) -> U256 {
    units * answer.into_raw() * U256::from(factor)
}

/// Asserts `got` (rounded at 18 places) is the exact `scaled / 10^30` to within half a unit
/// of its last place.
fn assert_value(got: Option<rust_decimal::Decimal>, scaled: U256, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no value"));
    assert!(got.scale() <= 18, "{what}: {got} has more than 18 places");
    let mantissa = U256::from(u128::try_from(got.mantissa()).expect("non-negative"));
    let got_scaled = mantissa * U256::from(10u64).pow(U256::from(30 - got.scale()));
    let diff = got_scaled.max(scaled) - got_scaled.min(scaled);
    assert!(
        diff * U256::from(2) <= U256::from(10u64).pow(U256::from(12)),
        "{what}: {got} is not {scaled} / 10^30"
    );
}

/// One side of the check: every user's value of each asset equals the chain's at `number`.
async fn check_side(s: &Setup, side: &Valuation, user: Address, number: u64, what: &str) {
    let (rate, answer) = (s.rate_at(number).await, s.answer_at(number).await);
    for (i, asset) in [s.token, s.vault, s.other].into_iter().enumerate() {
        let balance = s.node.balance_at(asset, user, number).await;
        let found = side.assets.iter().find(|a| a.asset == asset);
        let what = format!("{what}: asset {i} of {user} at #{number}");
        if balance.is_zero() {
            assert!(found.is_none(), "{what}: valued without a balance");
            continue;
        }
        let a = found.unwrap_or_else(|| panic!("{what}: not valued"));
        assert_eq!(a.balance, balance, "{what}: balance");
        assert_eq!(a.status, PriceStatus::Fresh, "{what}: status");
        let units = if asset == s.vault {
            let used = a.rate.unwrap_or_else(|| panic!("{what}: no rate"));
            assert_eq!(used.rate, rate, "{what}: rate = convertToAssets(1e18)");
            balance * rate / e18(1)
        } else {
            assert_eq!(a.rate, None, "{what}: a rate on a token");
            balance
        };
        assert_eq!(
            a.price.map(|p| p.answer),
            Some(answer),
            "{what}: the feed's answer"
        );
        assert_value(a.value, scaled_value(units, answer, FACTORS[i]), &what);
    }
}

async fn sync_and_check(s: &Setup, followers: &mut [(&str, Watcher)], step: &str) {
    let head = s.node.head().await;
    for (name, watcher) in followers.iter_mut() {
        let what = format!("{step} ({name})");
        watcher
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{what}: sync: {e}"));
        assert_eq!(watcher.window().head().map(|h| h.number), Some(head));
        let finalized = watcher.window().finalized_number();
        for &user in &s.users {
            let c = watcher.collateral(user).await.expect("collateral");
            check_side(s, &c.pending, user, head, &format!("{what} pending")).await;
            match finalized {
                Some(f) => check_side(s, &c.confirmed, user, f, &format!("{what} confirmed")).await,
                None => assert!(c.confirmed.assets.is_empty(), "{what}: confirmed"),
            }
        }
    }
}

async fn scenario(s: &Setup, followers: &mut [(&str, Watcher)]) {
    s.deposit(0, 100).await;
    s.deposit(1, 40).await;
    s.send_shares(0, 2, 25).await;
    sync_and_check(s, followers, "deposits").await;

    // Donations: the rate moves in blocks where no share does.
    s.donate(3, 70).await;
    s.node.mine(2).await;
    s.donate(2, 13).await;
    sync_and_check(s, followers, "donations").await;
    s.node.set_price(s.feed, 101_500_000).await; // one feed, three assets repriced
    s.deposit(3, 30).await;
    s.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(s, followers, "confirmed").await;

    // A reorg undoing a donation and a redemption: the rate read in the undone blocks
    // goes with them.
    let snap = s.node.snapshot().await;
    s.donate(1, 50).await;
    s.redeem(0, 20).await;
    sync_and_check(s, followers, "before the reorg").await;
    s.node.revert(snap).await;
    s.send_shares(2, 1, 5).await;
    s.node.mine(2).await;
    sync_and_check(s, followers, "after the reorg").await;
    for (name, w) in followers.iter() {
        assert_eq!(w.stats().reorgs, 1, "{name}");
    }
    s.donate(0, 7).await;
    s.node.mine(CONFIRMATIONS + 1).await;
    sync_and_check(s, followers, "all confirmed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc4626_value_is_balance_of_times_convert_to_assets_times_price() {
    let s = Setup::start().await;
    let memory = s.watcher(Arc::new(MemoryStore::new())).await;
    let mut followers = vec![("memory", memory)];
    #[cfg(feature = "postgres")]
    {
        let store = Arc::new(crate::support::pg::fresh_store().await);
        store
            .register_assets(&s.registry())
            .await
            .expect("register assets");
        followers.push(("postgres", s.watcher(store).await));
    }
    scenario(&s, &mut followers).await;
}
