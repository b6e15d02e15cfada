//! The conformance suite: behaviour every [`BalanceStore`](crate::BalanceStore) +
//! [`PriceFeed`](crate::PriceFeed) (and optionally
//! [`CollateralCache`](crate::CollateralCache)) must have, checked against the replay oracle.
//!
//! Call [`run_all`] with a factory that returns fresh backends (an empty schema, a new key
//! prefix) for each scenario, or call the scenarios one by one from your own tests:
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use reorg_collateral::store::MemoryStore;
//! use reorg_collateral::testing::{conformance, Backends};
//!
//! conformance::run_all(|| async {
//!     let store = Arc::new(MemoryStore::new());
//!     Backends::new(store)
//! })
//! .await;
//! # }
//! ```
//!
//! The multi-chain scenarios (`chains`, `chain_values`: independent reorgs, a head moving
//! back, finality and restarts on one chain, the same token on two chains, a price from
//! another chain, writer claims per chain) take the backends of 2 or 3 chains: fresh
//! backends from the factory per chain, or, for backends that open their chains' stores
//! themselves ([`Backends::with_chains`], Postgres: a schema per chain of the chains
//! catalog), the chains the first backends open ([`open_chains`]).

use std::future::Future;

use alloy_primitives::U256;

pub use super::backends::Backends;
use super::harness::{Harness, START};
use super::strategy::{BlockSpec, EventSpec, Op, PriceSpec, RateSpec};
pub use edges::{claim_writer_identity, log_of_a_block_that_comes_back, one_unrepresentable_user};

mod cache_states;
mod chain_values;
mod chains;
mod edges;
mod history;
mod load;
mod quarantine;
mod realtime;
mod rebasing;
mod reconcile;
mod shares_ratio;
mod undecodable;

pub use cache_states::{
    cached_reads_during_syncs, finality_by_tag_alone, restarts_with_unflushed_refreshes,
};
pub use chain_values::{
    price_from_another_chain, same_token_on_two_chains, writer_claims_per_chain,
};
pub use chains::{
    finality_and_restart_on_one_chain_leave_the_others, head_back_on_one_chain_leaves_the_others,
    reorg_on_one_chain_leaves_the_others,
};
pub use history::{collateral_at_block_matches_replay, explain_equals_collateral};
pub use load::watermark_advances_under_sustained_load;
pub use quarantine::{quarantine_one_asset, random_walk_with_faults, strict_asset_stalls};
pub use realtime::{
    cache_behind_after_a_killed_writer, finality_advances_without_writes,
    head_moves_back_without_a_new_block, restart_refreshes_what_was_finalized_since_the_watermark,
};
pub use rebasing::{rebasing_through_reorgs, rebasing_walk};
pub use reconcile::reconcile_fault_from_the_chain;
pub use shares_ratio::{shares_ratio_through_reorgs, shares_ratio_walk};
pub use undecodable::{strict_undecodable_stalls, undecodable_log_quarantines_one_asset};

fn deposit(user: u8, asset: u8, amount: u64) -> EventSpec {
    EventSpec::Deposit {
        user,
        asset,
        amount,
    }
}

fn mine(events: Vec<EventSpec>) -> Op {
    Op::Mine(BlockSpec {
        events,
        prices: vec![],
        rates: vec![],
    })
}

fn priced(asset: u8, answer: i64) -> Op {
    Op::Mine(BlockSpec {
        events: vec![],
        prices: vec![PriceSpec {
            asset,
            answer,
            old_round: false,
        }],
        rates: vec![],
    })
}

/// Blocks extend the head, become confirmed at depth, and the log follows.
pub async fn extend_and_confirm(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    h.run(&[priced(0, 100_000_000), mine(vec![deposit(0, 0, 1_000)])])
        .await;
    for i in 0..6 {
        h.step(&mine(vec![
            deposit(i % 3, 0, 10),
            EventSpec::Transfer {
                from: 0,
                to: 1,
                asset: 0,
                percent: 10,
            },
        ]))
        .await;
    }
    assert_eq!(h.expected_finalized(), Some(START + 8 - 3));
}

/// The original design's flaw: two pending blocks touch one balance, only the newer one is
/// reorged out. The older block's value must survive.
pub async fn reorg_newer_of_two_pending(backends: Backends) {
    let mut h = Harness::new(backends, 10).await;
    h.run(&[
        mine(vec![deposit(0, 0, 1_000)]),
        mine(vec![deposit(0, 0, 50)]),
        Op::Reorg {
            depth: 1,
            blocks: vec![BlockSpec::default()],
        },
    ])
    .await;
    let key = crate::model::BalanceKey {
        user: h.users[0],
        asset: h.assets[0].id,
    };
    assert_eq!(
        h.backends
            .store
            .balance(key)
            .await
            .expect("balance")
            .pending,
        U256::from(1_000)
    );
}

