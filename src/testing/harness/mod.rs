//! Drives a [`Watcher`] over a [`SimulatedChain`] and checks the backends against the
//! [replay oracle](crate::testing::oracle) after every step.
//!
//! The harness itself and its steps are here; mining a generated block is in `mine`, the
//! comparison with the oracle in `check`.

mod check;
mod mine;
mod on_chain;

use std::sync::Arc;

use alloy_primitives::{Address, B256};

pub(crate) use check::expected_collateral;

use super::backends::Backends;
use super::oracle::{Expected, replay};
use super::strategy::{BlockSpec, Op};
use crate::chains::ChainId;
use crate::engine::EngineConfig;
use crate::error::{EngineError, Error};
use crate::model::{Asset, AssetRegistry, Block, BlockHeader, BlockNumber, PriceSource};
use crate::source::SimulatedChain;
use crate::traits::BlockSource;
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
    /// Where the watcher wrote resumes: (block hash, asset), in order.
    resumes: Vec<(B256, crate::model::AssetId)>,
    /// The chain id the source reports (`None`: a simulation's, none).
    chain_id: Option<ChainId>,
}

/// The assets every harness tracks: 6, 18 and 8 decimals, various collateral factors,
/// then an ERC-4626 vault of USDC with 8-decimal shares and an ETH-like token priced by the
/// WETH feed (their price sources are set by [`default_registry`]).
pub fn default_assets() -> Vec<Asset> {
    vec![
        Asset::new(Address::repeat_byte(0xA1), "USDC", 6, 9_000),
        Asset::new(Address::repeat_byte(0xA2), "WETH", 18, 8_000),
        Asset::new(Address::repeat_byte(0xA3), "WBTC", 8, 7_500),
        Asset::new(Address::repeat_byte(0xA4), "vUSDC", 8, 8_500),
        Asset::new(Address::repeat_byte(0xA5), "stETH", 18, 7_000),
    ]
}

/// [`default_assets`] with their price sources: `vUSDC` derived from USDC through its vault
/// rate, `stETH` priced by WETH's feed.
pub fn default_registry() -> AssetRegistry {
    let a = default_assets();
    AssetRegistry::new(a.clone())
        .and_then(|r| {
            r.with_price_source(
                a[3].id,
                PriceSource::Derived {
                    underlying: a[0].id,
                },
            )
        })
        .and_then(|r| r.with_price_source(a[4].id, PriceSource::SameAs(a[1].id)))
        .expect("valid assets")
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
        Self::build(backends, confirmations, users, None, tweak).await
    }

    /// A harness with 5 users whose chain reports `chain` as its chain id, so its writer
    /// claims the store for that chain (a Postgres chain schema of the chains catalog
    /// refuses a writer of another chain). One chain of a
    /// [`MultiHarness`](crate::testing::multichain::MultiHarness).
    pub async fn on_chain(backends: Backends, confirmations: u64, chain: ChainId) -> Self {
        Self::build(backends, confirmations, 5, Some(chain), |_| {}).await
    }

    async fn build(
        backends: Backends,
        confirmations: u64,
        users: usize,
        chain_id: Option<ChainId>,
        tweak: impl FnOnce(&mut WatcherConfig),
    ) -> Self {
        let assets = default_assets();
        let registry = default_registry();
        let mut config = WatcherConfig::new(EngineConfig::new(registry, confirmations));
        config.start_block = START;
        config.max_price_age = 600;
        tweak(&mut config);
        let chain = Arc::new(SimulatedChain::new(START));
        let watcher = Self::watcher(&config, &Self::source_of(&chain, chain_id), &backends).await;
        let mut harness = Self {
            chain,
            watcher,
            backends,
            config,
            users: (0..users).map(user).collect(),
            assets,
            max_head: START,
            tag: None,
            resumes: Vec::new(),
            chain_id,
        };
        harness.sync().await;
        harness
    }

    fn source_of(chain: &Arc<SimulatedChain>, id: Option<ChainId>) -> Arc<dyn BlockSource> {
        match id {
            Some(id) => Arc::new(on_chain::OnChain {
                chain: chain.clone(),
                id,
            }),
            None => chain.clone(),
        }
    }

    /// The source the harness's watcher reads: its chain, reporting the harness's chain id
    /// (see [`on_chain`](Self::on_chain)). Another writer of the same chain starts from it.
    pub fn source(&self) -> Arc<dyn BlockSource> {
        Self::source_of(&self.chain, self.chain_id)
    }

    /// The chain id the harness's chain reports (`None` unless built
    /// [`on_chain`](Self::on_chain)).
    pub fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    async fn watcher(
        config: &WatcherConfig,
        source: &Arc<dyn BlockSource>,
        backends: &Backends,
    ) -> Watcher {
        let w = Watcher::new(config.clone(), source.clone(), backends.store.clone())
            .await
            .expect("watcher starts from the store's checkpoint");
        match &backends.cache {
            Some(cache) => w.with_cache(cache.clone()),
            None => w,
        }
    }

    /// Drops the watcher and starts a new one from the store's checkpoint, as after a crash.
    pub async fn restart(&mut self) {
        self.watcher = Self::watcher(&self.config, &self.source(), &self.backends).await;
    }

    /// Syncs the watcher with the chain; panics on error.
    pub async fn sync(&mut self) -> StepReport {
        let report = self.sync_unflushed().await;
        // The cache is checked against the oracle once the refresh caught up (or failed).
        self.watcher.flush().await;
        report
    }

    /// [`sync`](Self::sync) without waiting for the refresh.
    pub async fn sync_unflushed(&mut self) -> StepReport {
        let report = self
            .watcher
            .sync()
            .await
            .expect("sync with a valid chain succeeds");
        self.note_head();
        self.resumes.extend(
            report
                .resumed
                .iter()
                .map(|(asset, block)| (block.hash, *asset)),
        );
        report
    }

    /// The chain's canonical blocks with the resumes the watcher wrote into them (the
    /// events it adds to the blocks it applies), as the oracle must replay them.
    pub fn canonical(&self) -> Vec<Block> {
        let mut blocks = self.chain.canonical();
        if self.resumes.is_empty() {
            return blocks;
        }
        for block in &mut blocks {
            let number = block.header.number;
            let mut i = 0;
            for (hash, asset) in &self.resumes {
                if *hash == block.header.hash {
                    block.events.push(crate::model::BalanceEvent {
                        part: 0,
                        log: crate::model::resume_log(*asset, number, i),
                        asset: *asset,
                        change: crate::model::BalanceChange::Resume,
                    });
                    i += 1;
                }
            }
        }
        blocks
    }

    /// Records that the chain's head was synced by a writer other than the watcher (depth
    /// finality follows the highest head seen).
    pub fn note_head(&mut self) {
        self.max_head = self.max_head.max(self.chain.head_number());
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
        replay(&self.canonical(), self.expected_finalized())
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
            Op::Resume { asset } => {
                let asset = self.assets[*asset as usize % self.assets.len()].id;
                let quarantined = self.expected().pending_quarantined.contains_key(&asset);
                let queued = self.watcher.resume(asset).await.expect("resume");
                assert_eq!(
                    queued, quarantined,
                    "resume of {asset}: quarantined at the head"
                );
                self.mine_spec(&BlockSpec::default());
                self.sync().await;
            }
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
}
