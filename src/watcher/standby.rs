//! A standby writer: [`Watcher::standby`] waits for the writer claim instead of failing.

use std::sync::Arc;
use std::time::Duration;

use super::{Watcher, WatcherConfig};
use crate::error::{Error, StoreError};
use crate::traits::{BalanceStore, BlockSource};

impl Watcher {
    /// A watcher that waits for the store's writer claim: like [`Watcher::new`], but a
    /// claim refused because another writer holds the store
    /// ([`StoreError::WriterTaken`]) is tried again every `retry` until it succeeds. Run
    /// it in a second process next to the active writer: when that one dies (its session
    /// and lock go at once) or hangs past its lease (see
    /// `PostgresStore::set_writer_lease`),
    /// the standby claims the store, bumping the fencing epoch so the old writer's next
    /// changeset is refused ([`StoreError::WriterFenced`]), and resumes from the store's
    /// checkpoint: nothing is lost (every committed block is in the store) and nothing is
    /// counted twice (a changeset commits once, with the checkpoint). Any other error
    /// (another chain's store, an unreachable database) is returned.
    pub async fn standby(
        config: WatcherConfig,
        source: Arc<dyn BlockSource>,
        store: Arc<dyn BalanceStore>,
        retry: Duration,
    ) -> Result<Self, Error> {
        loop {
            match Self::new(config.clone(), source.clone(), store.clone()).await {
                Err(Error::Store(StoreError::WriterTaken { holder, .. })) => {
                    tracing::debug!(%holder, "standby: the store has a writer; waiting");
                    tokio::time::sleep(retry).await;
                }
                other => return other,
            }
        }
    }
}
