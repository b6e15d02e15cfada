//! Conformance scenarios of quarantine (#19 item 1): one asset's unappliable log never
//! stalls the rest; the quarantine is block-scoped (a reorg lifts it, finalization confirms
//! it, a restart keeps it) and visible in reads; a resume ends it; a strict asset halts.

use std::sync::Arc;

use super::{Backends, deposit, mine, priced};
use crate::error::{EngineError, Error};
use crate::model::{AssetRegistry, FaultPolicy, PriceStatus};
use crate::testing::harness::{Harness, default_assets};
use crate::testing::strategy::{EventSpec, Op};

fn overdraw(user: u8, asset: u8) -> EventSpec {
    EventSpec::Overdraw {
        user,
        asset,
        extra: 1,
    }
}

/// Asset 0 underflows at one block; assets 1 and 2 go on. Checked against the oracle
/// after every step (balances, prices, log, asset states, collateral, cache), through a
/// reorg of the faulting block (lifted), the fault again, a restart (kept), finalization
/// (confirmed), a resume (lifted from the next block) and a second fault.
pub async fn quarantine_one_asset(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    h.run(&[
        priced(0, 100_000_000),
        priced(1, 200_000_000_000),
        priced(2, 3_000_000_000_000),
        mine(vec![
            deposit(0, 0, 1_000),
            deposit(0, 1, 500),
            deposit(1, 2, 70),
        ]),
    ])
    .await;
    let faulting = h.chain.head_number() + 1;
    h.run(&[mine(vec![
        deposit(1, 0, 5),
        overdraw(0, 0),
        deposit(0, 0, 1),
        deposit(0, 1, 9),
    ])])
    .await;
    let asset = h.assets[0].id;
    let states = h.backends.store.asset_states().await.expect("asset states");
    assert_eq!(states.len(), 1, "{states:?}");
    let q = states[0]
        .pending
        .quarantine()
        .expect("quarantined at the head");
    assert_eq!((q.asset, q.block.number), (asset, faulting));
    assert!(!states[0].confirmed.is_quarantined());
    let c = h.watcher.collateral(h.users[0]).await.expect("collateral");
    let a = c.pending.assets.iter().find(|a| a.asset == asset).unwrap();
    assert!(matches!(a.status, PriceStatus::Quarantined { block, .. } if block.number == faulting));
    assert_eq!(a.value, None);
    assert!(!c.pending.is_complete());
    assert_eq!(c.pending.quarantined().collect::<Vec<_>>(), vec![asset]);
    assert!(c.confirmed.quarantined().next().is_none());
    // Asset 1 went on in the same block and after it.
    h.run(&[mine(vec![deposit(2, 1, 3), deposit(2, 0, 3)])])
        .await;
    let progress = *h.watcher.progress().borrow();
    assert_eq!(progress.quarantined, (1, Some((asset, faulting))));
    assert!(
        progress
            .to_string()
            .contains(&format!("asset {asset} quarantined at #{faulting}"))
    );

    // A reorg of the faulting block lifts it; mining the fault again brings it back.
    let depth = h.chain.head_number() - faulting + 1;
    h.run(&[Op::Reorg {
        depth,
        blocks: vec![Default::default()],
    }])
    .await;
    assert!(h.backends.store.asset_states().await.unwrap().is_empty());
    assert_eq!(h.watcher.progress().borrow().quarantined, (0, None));
    h.run(&[
        mine(vec![overdraw(1, 0)]),
        Op::Restart,
        mine(vec![deposit(3, 1, 4)]),
    ])
    .await;
    assert_eq!(h.watcher.progress().borrow().quarantined.0, 1);
    // Finalized: confirmed; a restart keeps it.
    h.run(&[
        Op::FinalizeTag { lag: 0 },
        Op::Restart,
        mine(vec![deposit(0, 0, 2)]),
    ])
    .await;
    let states = h.backends.store.asset_states().await.unwrap();
    assert!(states[0].confirmed.is_quarantined(), "{states:?}");
    // Resume: the next block carries it; from then on asset 0 folds again.
    h.run(&[Op::Resume { asset: 0 }, mine(vec![deposit(0, 0, 7)])])
        .await;
    assert!(
        !h.backends.store.asset_states().await.unwrap()[0]
            .pending
            .is_quarantined()
    );
    h.run(&[Op::FinalizeTag { lag: 0 }, mine(vec![overdraw(4, 2)])])
        .await;
    let states = h.backends.store.asset_states().await.unwrap();
    assert_eq!(
        states.iter().map(|v| v.asset).collect::<Vec<_>>(),
        vec![h.assets[2].id]
    );
}