/// Two pending blocks touch one balance; confirming the older keeps the newer pending.
pub async fn confirm_older_of_two_pending(backends: Backends) {
    let mut h = Harness::new(backends, 10).await;
    h.run(&[
        mine(vec![deposit(0, 0, 1_000)]),
        mine(vec![deposit(0, 0, 50)]),
        Op::FinalizeTag { lag: 1 },
    ])
    .await;
    let key = crate::model::BalanceKey {
        user: h.users[0],
        asset: h.assets[0].id,
    };
    let view = h.backends.store.balance(key).await.expect("balance");
    assert_eq!(
        (view.confirmed, view.pending),
        (U256::from(1_000), U256::from(1_050))
    );
}

/// Reorgs of every depth inside the window over balances touched in consecutive blocks.
pub async fn reorgs_of_every_depth(backends: Backends) {
    let mut h = Harness::new(backends, 6).await;
    for depth in 1..=6u64 {
        for i in 0..6u8 {
            h.step(&mine(vec![
                deposit(i % 2, i % 3, 7 + u64::from(i)),
                EventSpec::Transfer {
                    from: i % 2,
                    to: 2,
                    asset: i % 3,
                    percent: 30,
                },
            ]))
            .await;
        }
        h.step(&Op::Reorg {
            depth,
            blocks: vec![
                BlockSpec {
                    events: vec![deposit(1, 1, 3)],
                    prices: vec![],
                    rates: vec![],
                };
                depth as usize % 3 + 1
            ],
        })
        .await;
    }
}

/// Prices in reorged blocks roll back; invalid answers and old rounds are not used.
pub async fn prices_roll_back_and_reject(backends: Backends) {
    let mut h = Harness::new(backends, 4).await;
    h.run(&[
        mine(vec![deposit(0, 0, 5_000_000), deposit(0, 1, 10u64.pow(18))]),
        priced(0, 100_000_000),
        priced(1, 300_000_000_000),
        priced(0, 99_000_000),
        Op::Reorg {
            depth: 2,
            blocks: vec![BlockSpec::default()],
        },
        priced(1, 0),
        priced(1, -5),
        Op::Mine(BlockSpec {
            events: vec![],
            prices: vec![PriceSpec {
                asset: 0,
                answer: 1,
                old_round: true,
            }],
            rates: vec![],
        }),
    ])
    .await;
}

/// Redelivered blocks are no-ops, gaps are refused, a restart resumes from the checkpoint.
pub async fn idempotent_and_restartable(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    h.run(&[
        mine(vec![deposit(0, 0, 1_000)]),
        Op::Redeliver { back: 0 },
        mine(vec![deposit(1, 0, 1_000)]),
        Op::Redeliver { back: 1 },
        Op::Gap,
        Op::Restart,
        mine(vec![EventSpec::Transfer {
            from: 0,
            to: 1,
            asset: 0,
            percent: 50,
        }]),
        mine(vec![]),
        mine(vec![]),
        mine(vec![]),
        Op::Redeliver { back: 5 },
        Op::Restart,
        Op::Reorg {
            depth: 2,
            blocks: vec![
                BlockSpec::default(),
                BlockSpec::default(),
                BlockSpec::default(),
            ],
        },
    ])
    .await;
}

/// xorshift64: a tiny deterministic generator for [`random_walk`].
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn small(&mut self, n: u64) -> u8 {
        self.below(n) as u8
    }

    fn block(&mut self) -> BlockSpec {
        let events = (0..self.below(5))
            .map(|_| match self.below(4) {
                0 => deposit(self.small(5), self.small(5), self.below(1_000_000) + 1),
                1 => EventSpec::Withdraw {
                    user: self.small(5),
                    asset: self.small(5),
                    percent: self.small(101),
                },
                2 => EventSpec::Transfer {
                    from: self.small(5),
                    to: self.small(5),
                    asset: self.small(5),
                    percent: self.small(101),
                },
                _ => EventSpec::Set {
                    user: self.small(5),
                    asset: self.small(5),
                    amount: self.below(1_000_000),
                },
            })
            .collect();
        let prices = (0..self.below(2))
            .map(|_| PriceSpec {
                asset: self.small(3),
                answer: self.below(1_000_000_000) as i64 - 10_000_000,
                old_round: self.below(10) == 0,
            })
            .collect();
        let rates = (0..self.below(2))
            .map(|_| RateSpec {
                asset: self.small(2),
                rate: match self.below(10) {
                    0 => 0,
                    _ => self.below(2_000_000) + 1,
                },
            })
            .collect();
        BlockSpec {
            events,
            prices,
            rates,
        }
    }
}

