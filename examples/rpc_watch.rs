//! Tails an Ethereum chain through your alloy providers and prints every user's collateral
//! change as it happens, with a progress line while it catches up.
//!
//! ```sh
//! RPC_URLS=http://127.0.0.1:8545,http://127.0.0.1:8546 \
//! TOKENS=0xToken:TST:18:8000 FEEDS=0xFeed:0xToken:8 FINALITY=depth \
//! cargo run --release --example rpc_watch --features rpc            # in-memory store
//! cargo run --release --example rpc_watch --features rpc,postgres,redis  # + DATABASE_URL, REDIS_URL
//! ```
//!
//! Build it with `--release` to follow a real chain: a debug build catches up several
//! times slower (measured in `docs/rpc.md`).
//!
//! - `RPC_URLS`: comma-separated endpoints of one chain, primary first; the others are
//!   fallbacks (an endpoint that fails, answers inconsistently or lags is skipped).
//!   Each is an alloy provider built with `ProviderBuilder` over a client with alloy's
//!   `RetryBackoffLayer` (the crate's `NodeErrorPolicy` says what is transient): build
//!   yours the same way, with your auth, throttling or fallback layers.
//! - `TOKENS`: comma-separated `address:symbol:decimals:collateral_factor_bps` (ERC-20s).
//! - `FEEDS`: comma-separated `aggregator:asset:feed_decimals` (Chainlink-style feeds;
//!   the decimals are checked against the aggregator's `decimals()` at start).
//! - `START_BLOCK` (default: the first token's deployment block, found by bisecting
//!   `eth_getCode`; set it on a node without historical state). Balances are folded from
//!   `Transfer` events; started later, each holder's opening balance is read with
//!   `balanceOf` at the parent of the first block that touches it (`Openings::Lazy`, the
//!   default). Started at the deployment block, openings are switched off
//!   (`Openings::Off`): every balance is in the events.
//! - `CONFIRMATIONS`, `FINALITY` = `finalized` | `safe` | `depth`: default the node's
//!   chain's (`ChainDefaults::for_chain`, docs/chain-defaults.md: Ethereum `finalized` and
//!   96, Hardhat/Anvil `depth` and 12, an unknown chain `depth` and 64); `POLL_MS`
//!   (default 1000).
//! - With feature `postgres` and `DATABASE_URL` set, state lives in Postgres (schema
//!   `reorg_collateral_watch`, resumed across restarts); with feature `redis` and
//!   `REDIS_URL` set, collateral is also written to Redis (prefix `rc_watch`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_client::ClientBuilder;
use async_trait::async_trait;
use reorg_collateral::chains::ChainDefaults;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, Block, BlockNumber};
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig, TransportConfig};
use reorg_collateral::watcher::{Notification, Openings, SyncProgress};
use reorg_collateral::{
    BalanceStore, BlockSource, EngineConfig, SourceError, Watcher, WatcherConfig,
};

type Error = Box<dyn std::error::Error>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn list(name: &str) -> Vec<Vec<String>> {
    env_or(name, "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().split(':').map(str::to_string).collect())
        .collect()
}

fn parse_config() -> Result<(Vec<Asset>, Decoders), Error> {
    let mut assets = Vec::new();
    let mut decoders = Decoders::new();
    for t in list("TOKENS") {
        let [address, symbol, decimals, bps] = t.as_slice() else {
            return Err(format!("TOKENS entry {t:?}: want address:symbol:decimals:bps").into());
        };
        let address: Address = address.parse()?;
        assets.push(Asset::new(
            address,
            symbol.clone(),
            decimals.parse()?,
            bps.parse()?,
        ));
        decoders = decoders.with(address, Contract::Token { asset: address });
    }
    for f in list("FEEDS") {
        let [feed, asset, decimals] = f.as_slice() else {
            return Err(format!("FEEDS entry {f:?}: want aggregator:asset:decimals").into());
        };
        let contract = Contract::Feed {
            asset: asset.parse()?,
            decimals: decimals.parse()?,
        };
        decoders = decoders.with(feed.parse()?, contract);
    }
    if assets.is_empty() {
        return Err("set TOKENS (see the example's docs)".into());
    }
    Ok((assets, decoders))
}

/// The store: Postgres when built with `postgres` and `DATABASE_URL` is set, else memory.
async fn store(registry: &AssetRegistry) -> Result<Arc<dyn BalanceStore>, Error> {
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let pg = Arc::new(
            reorg_collateral::store::PostgresStore::connect_in_schema(
                &url,
                "reorg_collateral_watch",
            )
            .await?,
        );
        pg.register_assets(registry).await?;
        eprintln!("store: postgres (schema reorg_collateral_watch)");
        return Ok(pg);
    }
    let _ = registry;
    let memory = Arc::new(reorg_collateral::store::MemoryStore::new());
    eprintln!("store: memory");
    Ok(memory)
}

