//! The refresher's place among others: its session with the cache (a random token, see
//! [Losses](super#losses)), and its turn to write a cache that a refresher of a dropped
//! watcher in this process may still be writing.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::traits::CollateralCache;

/// A random session token: a fresh hasher's keys are random per instance.
pub(super) fn new_session() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Per cache (by address), the turn its refreshers take: one at a time, so that a
/// refresher of a dropped watcher finishes its last write before the next one writes.
static TURNS: LazyLock<Mutex<HashMap<usize, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// Waits for the turn to write `cache`.
pub(super) async fn turn(cache: &Arc<dyn CollateralCache>) -> OwnedMutexGuard<()> {
    let key = Arc::as_ptr(cache).cast::<()>() as usize;
    let lock = {
        let mut turns = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        turns.retain(|_, w| w.strong_count() > 0);
        match turns.get(&key).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                turns.insert(key, Arc::downgrade(&lock));
                lock
            }
        }
    };
    lock.lock_owned().await
}