/// A deterministic pseudo-random scenario (no proptest needed), `steps` long.
pub async fn random_walk(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 5).await;
    let mut rng = Rng(seed.max(1));
    for _ in 0..steps {
        let op = match rng.below(12) {
            0..=5 => Op::Mine(rng.block()),
            6..=8 => {
                let depth = rng.below(5) + 1;
                let blocks = (0..rng.below(3) + 1).map(|_| rng.block()).collect();
                Op::Reorg { depth, blocks }
            }
            9 => Op::FinalizeTag { lag: rng.below(4) },
            10 => match rng.below(2) {
                0 => Op::Redeliver { back: rng.below(7) },
                _ => Op::HeadBack {
                    depth: rng.below(3) + 1,
                },
            },
            _ => Op::Restart,
        };
        h.step(&op).await;
    }
}

/// A user-supplied cache (an in-memory one when none is under test) keeps every user's
/// collateral equal to the oracle's, and supports put/get/clear and a rebuild from the store.
pub async fn cache_round_trip(backends: Backends) {
    let (backends, cache) = backends.with_some_cache();
    let mut h = Harness::new(backends, 3).await;
    h.run(&[
        priced(0, 100_000_000),
        mine(vec![deposit(0, 0, 2_000_000)]),
        priced(0, 101_000_000),
        Op::Reorg {
            depth: 1,
            blocks: vec![BlockSpec::default()],
        },
        mine(vec![deposit(1, 0, 3_000_000)]),
    ])
    .await;
    let user = h.users[0];
    assert!(cache.get(user).await.expect("get").is_some());
    cache.clear().await.expect("clear");
    assert_eq!(cache.get(user).await.expect("get"), None);
    let rebuilt = h.watcher.rebuild_cache(|_, _| {}).await.expect("rebuild");
    assert_eq!(rebuilt, 2);
    h.check().await;
}

/// One `#[tokio::test]` per conformance scenario, each on fresh backends from an async
/// factory: how a backend's test file runs the suite, without copying a wrapper per
/// scenario. The test crate needs `tokio` (features `macros`, `rt`) as a dev-dependency.
///
/// `random_walks` (seeds) and `steps` size the pseudo-random walks; by default seeds
/// `1..=4` of 60 steps, as [`run_all`] runs them.
///
/// ```no_run
/// use std::sync::Arc;
/// use reorg_collateral::store::MemoryStore;
/// use reorg_collateral::testing::Backends;
///
/// fn backends() -> Backends {
///     let store = Arc::new(MemoryStore::new());
///     Backends::new(store)
/// }
///
/// reorg_collateral::conformance_tests!(async || backends(), random_walks: 1..=8, steps: 80);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($new_backends:expr) => {
        $crate::conformance_tests!($new_backends, random_walks: 1..=4, steps: 60);
    };
    ($new_backends:expr, random_walks: $seeds:expr, steps: $steps:expr) => {
        $crate::conformance_tests!(@each $new_backends;
            extend_and_confirm,
            reorg_newer_of_two_pending,
            confirm_older_of_two_pending,
            reorgs_of_every_depth,
            prices_roll_back_and_reject,
            idempotent_and_restartable,
            cache_round_trip,
            log_of_a_block_that_comes_back,
            claim_writer_identity,
            one_unrepresentable_user,
            head_moves_back_without_a_new_block,
            finality_advances_without_writes,
            cache_behind_after_a_killed_writer,
            restart_refreshes_what_was_finalized_since_the_watermark,
            watermark_advances_under_sustained_load,
            rebasing_through_reorgs,
            shares_ratio_through_reorgs,
            quarantine_one_asset,
            strict_asset_stalls,
            undecodable_log_quarantines_one_asset,
            strict_undecodable_stalls,
            reconcile_fault_from_the_chain,
        );

        #[tokio::test]
        async fn random_walks() {
            for seed in $seeds {
                $crate::testing::conformance::random_walk(($new_backends)().await, seed, $steps)
                    .await;
            }
        }

        $crate::conformance_tests!(@chains $new_backends;
            reorg_on_one_chain_leaves_the_others: 3,
            head_back_on_one_chain_leaves_the_others: 2,
            finality_and_restart_on_one_chain_leave_the_others: 3,
            same_token_on_two_chains: 2,
            price_from_another_chain: 2,
            writer_claims_per_chain: 3,
        );

        $crate::conformance_tests!(@seeded $new_backends; $seeds; $steps;
            cached_reads_during_syncs,
            finality_by_tag_alone,
            restarts_with_unflushed_refreshes,
            rebasing_walk,
            shares_ratio_walk,
            random_walk_with_faults,
            explain_equals_collateral,
            collateral_at_block_matches_replay,
        );
    };
    (@seeded $new_backends:expr; $seeds:expr; $steps:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                for seed in $seeds {
                    $crate::testing::conformance::$scenario(($new_backends)().await, seed, $steps)
                        .await;
                }
            }
        )*
    };
    (@chains $new_backends:expr; $($scenario:ident: $n:expr),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let first = ($new_backends)().await;
                let chains = if first.opens_chains() {
                    $crate::testing::conformance::open_chains(&first, $n).await
                } else {
                    let mut chains = vec![first];
                    while chains.len() < $n {
                        chains.push(($new_backends)().await);
                    }
                    chains
                };
                $crate::testing::conformance::$scenario(chains).await;
            }
        )*
    };
    (@each $new_backends:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                $crate::testing::conformance::$scenario(($new_backends)().await).await;
            }
        )*
    };
}