/// An alloy provider for `url`, the alloy way: a client with alloy's retry layer (our
/// classification of node errors, 8 retries 250 ms apart) under a `ProviderBuilder`.
fn provider(url: &str) -> Result<DynProvider, Error> {
    let client = ClientBuilder::default()
        .layer(TransportConfig::default().retry_layer())
        .http(url.parse()?);
    Ok(ProviderBuilder::new().connect_client(client).erased())
}

/// The highest block fetched and the source's head, shared with the progress printer.
#[derive(Debug, Default)]
struct Progress {
    fetched: AtomicU64,
    head: AtomicU64,
}

/// A `BlockSource` decorator that records progress; everything else goes to the inner
/// source.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn BlockSource>,
    progress: Arc<Progress>,
}

#[async_trait]
impl BlockSource for Counted {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        let head = self.inner.head().await?;
        self.progress.head.store(head, Ordering::Relaxed);
        Ok(head)
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.inner.block_by_number(n).await
    }
    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.inner.block_by_hash(h).await
    }
    // Required by the trait (no default): the store's claim records the chain id, so a
    // decorator that dropped it would claim the store for no chain.
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        self.inner.chain_id().await
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.inner.finalized().await
    }
    // Forwarded too: opening balances are read through the inner source.
    fn chain_balances(&self) -> Option<&dyn reorg_collateral::traits::ChainBalances> {
        self.inner.chain_balances()
    }
    async fn blocks(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<Block>, SourceError> {
        let blocks = self.inner.blocks(from, to).await?;
        self.progress.fetched.fetch_max(to, Ordering::Relaxed);
        Ok(blocks)
    }
}

