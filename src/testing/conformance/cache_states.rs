//! Property scenarios of the cache's states: every value served as current — from the
//! cache ([`ReadSource::Cache`](crate::reader::ReadSource::Cache)) or from the store — is the collateral of exactly the state
//! it names (head and finalized height), while finality moves with or without new heads,
//! while a second task reads during syncs, and across restarts that do not wait for the
//! refresh. The store is wrapped in a [`RecordingStore`], so each read is compared with
//! the replay oracle at the states committed while it ran.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Backends, Rng};
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::reader::{CachedRead, CollateralReader};
use crate::testing::harness::Harness;
use crate::testing::oracle::{Expected, replay};
use crate::testing::recorder::{Recorded, RecordingStore};
use crate::traits::BlockSource;
use crate::watcher::Watcher;

/// One read to check: who was read, the answer, and the indices of the recorded states
/// committed before it started and when it ended.
#[derive(Clone, Debug)]
struct Seen {
    user: UserId,
    read: CachedRead,
    from: usize,
    to: usize,
    path: &'static str,
}

/// The backends with their store recorded (and a memory cache when none is under test).
fn recorded(backends: Backends) -> (Backends, Arc<RecordingStore>) {
    let (backends, _) = backends.with_some_cache();
    let recorder = Arc::new(RecordingStore::new(backends.store.clone()));
    let mut backends = backends;
    backends.store = recorder.clone();
    (backends, recorder)
}

/// Reads every user through a reader of the unwrapped store, which does not yield on
/// memory backends: on a single-threaded runtime the refresher cannot run in between, so
/// these reads see the cache as the sync left it.
async fn read_before_refresh(
    h: &Harness,
    reader: &CollateralReader,
    recorder: &RecordingStore,
    seen: &mut Vec<Seen>,
) {
    for user in h.users.clone() {
        let from = recorder.seq();
        let read = reader.cached(user).await.expect("reader read");
        seen.push(Seen {
            user,
            read,
            from,
            to: recorder.seq(),
            path: "CollateralReader::cached (right after the sync)",
        });
    }
}

/// Reads every user through the watcher and through its reader, recording the states
/// each read may have seen.
async fn read_all(h: &Harness, recorder: &RecordingStore, seen: &mut Vec<Seen>) {
    for user in h.users.clone() {
        let from = recorder.seq();
        let read = h
            .watcher
            .cached_collateral(user)
            .await
            .expect("watcher read");
        seen.push(Seen {
            user,
            read,
            from,
            to: recorder.seq(),
            path: "Watcher::cached_collateral",
        });
        let from = recorder.seq();
        let read = h.watcher.reader().cached(user).await.expect("reader read");
        seen.push(Seen {
            user,
            read,
            from,
            to: recorder.seq(),
            path: "CollateralReader::cached",
        });
    }
}

/// The entry the oracle implies for `user` at `state`.
fn expected(h: &Harness, state: &Recorded, oracle: &Expected, user: UserId) -> CachedCollateral {
    let Some(head) = state.chain.last().map(|b| b.header) else {
        return CachedCollateral::new(
            &crate::model::Collateral {
                user,
                block: 0,
                confirmed: Default::default(),
                pending: Default::default(),
            },
            None,
        );
    };
    let c = crate::testing::harness::expected_collateral(
        h.watcher.valuator(),
        oracle,
        user,
        &h.assets,
        &head,
    );
    CachedCollateral::new(&c, state.state.as_ref())
}