/// Runs every scenario, each on fresh backends from `new_backends`.
pub async fn run_all<F, Fut>(mut new_backends: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Backends>,
{
    extend_and_confirm(new_backends().await).await;
    reorg_newer_of_two_pending(new_backends().await).await;
    confirm_older_of_two_pending(new_backends().await).await;
    reorgs_of_every_depth(new_backends().await).await;
    prices_roll_back_and_reject(new_backends().await).await;
    idempotent_and_restartable(new_backends().await).await;
    cache_round_trip(new_backends().await).await;
    log_of_a_block_that_comes_back(new_backends().await).await;
    claim_writer_identity(new_backends().await).await;
    one_unrepresentable_user(new_backends().await).await;
    head_moves_back_without_a_new_block(new_backends().await).await;
    finality_advances_without_writes(new_backends().await).await;
    cache_behind_after_a_killed_writer(new_backends().await).await;
    restart_refreshes_what_was_finalized_since_the_watermark(new_backends().await).await;
    watermark_advances_under_sustained_load(new_backends().await).await;
    rebasing_through_reorgs(new_backends().await).await;
    shares_ratio_through_reorgs(new_backends().await).await;
    quarantine_one_asset(new_backends().await).await;
    strict_asset_stalls(new_backends().await).await;
    undecodable_log_quarantines_one_asset(new_backends().await).await;
    strict_undecodable_stalls(new_backends().await).await;
    reorg_on_one_chain_leaves_the_others(chains(&mut new_backends, 3).await).await;
    head_back_on_one_chain_leaves_the_others(chains(&mut new_backends, 2).await).await;
    finality_and_restart_on_one_chain_leave_the_others(chains(&mut new_backends, 3).await).await;
    same_token_on_two_chains(chains(&mut new_backends, 2).await).await;
    price_from_another_chain(chains(&mut new_backends, 2).await).await;
    writer_claims_per_chain(chains(&mut new_backends, 3).await).await;
    reconcile_fault_from_the_chain(new_backends().await).await;
    for seed in 1..=4 {
        random_walk(new_backends().await, seed, 60).await;
        cached_reads_during_syncs(new_backends().await, seed, 40).await;
        finality_by_tag_alone(new_backends().await, seed, 40).await;
        restarts_with_unflushed_refreshes(new_backends().await, seed, 40).await;
        rebasing_walk(new_backends().await, seed, 40).await;
        shares_ratio_walk(new_backends().await, seed, 40).await;
        random_walk_with_faults(new_backends().await, seed, 40).await;
        explain_equals_collateral(new_backends().await, seed, 30).await;
        collateral_at_block_matches_replay(new_backends().await, seed, 30).await;
    }
}

/// The backends of the first `n` chains of
/// [`CHAIN_IDS`](super::multichain::CHAIN_IDS) opened by `first`
/// ([`Backends::with_chains`]: on Postgres, one schema per chain of `first`'s chains
/// catalog), as a multi-chain scenario takes them.
///
/// # Panics
/// If `first` does not open chains, or `n` is above the number of chain ids.
pub async fn open_chains(first: &Backends, n: usize) -> Vec<Backends> {
    let mut chains = Vec::with_capacity(n);
    for id in &super::multichain::CHAIN_IDS[..n] {
        chains.push(
            first
                .open_chain(*id)
                .await
                .expect("backends that open chains"),
        );
    }
    chains
}

/// The backends of a multi-chain scenario of `n` chains: opened by the first backends if
/// they open chains ([`open_chains`]), else fresh backends per chain.
async fn chains<F, Fut>(new_backends: &mut F, n: usize) -> Vec<Backends>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Backends>,
{
    let first = new_backends().await;
    if first.opens_chains() {
        return open_chains(&first, n).await;
    }
    let mut chains = vec![first];
    while chains.len() < n {
        chains.push(new_backends().await);
    }
    chains
}