/// Prints `catch-up: #n of #h, y behind, x blocks/s` every 2 s while the applied head moved
/// by more than one block since the previous line, and the watcher's own progress whenever
/// it cannot advance (`stalled`: a strict asset's fault, a failing node) or an asset is
/// quarantined: the applied head, never the fetched one (fetched blocks a refused step
/// cannot apply are not progress).
fn print_progress(progress: Arc<Progress>, applied: tokio::sync::watch::Receiver<SyncProgress>) {
    tokio::spawn(async move {
        let mut last = (Instant::now(), applied.borrow().head.unwrap_or(0));
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let p = *applied.borrow();
            let head = p.head.unwrap_or(0);
            let (t0, h0) = last;
            if p.stalled || p.quarantined.0 > 0 {
                eprintln!("progress: {p}");
            } else if head > h0 + 1 {
                let rate = (head - h0) as f64 / t0.elapsed().as_secs_f64();
                let fetched = progress.fetched.load(Ordering::Relaxed);
                eprintln!("catch-up: {p}, {rate:.0} blocks/s (fetched #{fetched})");
            }
            last = (Instant::now(), head);
        }
    });
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let urls = std::env::var("RPC_URLS").map_err(
        |_| "set RPC_URLS, e.g. http://127.0.0.1:8545 (several, comma-separated, for fallbacks)",
    )?;
    let urls: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let (assets, decoders) = parse_config()?;
    let registry = AssetRegistry::new(assets)?;
    let mut providers = Vec::new();
    for url in &urls {
        providers.push(provider(url)?);
    }
    let mut providers = providers.into_iter();
    let primary = providers.next().ok_or("RPC_URLS is empty")?;
    // Finality and fetch sizes start from the chain's defaults (docs/chain-defaults.md);
    // FINALITY and CONFIRMATIONS override them.
    let defaults = ChainDefaults::for_chain(primary.get_chain_id().await?);
    let mut rpc = RpcConfig::new(decoders);
    defaults.apply(&mut rpc);
    if let Ok(finality) = std::env::var("FINALITY") {
        rpc.finality = match finality.as_str() {
            "safe" => FinalityTag::Safe,
            "depth" | "none" => FinalityTag::Depth,
            _ => FinalityTag::Finalized,
        };
    }
    let rpc_source = Arc::new(RpcBlockSource::with_fallbacks(primary, providers, rpc));
    // Feed decimals and dev-chain finality are checked here, before anything is stored.
    if let Err(e) = rpc_source.check().await {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let progress = Arc::new(Progress::default());
    let source = Arc::new(Counted {
        inner: rpc_source.clone(),
        progress: progress.clone(),
    });
    let head = source.head().await?;

    let mut config = WatcherConfig::new(EngineConfig::new(
        registry.clone(),
        env_or("CONFIRMATIONS", &defaults.confirmations.to_string()).parse()?,
    ));
    // Balances are folded from Transfer events. From the tokens' deployment every balance
    // is in them (openings off); from a later START_BLOCK, lazy openings read each new
    // holder's balance at the parent of the block that first touches it.
    let store = store(&registry).await?;
    let resumed = store.head().await?;
    let start = match std::env::var("START_BLOCK") {
        Ok(n) => n.parse()?,
        // A store with a checkpoint resumes from it; the start block is not used.
        Err(_) if resumed.is_some() => 0,
        Err(_) => {
            let mut first = head;
            for asset in registry.iter() {
                // Bisects `eth_getCode`: needs historical state (else set START_BLOCK).
                let deployed = rpc_source.deployment_block(asset.id).await?;
                first =
                    first.min(deployed.ok_or(format!("{}: no contract at the head", asset.id))?);
            }
            eprintln!("start: #{first}, the first tracked token's deployment block");
            config.openings = Openings::Off;
            first
        }
    };
    config.start_block = start;
    let mut watcher = Watcher::new(config, source, store).await?;
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let cache =
            reorg_collateral::cache::RedisCollateralCache::connect(&url, "rc_watch").await?;
        watcher = watcher.with_cache(Arc::new(cache));
        eprintln!("cache: redis (prefix rc_watch)");
    }
    let mut changes = watcher.subscribe();
    print_progress(progress, watcher.progress());
    let poll = Duration::from_millis(env_or("POLL_MS", "1000").parse()?);
    eprintln!(
        "following {} endpoint(s), primary {} (head #{head}), from block {start} or the store's checkpoint; Ctrl-C to stop",
        urls.len(),
        urls[0]
    );
    loop {
        match watcher.sync().await {
            Ok(step) if step.applied > 0 || step.reverted > 0 => eprintln!(
                "head #{}: +{} blocks, -{} reverted, {} events, finalized {:?}",
                watcher.window().head().map_or(0, |h| h.number),
                step.applied,
                step.reverted,
                step.events,
                step.finalized
            ),
            Ok(_) => {}
            // Transport errors were already retried by the retry layer and the other
            // endpoints; try again next poll.
            Err(e) => eprintln!("sync failed: {e}"),
        }
        while let Some(n) = changes.try_recv() {
            match n {
                Notification::Update(u) => {
                    for c in &u.users {
                        println!(
                            "block #{} {}: confirmed {} pending {}",
                            u.block.number,
                            c.user,
                            c.confirmed.round_dp(2),
                            c.pending.round_dp(2)
                        );
                    }
                }
                Notification::Quarantined { chain, quarantine } => {
                    eprintln!("{chain}: {quarantine}")
                }
                Notification::Resumed {
                    chain,
                    asset,
                    block,
                } => {
                    eprintln!("{chain}: asset {asset} resumed at #{}", block.number)
                }
                Notification::Lagged {
                    chain,
                    missed,
                    resync_from,
                } => {
                    eprintln!("{chain}: missed {missed} updates; resync from {resync_from:?}")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
