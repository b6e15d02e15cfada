//! Drives a [`Watcher`] over a [`SimulatedChain`] and checks the backends against the
//! [replay oracle](super::oracle) after every step.

use std::sync::Arc;

use alloy_primitives::{Address, B256, I256, U256};

use super::backends::Backends;
use super::oracle::{Expected, replay};
use super::strategy::{BlockSpec, EventSpec, Op};
use crate::engine::EngineConfig;
use crate::error::{EngineError, Error};
use crate::model::{
    Asset, AssetRegistry, BalanceKey, Block, BlockHeader, BlockNumber, CachedCollateral,
};
use crate::source::{BlockBuilder, SimulatedChain};
use crate::traits::{BlockSource, LogStatus};
use crate::watcher::{StepReport, Watcher, WatcherConfig};

/// First block of the harness chain.
pub const START: BlockNumber = 100;

/// A simulated chain, a watcher writing into the backends under test, and the model of
/// what finality should be. Every check compares the backends with [`replay`].
#[derive(Debug)]
pub struct Harness {
    /// The chain blocks come from.
    pub chain: Arc<SimulatedChain>,
    /// The watcher under test.
    pub watcher: Watcher,
    /// The backends under test.
    pub backends: Backends,
    /// The watcher's configuration (reused on restart).
    pub config: WatcherConfig,
    /// Users the generated events touch.
    pub users: Vec<Address>,
    /// Assets the generated events touch.
    pub assets: Vec<Asset>,
    max_head: BlockNumber,
    tag: Option<BlockNumber>,
}

/// The assets every harness tracks: 6, 18 and 8 decimals, various collateral factors.
pub fn default_assets() -> Vec<Asset> {
    vec![
        Asset::new(Address::repeat_byte(0xA1), "USDC", 6, 9_000),
        Asset::new(Address::repeat_byte(0xA2), "WETH", 18, 8_000),
        Asset::new(Address::repeat_byte(0xA3), "WBTC", 8, 7_500),
    ]
}

/// Deterministic user addresses `0x..01`, `0x..02`, ….
pub fn user(i: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    Address::from(bytes)
}

impl Harness {
    /// A harness over `backends` confirming at depth `confirmations`, with 5 users.
    pub async fn new(backends: Backends, confirmations: u64) -> Self {
        Self::with_users(backends, confirmations, 5).await
    }

    /// A harness with `users` distinct users.
    pub async fn with_users(backends: Backends, confirmations: u64, users: usize) -> Self {
        Self::with_config(backends, confirmations, users, |_| {}).await
    }

    /// A harness whose watcher configuration `tweak` adjusts (batching, concurrency, …).
    pub async fn with_config(
        backends: Backends,
        confirmations: u64,
        users: usize,
        tweak: impl FnOnce(&mut WatcherConfig),
    ) -> Self {
        let assets = default_assets();
        let registry = AssetRegistry::new(assets.clone()).expect("valid assets");
        let mut config = WatcherConfig::new(EngineConfig::new(registry, confirmations));
        config.start_block = START;
        config.max_price_age = 600;
        tweak(&mut config);
        let chain = Arc::new(SimulatedChain::new(START));
        let watcher = Self::watcher(&config, &chain, &backends).await;
        let mut harness = Self {
            chain,
            watcher,
            backends,
            config,
            users: (0..users).map(user).collect(),
            assets,
            max_head: START,
            tag: None,
        };
        harness.sync().await;
        harness
    }

    async fn watcher(
        config: &WatcherConfig,
        chain: &Arc<SimulatedChain>,
        backends: &Backends,
    ) -> Watcher {
        let source: Arc<dyn BlockSource> = chain.clone();
        let w = Watcher::new(config.clone(), source, backends.store.clone())
            .await
            .expect("watcher starts from the store's checkpoint");
        match &backends.cache {
            Some(cache) => w.with_cache(cache.clone()),
            None => w,
        }
    }

    /// Drops the watcher and starts a new one from the store's checkpoint, as after a crash.
    pub async fn restart(&mut self) {
        self.watcher = Self::watcher(&self.config, &self.chain, &self.backends).await;
    }

    /// Syncs the watcher with the chain; panics on error.
    pub async fn sync(&mut self) -> StepReport {
        let report = self
            .watcher
            .sync()
            .await
            .expect("sync with a valid chain succeeds");
        // The cache is checked against the oracle once the refresh caught up (or failed).
        self.watcher.flush().await;
        self.max_head = self.max_head.max(self.chain.head_number());
        report
    }

    /// Records that the chain's finalized tag was set to `tag` outside [`step`](Self::step).
    pub fn set_tag(&mut self, tag: BlockNumber) {
        self.tag = self.tag.max(Some(tag));
    }

    /// The finalized height the rules imply: depth finality over the highest head seen,
    /// and the chain's finalized tag.
    pub fn expected_finalized(&self) -> Option<BlockNumber> {
        let depth = self
            .max_head
            .checked_sub(self.config.engine.confirmations)
            .filter(|n| *n >= START);
        depth.max(self.tag.filter(|t| *t >= START))
    }