/// Asserts that every read answered the collateral of the state it names, one of the
/// states committed while it ran.
fn check(h: &Harness, recorder: &RecordingStore, seen: &[Seen]) {
    let mut oracles: HashMap<usize, Expected> = HashMap::new();
    for s in seen {
        // A state is committed before it is recorded: a read that ended in between saw
        // the next one (at most one, the writer records before its next commit).
        let states = recorder.recorded(s.from..=(s.to + 1).min(recorder.seq()));
        let mut wanted = Vec::new();
        let mut ok = false;
        for (i, state) in states.iter().enumerate() {
            let oracle = oracles
                .entry(s.from + i)
                .or_insert_with(|| replay(&state.chain, state.finalized));
            let want = expected(h, state, oracle, s.user);
            let labelled = label(&s.read) == state.state;
            let same = (
                s.read.entry.confirmed,
                s.read.entry.pending,
                &s.read.entry.assets,
            ) == (want.confirmed, want.pending, &want.assets);
            ok |= labelled && same;
            wanted.push((state.state, want.confirmed, want.pending));
        }
        assert!(
            ok,
            "{} of {} answered {:?} (label {:?}) with confirmed {} pending {} (entry block {}, \
             finalized {:?}); the states committed meanwhile imply {wanted:?}",
            s.path,
            s.user,
            s.read.source,
            label(&s.read),
            s.read.entry.confirmed,
            s.read.entry.pending,
            s.read.entry.block,
            s.read.entry.finalized,
        );
    }
}

/// The state a read names.
fn label(read: &CachedRead) -> Option<StateRef> {
    read.state
}

/// Random steps: new blocks, reorgs, the `finalized` tag moving (with or without new
/// blocks), [`Watcher::finalize_to`], each synced without waiting for the refresh.
async fn random_step(h: &mut Harness, rng: &mut Rng) {
    match rng.below(10) {
        0..=3 => {
            for _ in 0..rng.below(3) + 1 {
                let spec = rng.block();
                h.mine_spec(&spec);
            }
        }
        4..=5 => {
            let head = h.chain.head_number();
            let floor = h.expected_finalized().unwrap_or(h.chain.start());
            let depth = (rng.below(3) + 1).min(head - floor);
            h.chain.reorg(depth);
            for _ in 0..rng.below(3) {
                let spec = rng.block();
                h.mine_spec(&spec);
            }
        }
        6..=8 => {
            // The tag alone: no new block.
            let head = h.chain.head_number();
            let fin = h.expected_finalized().unwrap_or(h.chain.start());
            let tag = (fin + rng.below(3)).min(head);
            h.chain.set_finalized(Some(tag));
            h.set_tag(tag);
        }
        _ => {
            let head = h.chain.head_number();
            let fin = h.expected_finalized().unwrap_or(h.chain.start());
            let to = (fin + rng.below(2) + 1).min(head);
            h.watcher.finalize_to(to).await.expect("finalize_to");
            h.chain.set_finalized(Some(to));
            h.set_tag(to);
            return;
        }
    }
    h.sync_unflushed().await;
}

