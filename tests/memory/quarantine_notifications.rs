//! Subscribers are told when an asset is quarantined (a log that cannot be applied, or one
//! its decoder rejected) and when it is resumed, in order with the updates: after every
//! update of an earlier block, before the updates that revalue its holders.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use reorg_collateral::model::{
    Asset, AssetRegistry, BalanceChange, BlockNumber, DecodeDetail, FaultReason,
};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::watcher::{Notification, Subscription};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const A: Address = Address::repeat_byte(0xA1);
const B: Address = Address::repeat_byte(0xB2);
const USER: Address = Address::repeat_byte(0x01);

/// Every notification ready after the refresh caught up.
async fn drain(watcher: &Watcher, subscription: &mut Subscription) -> Vec<Notification> {
    watcher.flush().await;
    std::iter::from_fn(|| subscription.try_recv()).collect()
}

/// The block a notification is about.
fn block_of(n: &Notification) -> BlockNumber {
    match n {
        Notification::Update(u) => u.block.number,
        Notification::Quarantined { quarantine: q, .. } => q.block.number,
        Notification::Resumed { block, .. } => block.number,
        Notification::Lagged { .. } => panic!("lagged: {n:?}"),
    }
}

#[tokio::test]
async fn quarantines_and_resumes_are_notified_in_order_with_the_updates() {
    let assets =
        AssetRegistry::new([Asset::new(A, "A", 6, 9_000), Asset::new(B, "B", 6, 9_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    config.max_price_age = u64::MAX;
    let chain = Arc::new(SimulatedChain::new(1));
    let store = Arc::new(MemoryStore::new());
    let mut watcher = Watcher::new(config, chain.clone(), store)
        .await
        .expect("watcher");
    let mut subscription = watcher.subscribe();
    chain.mine(|b| {
        b.deposit(A, USER, U256::from(10));
        b.deposit(B, USER, U256::from(10));
    });
    watcher.sync().await.expect("sync");
    let mut got = drain(&watcher, &mut subscription).await;
    // An underflow of A and, in the same block, an undecodable log of B.
    let faulting = chain
        .mine(|b| {
            b.withdraw(A, USER, U256::from(11));
            b.event(
                B,
                BalanceChange::Undecodable {
                    detail: DecodeDetail::new("Transfer: buffer overrun"),
                },
            );
        })
        .header
        .number;
    watcher.sync().await.expect("a quarantine is not a stall");
    got.extend(drain(&watcher, &mut subscription).await);
    assert!(watcher.resume(A).await.expect("resume"));
    let resumed_at = chain.mine(|_| {}).header.number;
    watcher.sync().await.expect("sync");
    got.extend(drain(&watcher, &mut subscription).await);
    let quarantined: Vec<_> = got
        .iter()
        .filter_map(|n| match n {
            Notification::Quarantined { quarantine: q, .. } => Some(q.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(quarantined.len(), 2, "{got:?}");
    assert_eq!(
        quarantined.iter().map(|q| q.asset).collect::<Vec<_>>(),
        vec![A, B]
    );
    assert!(quarantined.iter().all(|q| q.block.number == faulting));
    assert!(matches!(
        quarantined[0].reason,
        FaultReason::Underflow { .. }
    ));
    assert_eq!(
        quarantined[1].reason,
        FaultReason::Undecodable {
            detail: "Transfer: buffer overrun".into()
        }
    );
    let resumed: Vec<_> = got
        .iter()
        .filter_map(|n| match n {
            Notification::Resumed { asset, block, .. } => Some((*asset, block.number)),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, vec![(A, resumed_at)]);
    // In order: the blocks never go back, a quarantine comes before the update of its
    // block (which flags the user), a resume before the update of its block.
    let blocks: Vec<_> = got.iter().map(block_of).collect();
    assert!(blocks.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
    let at = |pred: &dyn Fn(&Notification) -> bool| got.iter().position(pred).unwrap();
    let first_q = at(&|n| matches!(n, Notification::Quarantined { .. }));
    let flagged = at(&|n| matches!(n, Notification::Update(u) if u.block.number == faulting));
    assert!(first_q < flagged, "{got:?}");
    let Notification::Update(u) = &got[flagged] else {
        unreachable!()
    };
    assert!(u.users.iter().any(|t| t.user == USER && t.quarantined));
    let resume = at(&|n| matches!(n, Notification::Resumed { .. }));
    assert!(
        got[resume + 1..]
            .iter()
            .all(|n| matches!(n, Notification::Update(u) if u.block.number == resumed_at)),
        "{got:?}"
    );
}
