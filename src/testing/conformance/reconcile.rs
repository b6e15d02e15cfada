//! Conformance scenario of [`FaultPolicy::Reconcile`] (#19 item 1 and 3): a token whose
//! decoder misses a mint faults, and is repaired from the chain in the faulting block;
//! through a reorg of that block, a node that cannot answer (the asset stays quarantined
//! and is read again at the next block), finalization and a restart, every balance equals
//! the chain's and the store equals the replay oracle of the blocks the watcher wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, B256, U256};
use async_trait::async_trait;

use super::Backends;
use crate::engine::EngineConfig;
use crate::error::SourceError;
use crate::model::{
    Asset, AssetRegistry, BalanceKey, Block, BlockNumber, BlockRef, FaultPolicy, UserId,
};
use crate::source::{BlockBuilder, SimulatedChain};
use crate::testing::{RecordingStore, replay};
use crate::traits::{BalanceStore, BlockSource, ChainBalances};
use crate::watcher::{Openings, Watcher, WatcherConfig};

const TOKEN: Address = Address::repeat_byte(0xC1);
const OTHER: Address = Address::repeat_byte(0xC2);

fn user(i: u8) -> UserId {
    Address::repeat_byte(i)
}

/// Two simulated chains mined in lockstep (so their hashes are equal): `seen` holds what
/// the decoder delivers, `truth` also the mints it misses; `balanceOf` answers from the
/// replay of `truth`, and fails while `down`.
#[derive(Debug)]
struct Lockstep {
    seen: SimulatedChain,
    truth: SimulatedChain,
    down: AtomicBool,
}

impl Lockstep {
    fn new(start: BlockNumber) -> Self {
        Self {
            seen: SimulatedChain::new(start),
            truth: SimulatedChain::new(start),
            down: AtomicBool::new(false),
        }
    }

    /// Mines a block with `events` on both chains and `hidden` on the truth only (before
    /// them).
    fn mine(&self, events: impl Fn(&mut BlockBuilder), hidden: impl FnOnce(&mut BlockBuilder)) {
        let a = self.seen.mine(&events);
        let b = self.truth.mine(|b| {
            hidden(b);
            events(b);
        });
        assert_eq!(a.header.hash, b.header.hash, "lockstep");
    }

    fn reorg(&self, depth: u64) {
        self.seen.reorg(depth);
        self.truth.reorg(depth);
    }

    fn set_finalized(&self, n: Option<BlockNumber>) {
        self.seen.set_finalized(n);
        self.truth.set_finalized(n);
    }

    /// The chain's balance of `key` after block `at`.
    fn truth_at(&self, key: &BalanceKey, at: BlockNumber) -> U256 {
        let upto: Vec<Block> = self
            .truth
            .canonical()
            .into_iter()
            .take_while(|b| b.header.number <= at)
            .collect();
        replay(&upto, None).balance(key).pending
    }
}

#[async_trait]
impl BlockSource for Lockstep {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.seen.head().await
    }
    async fn block_by_number(&self, n: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.seen.block_by_number(n).await
    }
    async fn block_by_hash(&self, h: B256) -> Result<Option<Block>, SourceError> {
        self.seen.block_by_hash(h).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        self.seen.chain_id().await
    }
    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        self.seen.finalized().await
    }
    fn chain_balances(&self) -> Option<&dyn ChainBalances> {
        Some(self)
    }
}

#[async_trait]
impl ChainBalances for Lockstep {
    async fn balances_of(
        &self,
        keys: &[BalanceKey],
        at: BlockRef,
    ) -> Result<Vec<U256>, SourceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SourceError::Transport {
                operation: "balanceOf".into(),
                source: "node down (test)".into(),
            });
        }
        let canonical = self.truth.canonical();
        if !canonical.iter().any(|b| b.id() == at) {
            return Err(SourceError::Transport {
                operation: "balanceOf".into(),
                source: format!("{at} is not canonical").into(),
            });
        }
        Ok(keys.iter().map(|k| self.truth_at(k, at.number)).collect())
    }
}

fn config() -> WatcherConfig {
    let assets = AssetRegistry::new([
        Asset::new(TOKEN, "TKN", 0, 10_000).with_policy(FaultPolicy::Reconcile),
        Asset::new(OTHER, "OTH", 0, 10_000),
    ])
    .expect("assets");
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    // The repair alone, not the openings, must find the missed mint.
    config.openings = Openings::Off;
    config.max_price_age = u64::MAX;
    config
}

/// The store equals the oracle's replay of the blocks the watcher wrote, and (`truth`) every
/// balance of users 1..=6 equals the chain's at the head (pending) and at the finalized
/// block (confirmed).
async fn check(
    chain: &Lockstep,
    recorder: &RecordingStore,
    store: &dyn BalanceStore,
    step: &str,
    truth: bool,
) {
    let head = chain.seen.head_number();
    let fin = chain.seen.finalized().await.expect("finalized");
    let recorded = recorder.recorded(recorder.seq()..=recorder.seq()).remove(0);
    let oracle = replay(&recorded.chain, recorded.finalized);
    if truth {
        let chain_state = replay(&chain.truth.canonical(), None);
        assert!(
            chain_state.pending_quarantined.is_empty(),
            "{step}: the truth chain itself applies"
        );
    }
    for asset in [TOKEN, OTHER] {
        for i in 1..=6 {
            let key = BalanceKey {
                user: user(i),
                asset,
            };
            let view = store.balance(key).await.expect("balance");
            assert_eq!(view, oracle.balance(&key), "{step}: oracle, user {i}");
            if !truth {
                continue;
            }
            assert_eq!(
                view.pending,
                chain.truth_at(&key, head),
                "{step}: pending of user {i}, asset {asset}"
            );
            if let Some(f) = fin {
                assert_eq!(
                    view.confirmed,
                    chain.truth_at(&key, f),
                    "{step}: confirmed of user {i}, asset {asset}"
                );
            }
        }
    }
    let states = store.asset_states().await.expect("asset states");
    assert_eq!(states, oracle.asset_states(), "{step}: asset states");
}