    /// The oracle's state for the current canonical chain.
    pub fn expected(&self) -> Expected {
        replay(&self.chain.canonical(), self.expected_finalized())
    }

    /// Mines a block from a spec, resolving percentages against the current pending state.
    pub fn mine_spec(&self, spec: &BlockSpec) -> Block {
        let state = replay(&self.chain.canonical(), None);
        let mut balances = state.pending;
        let nu = self.users.len();
        let na = self.assets.len();
        let (users, assets) = (&self.users, &self.assets);
        self.chain.mine(|b: &mut BlockBuilder| {
            for e in &spec.events {
                match *e {
                    EventSpec::Deposit {
                        user,
                        asset,
                        amount,
                    } => {
                        let key = BalanceKey {
                            user: users[user as usize % nu],
                            asset: assets[asset as usize % na].id,
                        };
                        *balances.entry(key).or_default() += U256::from(amount);
                        b.deposit(key.asset, key.user, U256::from(amount));
                    }
                    EventSpec::Withdraw {
                        user,
                        asset,
                        percent,
                    } => {
                        let key = BalanceKey {
                            user: users[user as usize % nu],
                            asset: assets[asset as usize % na].id,
                        };
                        let bal = balances.entry(key).or_default();
                        let amount = *bal * U256::from(percent.min(100)) / U256::from(100);
                        *bal -= amount;
                        b.withdraw(key.asset, key.user, amount);
                    }
                    EventSpec::Transfer {
                        from,
                        to,
                        asset,
                        percent,
                    } => {
                        let asset = assets[asset as usize % na].id;
                        let from = BalanceKey {
                            user: users[from as usize % nu],
                            asset,
                        };
                        let to = BalanceKey {
                            user: users[to as usize % nu],
                            asset,
                        };
                        let bal = balances.entry(from).or_default();
                        let amount = *bal * U256::from(percent.min(100)) / U256::from(100);
                        *bal -= amount;
                        *balances.entry(to).or_default() += amount;
                        b.transfer(asset, from.user, to.user, amount);
                    }
                    EventSpec::Huge { .. } => {}
                    EventSpec::Set {
                        user,
                        asset,
                        amount,
                    } => {
                        let key = BalanceKey {
                            user: users[user as usize % nu],
                            asset: assets[asset as usize % na].id,
                        };
                        balances.insert(key, U256::from(amount));
                        b.set_balance(key.asset, key.user, U256::from(amount));
                    }
                }
            }
            for e in &spec.events {
                if let EventSpec::Huge { user, asset } = *e {
                    let key = BalanceKey {
                        user: users[user as usize % nu],
                        asset: assets[asset as usize % na].id,
                    };
                    let amount = U256::from(10u64).pow(U256::from(30));
                    *balances.entry(key).or_default() += amount;
                    b.deposit(key.asset, key.user, amount);
                }
            }
            for p in &spec.prices {
                let asset = assets[p.asset as usize % na].id;
                let answer = I256::try_from(p.answer).unwrap_or_default();
                if p.old_round {
                    let current = state
                        .pending_prices
                        .get(&asset)
                        .map(|p| p.round_id)
                        .unwrap_or_default();
                    b.price_at_round(asset, answer, 8, current);
                } else {
                    b.price(asset, answer, 8);
                }
            }
        })
    }

    /// Applies one operation to the chain and the watcher, then checks against the oracle.
    pub async fn step(&mut self, op: &Op) {
        match op {
            Op::Mine(spec) => {
                self.mine_spec(spec);
                self.sync().await;
            }
            Op::Reorg { depth, blocks } => {
                let head = self.chain.head_number();
                let floor = self.expected_finalized().unwrap_or(START);
                let depth = (*depth).min(head - floor);
                self.chain.reorg(depth);
                let empty = [BlockSpec::default()];
                let specs = if blocks.is_empty() {
                    &empty[..]
                } else {
                    &blocks[..]
                };
                for spec in specs {
                    self.mine_spec(spec);
                }
                self.sync().await;
            }
            Op::FinalizeTag { lag } => {
                let tag = self.chain.head_number().saturating_sub(*lag).max(START);
                self.chain.set_finalized(Some(tag));
                self.tag = self.tag.max(Some(tag));
                self.sync().await;
            }
            Op::Redeliver { back } => {
                let canonical = self.chain.canonical();
                let block = canonical
                    [canonical.len() - 1 - (*back as usize).min(canonical.len() - 1)]
                .clone();
                let n = block.header.number;
                let result = self.watcher.ingest(block).await;
                match self.expected_finalized() {
                    Some(fin) if n < fin => assert!(
                        matches!(
                            result,
                            Err(Error::Engine(EngineError::AlreadyFinalized { .. }))
                        ),
                        "redelivered block #{n} below finalized #{fin}: {result:?}"
                    ),
                    _ => assert_eq!(
                        result.expect("redelivery is a no-op").applied,
                        0,
                        "redelivered #{n} was applied again"
                    ),
                }
            }
            Op::Gap => {
                let head = self.chain.head_number();
                let header = BlockHeader {
                    number: head + 2,
                    hash: B256::repeat_byte(0xEE),
                    parent_hash: B256::repeat_byte(0xEF),
                    timestamp: 0,
                };
                let result = self.watcher.ingest(Block::empty(header)).await;
                assert!(
                    matches!(result, Err(Error::Engine(EngineError::Gap { expected, .. })) if expected == head + 1),
                    "gap block accepted: {result:?}"
                );
            }
            Op::Restart => self.restart().await,
            Op::HeadBack { depth } => {
                let head = self.chain.head_number();
                let floor = self.expected_finalized().unwrap_or(START);
                self.chain.reorg((*depth).min(head - floor));
                self.sync().await;
            }
        }
        self.check().await;
    }

