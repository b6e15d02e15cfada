//! In-memory engine benchmarks (issue: ≥ 1,000,000 balance events/s; reorg cost ∝ rolled-back
//! blocks, not state size).
//!
//! `cargo bench --bench engine`

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BalanceEvent, Block, BlockHeader, LogId,
};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const TOKEN: Address = Address::repeat_byte(0xA1);
const EVENTS_PER_BLOCK: usize = 200;

fn user(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(b)
}

/// xorshift64 for reproducible user picks.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn config(confirmations: u64) -> WatcherConfig {
    let assets = AssetRegistry::new([Asset::new(TOKEN, "TKN", 18, 8_000)]).expect("asset");
    let mut c = WatcherConfig::new(EngineConfig::new(assets, confirmations));
    c.start_block = 1;
    c
}

/// A chain whose second block funds `users` users, then `blocks` blocks of transfers.
fn chain(users: u64, blocks: usize, seed: u64) -> (Arc<SimulatedChain>, Vec<Block>) {
    let chain = Arc::new(SimulatedChain::new(1));
    chain.mine(|b| {
        for i in 0..users {
            b.set_balance(TOKEN, user(i), U256::from(1_000_000_000u64));
        }
    });
    let mut x = seed;
    let mut out = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        out.push(chain.mine(|b| {
            for _ in 0..EVENTS_PER_BLOCK {
                let (from, to) = (next(&mut x) % users, next(&mut x) % users);
                b.transfer(
                    TOKEN,
                    user(from),
                    user(to),
                    U256::from(next(&mut x) % 1_000),
                );
            }
        }));
    }
    (chain, out)
}

async fn funded(chain: &Arc<SimulatedChain>, confirmations: u64) -> Watcher {
    let store = Arc::new(MemoryStore::new());
    let mut w = Watcher::new(config(confirmations), chain.clone(), store.clone())
        .await
        .expect("watcher");
    for b in chain.canonical().into_iter().take(2) {
        w.ingest(b).await.expect("funding block");
    }
    w
}

/// Blocks of `EVENTS_PER_BLOCK` transfers among `users` funded users, built directly
/// (no keccak per log) so generating them costs little next to ingesting them.
struct Generator {
    users: u64,
    parent: BlockHeader,
    x: u64,
}

impl Generator {
    fn next_block(&mut self) -> Block {
        let number = self.parent.number + 1;
        let header = BlockHeader {
            number,
            hash: B256::from(U256::from(number) << 64 | U256::from(0xB10Cu64)),
            parent_hash: self.parent.hash,
            timestamp: self.parent.timestamp + 12,
        };
        self.parent = header;
        let users = self.users;
        let x = &mut self.x;
        let events = (0..EVENTS_PER_BLOCK as u64)
            .map(|i| BalanceEvent {
                part: 0,
                log: LogId {
                    tx_hash: B256::from(U256::from(number) << 32 | U256::from(i)),
                    log_index: i,
                },
                asset: TOKEN,
                change: BalanceChange::Transfer {
                    from: user(next(x) % users),
                    to: user(next(x) % users),
                    amount: U256::from(next(x) % 1_000),
                },
            })
            .collect();
        Block {
            header,
            events,
            prices: Vec::new(),
            rates: Vec::new(),
        }
    }
}

/// Steady-state ingest: one long-lived watcher (12 confirmations, so every block also
/// finalizes an older one) over 100,000 funded users; each sample ingests freshly
/// generated blocks of 200 transfers.
fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let users = 100_000;
    let (chain, _) = chain(users, 0, 7);
    let mut w = rt.block_on(funded(&chain, 12));
    let mut generator = Generator {
        users,
        parent: *w.window().head().expect("head"),
        x: 7,
    };
    let blocks_per_iter = 10u64;
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(
        blocks_per_iter * EVENTS_PER_BLOCK as u64,
    ));
    group.bench_function("100k_users_200_events_per_block", |b| {
        b.iter_custom(|iters| {
            let blocks: Vec<Block> = (0..iters * blocks_per_iter)
                .map(|_| generator.next_block())
                .collect();
            rt.block_on(async {
                let start = Instant::now();
                for block in blocks {
                    w.ingest(block).await.expect("ingest");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// Alternates between two forks of `depth` blocks on top of a state of `users` balances:
/// every ingest is a reorg that rolls back `depth` blocks and applies `depth` new ones.
fn reorg(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("reorg");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for users in [10_000u64, 100_000, 1_000_000] {
        for depth in [1usize, 4, 16] {
            let (chain, fork_b) = chain(users, depth, 1);
            chain.reorg(depth as u64);
            let mut x = 99;
            let fork_a: Vec<Block> = (0..depth)
                .map(|_| {
                    chain.mine(|b| {
                        for _ in 0..EVENTS_PER_BLOCK {
                            let (from, to) = (next(&mut x) % users, next(&mut x) % users);
                            b.transfer(
                                TOKEN,
                                user(from),
                                user(to),
                                U256::from(next(&mut x) % 1_000),
                            );
                        }
                    })
                })
                .collect();
            let mut w = rt.block_on(funded(&chain, 64));
            rt.block_on(w.ingest_segment(fork_b.clone()))
                .expect("fork b");
            group.bench_function(
                BenchmarkId::new(format!("{users}_balances"), format!("depth_{depth}")),
                |b| {
                    b.iter(|| {
                        // Criterion calls this closure more than once: derive the fork from the head.
                        let on_a = w.window().head().map(|h| h.hash)
                            == fork_a.last().map(|b| b.header.hash);
                        let fork = if on_a { &fork_b } else { &fork_a };
                        let report = rt.block_on(w.ingest_segment(fork.clone())).expect("reorg");
                        assert_eq!(report.reverted, depth);
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, ingest, reorg);
criterion_main!(benches);