/// A second task reads every user through a [`CollateralReader`](crate::reader::CollateralReader)
/// while the watcher syncs (and the watcher's own reads run between syncs): each answer,
/// from the cache or from the store, is the collateral of the state it names.
pub async fn cached_reads_during_syncs(backends: Backends, seed: u64, steps: usize) {
    let (backends, recorder) = recorded(backends);
    let mut h = Harness::new(backends, 3).await;
    let mut rng = Rng(seed.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = tokio::spawn({
        let (reader, users, recorder) = (
            h.watcher.reader().clone(),
            h.users.clone(),
            recorder.clone(),
        );
        let (stop, seen) = (stop.clone(), seen.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                for user in &users {
                    let from = recorder.seq();
                    let read = reader.cached(*user).await.expect("concurrent read");
                    let to = recorder.seq();
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Seen {
                            user: *user,
                            read,
                            from,
                            to,
                            path: "CollateralReader::cached (second task)",
                        });
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut mine = Vec::new();
    for i in 0..steps {
        random_step(&mut h, &mut rng).await;
        read_all(&h, &recorder, &mut mine).await;
        if i % 5 == 4 {
            h.watcher.flush().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("reader task");
    h.sync().await;
    h.check().await;
    read_all(&h, &recorder, &mut mine).await;
    let mut seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    assert!(!seen.is_empty(), "the second task read");
    seen.extend(mine);
    check(&h, &recorder, &seen);
    assert!(h.watcher.verify_cache().await.expect("verify").is_empty());
}

/// Finality moves by the `finalized` tag alone (no new head, the chain confirming at a
/// depth never reached) or by [`Watcher::finalize_to`]: each read right after the sync,
/// before the refresh ran, is the collateral of the state it names; so is each after it.
pub async fn finality_by_tag_alone(backends: Backends, seed: u64, steps: usize) {
    let (backends, cache) = backends.with_some_cache();
    let inner = backends.store.clone();
    let (backends, recorder) = recorded(backends);
    let mut h = Harness::new(backends, 1_000).await;
    let fast = CollateralReader::new(inner, h.watcher.valuator().clone()).with_cache(cache);
    let mut rng = Rng(seed.max(1));
    for _ in 0..8 {
        let spec = rng.block();
        h.mine_spec(&spec);
    }
    h.sync().await;
    let mut seen = Vec::new();
    for _ in 0..steps {
        let head = h.chain.head_number();
        let fin = h.expected_finalized().unwrap_or(h.chain.start());
        match rng.below(4) {
            0 => {
                let spec = rng.block();
                h.mine_spec(&spec);
                h.sync_unflushed().await;
            }
            1 => {
                let to = (fin + 1).min(head);
                h.watcher.finalize_to(to).await.expect("finalize_to");
                h.chain.set_finalized(Some(to));
                h.set_tag(to);
            }
            _ => {
                let tag = (fin + rng.below(2) + 1).min(head);
                h.chain.set_finalized(Some(tag));
                h.set_tag(tag);
                let report = h.sync_unflushed().await;
                assert_eq!(report.applied, 0, "the tag moved alone");
            }
        }
        read_before_refresh(&h, &fast, &recorder, &mut seen).await;
        read_all(&h, &recorder, &mut seen).await;
        h.watcher.flush().await;
        read_all(&h, &recorder, &mut seen).await;
    }
    h.sync().await;
    h.check().await;
    check(&h, &recorder, &seen);
}

/// Restarts that do not wait for the refresh (the old refresher may still be writing), and
/// writers that commit without a cache and stop (their refresh never runs), between steps
/// that move finality: every read is the collateral of the state it names, and once the
/// refresh caught up the cache equals the store.
pub async fn restarts_with_unflushed_refreshes(backends: Backends, seed: u64, steps: usize) {
    let (backends, recorder) = recorded(backends);
    let mut h = Harness::new(backends, 3).await;
    let mut rng = Rng(seed.max(1));
    let mut seen = Vec::new();
    for _ in 0..steps {
        match rng.below(4) {
            0 => {
                // A writer without a cache commits blocks and finality, then stops.
                let source: Arc<dyn BlockSource> = h.chain.clone();
                let mut blind = Watcher::new(h.config.clone(), source, h.backends.store.clone())
                    .await
                    .expect("watcher");
                for _ in 0..rng.below(3) + 1 {
                    let spec = rng.block();
                    h.mine_spec(&spec);
                }
                let fin = h.expected_finalized().unwrap_or(h.chain.start());
                let tag = (fin + rng.below(3)).min(h.chain.head_number());
                h.chain.set_finalized(Some(tag));
                h.set_tag(tag);
                blind.sync().await.expect("blind sync");
                h.note_head();
                drop(blind);
                h.restart().await;
                h.sync_unflushed().await;
            }
            1 => {
                random_step(&mut h, &mut rng).await;
                h.restart().await;
                h.sync_unflushed().await;
            }
            _ => random_step(&mut h, &mut rng).await,
        }
        read_all(&h, &recorder, &mut seen).await;
    }
    h.sync().await;
    h.check().await;
    read_all(&h, &recorder, &mut seen).await;
    check(&h, &recorder, &seen);
    assert!(h.watcher.verify_cache().await.expect("verify").is_empty());
}
