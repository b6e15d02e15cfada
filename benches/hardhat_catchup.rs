//! Catch-up of a local Hardhat chain into Postgres, the way a user runs it: an alloy
//! provider with alloy's retry layer (as `examples/rpc_watch.rs` builds it),
//! `RpcBlockSource` with `RpcConfig::new`, `WatcherConfig::new`, `PostgresStore` in a fresh
//! schema, one `Watcher::sync` from block 0 to the head. Measured next to a hand-tuned
//! config in the same process against the same node, so the ratio of the two is what
//! carries over: after criterion's samples of each, `HARDHAT_CATCHUP_PAIRS` (default 5)
//! pairs of catch-ups, default and tuned back to back, give the per-pair ratio. A third
//! case is the production configuration: the defaults with a Redis cache and a subscriber
//! attached, timed until the subscriber received the update that completes the head.
//!
//! The chain (built once per process, not timed): a `TestToken` deployed in block 1, then
//! one `transferMany` per block, each moving tokens from the deployer to 20 of 10,000
//! recipients (20 ERC-20 `Transfer` events a block). Each catch-up gets a new schema
//! (migrations not timed), asserts the number of events applied and compares recipients'
//! balances with the token's `balanceOf`, then drops the schema.
//!
//! ```sh
//! cargo bench --bench hardhat_catchup --features rpc,postgres,redis     # 10,000 blocks
//! HARDHAT_CATCHUP_BLOCKS=1000 cargo bench --bench hardhat_catchup --features rpc,postgres,redis
//! ```
//!
//! Needs `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), `REDIS_URL`
//! (default `redis://127.0.0.1:6379`) and Node.js;
//! the node support installs Hardhat from `tests/chain`'s lockfile on first use.

#[path = "../tests/rpc/dev_node.rs"]
mod node;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U160, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_client::ClientBuilder;
use alloy_sol_types::{SolCall, SolValue};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::model::{Asset, AssetRegistry, BalanceKey};
use reorg_collateral::prelude::*;
use reorg_collateral::source::rpc::{FinalityTag, RpcBlockSource, RpcConfig, TransportConfig};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::watcher::Notification;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use sqlx::{AssertSqlSafe, Executor};

use node::{DevNode, ITestToken};

/// ERC-20 transfers per block.
const TRANSFERS_PER_BLOCK: u64 = 20;
/// Distinct recipients, cycled through.
const RECIPIENTS: u64 = 10_000;
/// The first recipient's address, as a number.
const FIRST_RECIPIENT: u64 = 0x0B00_0000;
/// `eth_sendTransaction`s per JSON-RPC batch while building the chain.
const SEND_BATCH: usize = 100;
static SCHEMA: AtomicUsize = AtomicUsize::new(0);

/// The chain the catch-ups read.
struct Chain {
    node: DevNode,
    token: Address,
    head: u64,
    /// Balance events from block 0 to the head (the mint and every transfer).
    events: usize,
}

fn recipient(i: u64) -> Address {
    Address::from(U160::from(FIRST_RECIPIENT + i % RECIPIENTS))
}

async fn build_chain(blocks: u64) -> Chain {
    let node = DevNode::start().await;
    let supply = U256::from(10u64).pow(U256::from(30));
    let token = node.deploy("TestToken", &supply.abi_encode()).await;
    let from = node.accounts[0];
    let calls = (0..blocks).map(|b| {
        ITestToken::transferManyCall {
            first: recipient(b * TRANSFERS_PER_BLOCK),
            count: U256::from(TRANSFERS_PER_BLOCK),
            value: U256::from(1_000_000 + b),
        }
        .abi_encode()
    });
    let t = Instant::now();
    node.send_many(from, token, calls, SEND_BATCH).await;
    let head = node.head().await;
    assert_eq!(
        head,
        blocks + 1,
        "one block per transaction after the deploy"
    );
    eprintln!(
        "chain of {head} blocks ({} transfers) built in {:.1} s",
        blocks * TRANSFERS_PER_BLOCK,
        t.elapsed().as_secs_f64()
    );
    Chain {
        node,
        token,
        head,
        events: 1 + (blocks * TRANSFERS_PER_BLOCK) as usize,
    }
}

/// A configuration under test: what it changes from the defaults.
struct Setup {
    name: &'static str,
    rpc: fn(&mut RpcConfig),
    watcher: fn(&mut WatcherConfig),
    /// A Redis cache and a subscriber attached (timed until both caught up).
    redis: bool,
}