/// A mint the decoder misses makes a later transfer underflow; the asset of
/// [`FaultPolicy::Reconcile`] is repaired at that block (not quarantined), through a reorg
/// of it; with the node down it stays quarantined (the other asset goes on) until a read
/// succeeds at a later block; finalization and a restart keep every balance the chain's.
pub async fn reconcile_fault_from_the_chain(backends: Backends) {
    let chain = Arc::new(Lockstep::new(0));
    let recorder = Arc::new(RecordingStore::new(backends.store.clone()));
    let store: Arc<dyn BalanceStore> = recorder.clone();
    let source: Arc<dyn BlockSource> = chain.clone();
    let mut watcher = Watcher::new(config(), source.clone(), store.clone())
        .await
        .expect("watcher");
    chain.mine(
        |b| {
            b.deposit(TOKEN, user(1), U256::from(100));
            b.deposit(OTHER, user(2), U256::from(50));
        },
        |_| {},
    );
    chain.mine(
        |_| {},
        |b| {
            b.deposit(TOKEN, user(3), U256::from(40));
        },
    );
    watcher.sync().await.expect("sync");
    check(&chain, &recorder, store.as_ref(), "before the fault", false).await;

    // Block 3: user 3 spends the mint nobody saw; then a transfer the quarantine skips.
    let faulting = chain.seen.head_number() + 1;
    let block3 = |b: &mut BlockBuilder| {
        b.transfer(TOKEN, user(3), user(1), U256::from(30));
        b.transfer(TOKEN, user(1), user(4), U256::from(1));
        b.deposit(OTHER, user(2), U256::from(1));
    };
    chain.mine(block3, |_| {});
    let report = watcher.sync().await.expect("sync");
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.reconciled[0].asset,
            report.reconciled[0].block.number
        ),
        (TOKEN, faulting)
    );
    check(
        &chain,
        &recorder,
        store.as_ref(),
        "repaired at the fault",
        true,
    )
    .await;
    let rows = store.log(faulting..=faulting).await.expect("log");
    assert!(
        rows.iter()
            .rfind(|r| r.key.asset == TOKEN)
            .is_some_and(|r| r.log.is_fault_correction()),
        "the fault corrections end the block: {rows:?}"
    );

    // A reorg of the faulting block takes its corrections with it; the new block faults
    // differently and is repaired again.
    chain.reorg(1);
    chain.mine(
        |b| {
            b.transfer(TOKEN, user(3), user(5), U256::from(25));
        },
        |_| {},
    );
    let report = watcher.sync().await.expect("sync after the reorg");
    assert_eq!(report.reverted, 1);
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    check(&chain, &recorder, store.as_ref(), "after the reorg", true).await;

    // The node cannot answer: the asset stays quarantined, the other asset goes on.
    chain.down.store(true, Ordering::SeqCst);
    let down_at = chain.seen.head_number() + 1;
    chain.mine(
        |b| {
            b.transfer(TOKEN, user(6), user(1), U256::from(7));
            b.deposit(OTHER, user(1), U256::from(9));
        },
        |b| {
            b.deposit(TOKEN, user(6), U256::from(7));
        },
    );
    let report = watcher.sync().await.expect("sync with the node down");
    assert!(report.reconciled.is_empty());
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].block.number, down_at);
    let states = store.asset_states().await.expect("states");
    assert!(
        states
            .iter()
            .any(|s| s.asset == TOKEN && s.pending.is_quarantined())
    );
    let other = store
        .balance(BalanceKey {
            user: user(1),
            asset: OTHER,
        })
        .await
        .expect("balance");
    assert_eq!(other.pending, U256::from(9), "the other asset went on");
    chain.mine(|_| {}, |_| {});
    let report = watcher.sync().await.expect("sync, still down");
    assert!(report.reconciled.is_empty() && report.resumed.is_empty());

    // The node is back: the next block repairs it and ends the quarantine there.
    chain.down.store(false, Ordering::SeqCst);
    chain.mine(
        |b| {
            b.transfer(TOKEN, user(1), user(2), U256::from(3));
        },
        |_| {},
    );
    let report = watcher.sync().await.expect("sync, node back");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    assert_eq!(
        report.resumed.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![TOKEN],
        "the stored quarantine ends: reported as a resume"
    );
    check(
        &chain,
        &recorder,
        store.as_ref(),
        "repaired after the node came back",
        true,
    )
    .await;

    // Finalize everything, restart, go on folding.
    for _ in 0..4 {
        chain.mine(
            |b| {
                b.transfer(TOKEN, user(1), user(4), U256::from(1));
            },
            |_| {},
        );
    }
    chain.set_finalized(Some(chain.seen.head_number()));
    watcher.sync().await.expect("sync to finality");
    check(&chain, &recorder, store.as_ref(), "finalized", true).await;
    drop(watcher);
    let mut watcher = Watcher::new(config(), source, store.clone())
        .await
        .expect("restart");
    chain.mine(
        |b| {
            b.transfer(TOKEN, user(4), user(5), U256::from(2));
        },
        |_| {},
    );
    watcher.sync().await.expect("sync after the restart");
    check(&chain, &recorder, store.as_ref(), "after the restart", true).await;
}