    /// Runs every operation, checking after each.
    pub async fn run(&mut self, ops: &[Op]) {
        for (i, op) in ops.iter().enumerate() {
            tracing::debug!(step = i, ?op, "harness step");
            self.step(op).await;
        }
    }

    /// Asserts that store, price feed, log, collateral and cache all equal the oracle.
    pub async fn check(&self) {
        let canonical = self.chain.canonical();
        let fin = self.expected_finalized();
        let expected = replay(&canonical, fin);
        let store = &self.backends.store;

        let window = store.window().await.expect("window");
        let head = canonical.last().expect("chain has blocks").header;
        assert_eq!(
            window.head(),
            Some(&head),
            "stored head differs from the canonical head"
        );
        assert_eq!(window.finalized_number(), fin, "stored finalized height");
        let unconfirmed: Vec<_> = canonical
            .iter()
            .map(|b| b.header)
            .filter(|h| fin.is_none_or(|f| h.number > f))
            .collect();
        assert_eq!(window.unconfirmed, unconfirmed, "stored unconfirmed window");
        assert_eq!(
            self.watcher.window(),
            &window,
            "watcher and store disagree on the window"
        );

        for user in &self.users {
            let mut want = Vec::new();
            for asset in &self.assets {
                let key = BalanceKey {
                    user: *user,
                    asset: asset.id,
                };
                let exp = expected.balance(&key);
                let got = store.balance(key).await.expect("balance");
                assert_eq!(got, exp, "balance of {user} in {}", asset.symbol);
                if !exp.confirmed.is_zero() || !exp.pending.is_zero() {
                    want.push((asset.id, exp));
                }
            }
            let got: Vec<_> = store
                .user_balances(*user)
                .await
                .expect("user balances")
                .into_iter()
                .filter(|(_, v)| !v.confirmed.is_zero() || !v.pending.is_zero())
                .collect();
            assert_eq!(got, want, "balances of {user}");
        }

        for asset in &self.assets {
            let got = self.backends.prices.price(asset.id).await.expect("price");
            assert_eq!(got, expected.price(&asset.id), "price of {}", asset.symbol);
        }

        self.check_log(&canonical, fin).await;
        self.check_collateral(&expected, &head).await;
    }

    async fn check_log(&self, canonical: &[Block], fin: Option<BlockNumber>) {
        let head = canonical.last().map_or(START, |b| b.header.number);
        let rows = self.backends.store.log(START..=head).await.expect("log");
        let got: Vec<_> = rows
            .iter()
            .filter(|r| r.status != LogStatus::Reverted)
            .map(|r| (r.block, r.log, r.ordinal, r.key, r.effect, r.status))
            .collect();
        let mut want = Vec::new();
        for block in canonical {
            let status = if fin.is_some_and(|f| block.header.number <= f) {
                LogStatus::Confirmed
            } else {
                LogStatus::Pending
            };
            for e in &block.events {
                for (i, (key, effect)) in e.effects().enumerate() {
                    want.push((block.id(), e.log, i as u8, key, effect, status));
                }
            }
        }
        assert_eq!(got, want, "canonical rows of the event log");
    }

    async fn check_collateral(&self, expected: &Expected, head: &BlockHeader) {
        let valuator = self.watcher.valuator();
        for user in &self.users {
            let balances: Vec<_> = self
                .assets
                .iter()
                .map(|a| {
                    (
                        a.id,
                        expected.balance(&BalanceKey {
                            user: *user,
                            asset: a.id,
                        }),
                    )
                })
                .filter(|(_, v)| !v.confirmed.is_zero() || !v.pending.is_zero())
                .collect();
            let prices: Vec<_> = balances.iter().map(|(a, _)| expected.price(a)).collect();
            let want = valuator
                .collateral(*user, head.number, head.timestamp, &balances, &prices)
                .expect("oracle valuation");
            let got = self.watcher.collateral(*user).await.expect("collateral");
            assert_eq!(got, want, "collateral of {user}");
            if let Some(cache) = &self.backends.cache {
                let cached = cache.get(*user).await.expect("cache read");
                let want = CachedCollateral::from(&want);
                match cached {
                    None => assert!(
                        want.assets.is_empty(),
                        "no cache entry for {user} who has collateral"
                    ),
                    Some(c) => assert_eq!(
                        (c.confirmed, c.pending, &c.assets),
                        (want.confirmed, want.pending, &want.assets),
                        "cached collateral of {user}"
                    ),
                }
            }
        }
    }
}