/// A strict asset's fault refuses the block: nothing is written, every sync fails the same
/// way, and the progress says stalled (never "0 behind").
pub async fn strict_asset_stalls(backends: Backends) {
    let mut h = Harness::with_config(backends, 3, 5, |c| {
        let mut assets = default_assets();
        assets[0] = assets[0].clone().with_policy(FaultPolicy::Strict);
        c.engine.assets = Arc::new(AssetRegistry::new(assets).expect("valid"));
    })
    .await;
    h.run(&[mine(vec![deposit(0, 0, 10), deposit(0, 1, 10)])])
        .await;
    let head = h.chain.head_number();
    h.mine_spec(&crate::testing::strategy::BlockSpec {
        events: vec![deposit(0, 1, 1), overdraw(0, 0)],
        prices: vec![],
        rates: vec![],
    });
    for _ in 0..2 {
        let err = h.watcher.sync().await.unwrap_err();
        assert!(
            matches!(err, Error::Engine(EngineError::BalanceUnderflow(_))),
            "{err}"
        );
        assert_eq!(h.watcher.window().head().map(|b| b.number), Some(head));
        let progress = *h.watcher.progress().borrow();
        assert!(progress.stalled);
        assert_eq!(progress.behind(), Some(1));
        assert!(progress.to_string().contains("stalled"), "{progress}");
    }
    assert!(h.backends.store.asset_states().await.unwrap().is_empty());
}

/// A deterministic pseudo-random scenario like `random_walk` whose blocks overdraw some
/// assets (quarantines) and whose steps resume them: the backends equal the oracle after
/// every step.
pub async fn random_walk_with_faults(backends: Backends, seed: u64, steps: usize) {
    let mut h = Harness::new(backends, 4).await;
    let mut rng = Walk(seed.max(1));
    for _ in 0..steps {
        let op = match rng.below(12) {
            0..=5 => Op::Mine(rng.block()),
            6..=7 => Op::Reorg {
                depth: rng.below(4) + 1,
                blocks: (0..rng.below(3) + 1).map(|_| rng.block()).collect(),
            },
            8 => Op::FinalizeTag { lag: rng.below(4) },
            9..=10 => Op::Resume {
                asset: rng.below(3) as u8,
            },
            _ => Op::Restart,
        };
        h.step(&op).await;
    }
}

/// The walk's xorshift64* generator.
struct Walk(u64);

impl Walk {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn block(&mut self) -> crate::testing::strategy::BlockSpec {
        let events = (0..self.below(5))
            .map(|_| {
                let (user, asset) = (self.below(5) as u8, self.below(3) as u8);
                match self.below(11) {
                    0 => overdraw(user, asset),
                    10 => EventSpec::Undecodable { asset },
                    1..=3 => EventSpec::Transfer {
                        from: user,
                        to: self.below(5) as u8,
                        asset,
                        percent: self.below(101) as u8,
                    },
                    4 => EventSpec::Withdraw {
                        user,
                        asset,
                        percent: self.below(101) as u8,
                    },
                    _ => deposit(user, asset, self.below(1_000_000) + 1),
                }
            })
            .collect();
        crate::testing::strategy::BlockSpec {
            events,
            prices: vec![],
            rates: vec![],
        }
    }
}
