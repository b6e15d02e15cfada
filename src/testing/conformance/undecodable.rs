//! Conformance scenarios of undecodable logs (#19 item 1): a log of a tracked asset that
//! its decoder rejects quarantines that asset at that log (block-scoped: a reorg lifts it,
//! finalization confirms it, a resume ends it) and every other asset goes on; a strict
//! asset refuses the block with a typed error instead.

use std::sync::Arc;

use super::{Backends, deposit, mine, priced};
use crate::error::{EngineError, Error};
use crate::model::{AssetRegistry, FaultPolicy, FaultReason, PriceStatus};
use crate::testing::harness::{Harness, default_assets};
use crate::testing::strategy::{BlockSpec, EventSpec, Op};

fn undecodable(asset: u8) -> EventSpec {
    EventSpec::Undecodable { asset }
}

/// Asset 0's contract emits a log its decoder rejects: asset 0 is quarantined at that log
/// with the decoder's message, assets 1 and 2 go on in the same block and after it. Checked
/// against the oracle after every step, through a reorg of the faulting block (lifted), the
/// fault again, a restart (kept), finalization (confirmed) and a resume.
pub async fn undecodable_log_quarantines_one_asset(backends: Backends) {
    let mut h = Harness::new(backends, 3).await;
    h.run(&[
        priced(0, 100_000_000),
        priced(1, 200_000_000_000),
        mine(vec![deposit(0, 0, 1_000), deposit(1, 1, 70)]),
    ])
    .await;
    let faulting = h.chain.head_number() + 1;
    h.run(&[mine(vec![
        deposit(1, 0, 5),
        undecodable(0),
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
    assert_eq!(
        (q.asset, q.block.number, q.log.log_index),
        (asset, faulting, 1)
    );
    assert!(
        matches!(&q.reason, FaultReason::Undecodable { detail } if detail.starts_with("Transfer:")),
        "{q}"
    );
    let c = h.watcher.collateral(h.users[1]).await.expect("collateral");
    let a = c.pending.assets.iter().find(|a| a.asset == asset).unwrap();
    assert!(matches!(a.status, PriceStatus::Quarantined { block, .. } if block.number == faulting));
    assert_eq!(a.value, None);
    // Asset 1 went on.
    h.run(&[mine(vec![deposit(2, 1, 3), deposit(2, 0, 3)])])
        .await;

    // A reorg of the faulting block lifts it; the fault comes back with the log.
    let depth = h.chain.head_number() - faulting + 1;
    h.run(&[Op::Reorg {
        depth,
        blocks: vec![Default::default()],
    }])
    .await;
    assert!(h.backends.store.asset_states().await.unwrap().is_empty());
    h.run(&[
        mine(vec![undecodable(0)]),
        Op::Restart,
        mine(vec![deposit(3, 0, 4)]),
        Op::FinalizeTag { lag: 0 },
        mine(vec![]),
    ])
    .await;
    let states = h.backends.store.asset_states().await.unwrap();
    assert!(states[0].confirmed.is_quarantined(), "{states:?}");
    // Resumed: asset 0 folds again from the next block.
    h.run(&[Op::Resume { asset: 0 }, mine(vec![deposit(0, 0, 7)])])
        .await;
    assert!(
        !h.backends.store.asset_states().await.unwrap()[0]
            .pending
            .is_quarantined()
    );
}

/// A strict asset's undecodable log refuses the block with
/// [`EngineError::Undecodable`]: nothing is written, every sync fails the same way.
pub async fn strict_undecodable_stalls(backends: Backends) {
    let mut h = Harness::with_config(backends, 3, 5, |c| {
        let mut assets = default_assets();
        assets[0] = assets[0].clone().with_policy(FaultPolicy::Strict);
        c.engine.assets = Arc::new(AssetRegistry::new(assets).expect("valid"));
    })
    .await;
    h.run(&[mine(vec![deposit(0, 0, 10), deposit(0, 1, 10)])])
        .await;
    let head = h.chain.head_number();
    h.mine_spec(&BlockSpec {
        events: vec![deposit(0, 1, 1), undecodable(0)],
        prices: vec![],
        rates: vec![],
    });
    let asset = h.assets[0].id;
    for _ in 0..2 {
        let err = h.watcher.sync().await.unwrap_err();
        assert!(
            matches!(&err, Error::Engine(EngineError::Undecodable(f)) if f.asset == asset && f.block.number == head + 1),
            "{err}"
        );
        assert_eq!(h.watcher.window().head().map(|b| b.number), Some(head));
        assert!(h.watcher.progress().borrow().stalled);
    }
    assert!(h.backends.store.asset_states().await.unwrap().is_empty());
}