/// The defaults (`SETUPS[0]`), the tuned config (`SETUPS[1]`, the pairs compare these two)
/// and the production configuration.
const SETUPS: [Setup; 3] = [
    Setup {
        name: "default",
        rpc: |_| {},
        watcher: |_| {},
        redis: false,
    },
    // The best found by hand on this chain (fetch concurrency 4 and 16, header batches of
    // 200 and 500, changesets of 64 to 100,000 blocks and 20,000 to 100,000 events were
    // tried): changesets bounded by events alone, twice the default's events, one header
    // batch per 500-block chunk. (`max_log_range` does not bind: chunks are 500 blocks.)
    Setup {
        name: "tuned",
        rpc: |c| {
            c.header_batch = 500;
        },
        watcher: |c| {
            c.apply_batch = 100_000;
            c.max_batch_events = 40_000;
        },
        redis: false,
    },
    Setup {
        name: "default_redis_subscriber",
        rpc: |_| {},
        watcher: |_| {},
        redis: true,
    },
];

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// One catch-up of the whole chain into a fresh schema; returns the time of the sync.
async fn catch_up(chain: &Chain, setup: &Setup) -> Duration {
    let assets = AssetRegistry::new([Asset::new(chain.token, "TST", 18, 8_000)]).expect("assets");
    let schema = format!(
        "bench_hh_catchup_{}_{}",
        std::process::id(),
        SCHEMA.fetch_add(1, Ordering::Relaxed)
    );
    let url = database_url();
    let store = Arc::new(
        PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| panic!("Postgres at {url}: {e}")),
    );
    store.register_assets(&assets).await.expect("assets");

    // The source as examples/rpc_watch.rs builds it.
    let client = ClientBuilder::default()
        .layer(TransportConfig::default().retry_layer())
        .http(chain.node.url.parse().expect("url"));
    let provider = ProviderBuilder::new().connect_client(client).erased();
    let decoders = Decoders::new().with(chain.token, Contract::Token { asset: chain.token });
    let mut rpc = RpcConfig::new(decoders);
    rpc.finality = FinalityTag::Depth;
    (setup.rpc)(&mut rpc);
    let source = Arc::new(RpcBlockSource::new(provider, rpc));
    source.check().await.expect("source check");

    let mut config = WatcherConfig::new(EngineConfig::new(assets, 12));
    (setup.watcher)(&mut config);
    let mut watcher = Watcher::new(config, source, store.clone())
        .await
        .expect("watcher");
    let cache = if setup.redis {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let cache = Arc::new(
            RedisCollateralCache::connect(&url, &schema)
                .await
                .unwrap_or_else(|e| panic!("Redis at {url}: {e}")),
        );
        watcher = watcher.with_cache(cache.clone());
        Some(cache)
    } else {
        None
    };
    // The subscriber: reads every update until the one that completes the head.
    let subscriber = setup.redis.then(|| {
        let mut updates = watcher.subscribe();
        let head = chain.head;
        tokio::spawn(async move {
            while let Some(n) = updates.recv().await {
                if let Notification::Update(u) = n
                    && u.complete_through.is_some_and(|b| b.number == head)
                {
                    return;
                }
            }
            panic!("the watcher went away before the head was refreshed");
        })
    });
    let t = Instant::now();
    let report = watcher.sync().await.expect("sync");
    if let Some(subscriber) = subscriber {
        subscriber.await.expect("subscriber");
    }
    let elapsed = t.elapsed();
    if cache.is_some() {
        assert!(watcher.verify_cache().await.expect("verify").is_empty());
    }
    drop(watcher);
    if let Some(cache) = cache {
        cache.clear().await.expect("clear the cache");
    }

    assert_eq!(report.events, chain.events, "every event applied");
    assert_eq!(
        store
            .window()
            .await
            .expect("window")
            .head()
            .map(|h| h.number),
        Some(chain.head)
    );
    for i in [0, 1, RECIPIENTS / 2, RECIPIENTS - 1] {
        let user = recipient(i);
        let ours = store
            .balance(BalanceKey {
                user,
                asset: chain.token,
            })
            .await
            .expect("balance")
            .pending;
        let theirs = chain.node.balance_at(chain.token, user, chain.head).await;
        assert_eq!(ours, theirs, "balance of {user}");
    }
    store
        .pool()
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .expect("drop schema");
    store.pool().close().await;
    elapsed
}

fn hardhat_catchup(c: &mut Criterion) {
    let blocks: u64 = std::env::var("HARDHAT_CATCHUP_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let chain = rt.block_on(build_chain(blocks));
    let mut group = c.benchmark_group("hardhat_catchup");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(chain.events as u64));
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); SETUPS.len()];
    for (setup, rates) in SETUPS.iter().zip(rates.iter_mut()) {
        group.bench_function(setup.name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = rt.block_on(catch_up(&chain, setup));
                    rates.push(chain.events as f64 / d.as_secs_f64());
                    total += d;
                }
                total
            })
        });
    }
    group.finish();
    for (setup, r) in SETUPS.iter().zip(&rates) {
        if !r.is_empty() {
            let (m, lo, hi) = summary(r.clone());
            println!(
                "{:>7}: median {m:.0} events/s ({lo:.0}-{hi:.0} over {} catch-ups)",
                setup.name,
                r.len()
            );
        }
    }
    paired(&rt, &chain);
}

/// Median, low and high (NaN for none).
fn summary(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (median, xs[0], xs[n - 1])
}

/// The same-run ratio: `HARDHAT_CATCHUP_PAIRS` (default 5) pairs of catch-ups, default
/// and tuned back to back in alternating order, so a change of load on the shared
/// machine hits both members of a pair.
fn paired(rt: &tokio::runtime::Runtime, chain: &Chain) {
    let pairs: usize = std::env::var("HARDHAT_CATCHUP_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut ratios = Vec::new();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for i in 0..pairs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut pair = [0.0; 2];
        for k in order {
            let d = rt.block_on(catch_up(chain, &SETUPS[k]));
            pair[k] = chain.events as f64 / d.as_secs_f64();
            rates[k].push(pair[k]);
        }
        ratios.push(pair[1] / pair[0]);
        println!(
            "pair {i}: default {:.0} events/s, tuned {:.0} events/s, tuned / default {:.2}x",
            pair[0],
            pair[1],
            pair[1] / pair[0]
        );
    }
    if pairs == 0 {
        return;
    }
    let (d, dlo, dhi) = summary(rates[0].clone());
    let (t, tlo, thi) = summary(rates[1].clone());
    let (r, rlo, rhi) = summary(ratios);
    println!(
        "hardhat catch-up of {} blocks, {} events, {pairs} pairs: default median {d:.0} ({dlo:.0}-{dhi:.0}) events/s, tuned median {t:.0} ({tlo:.0}-{thi:.0}) events/s, tuned / default median {r:.2}x ({rlo:.2}-{rhi:.2}x)",
        chain.head, chain.events
    );
}

criterion_group!(benches, hardhat_catchup);
criterion_main!(benches);
