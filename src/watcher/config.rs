use std::time::Duration;

use super::openings::Openings;
use crate::engine::EngineConfig;
use crate::model::{BalanceKey, BlockNumber};

/// Settings of the [`Watcher`](super::Watcher). The defaults are the fast path: a
/// catch-up batches blocks into large changesets by itself and a block at the head is
/// applied alone, so no setting needs tuning for speed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WatcherConfig {
    /// The state machine's settings (assets, confirmation depth).
    pub engine: EngineConfig,
    /// First block to ingest when the store is empty.
    pub start_block: BlockNumber,
    /// Prices older than this many seconds (against the head's timestamp) are flagged stale.
    pub max_price_age: u64,
    /// Block ranges fetched concurrently during catch-up.
    pub fetch_concurrency: usize,
    /// Most consecutive blocks applied as one changeset (one store transaction). A
    /// changeset takes the blocks already fetched, up to this many and up to
    /// [`max_batch_events`](Self::max_batch_events): many during a catch-up, one at the head.
    pub apply_batch: usize,
    /// Most balance events in one changeset (a block is never split).
    pub max_batch_events: usize,
    /// Capacity of the notification channel, in updates (one per refresh, not per user).
    pub channel_capacity: usize,
    /// The head memo: balances at the head that the watcher wrote itself since its last
    /// reorg, kept in memory (a 40-byte key and a 32-byte balance each, plus hash-table
    /// overhead) so a block extending the head reads only the other keys from the store.
    /// It holds only keys written (so the ceiling costs nothing until that many exist); when
    /// full, it keeps its keys current and leaves new ones to the store. 0 reads every key
    /// from the store.
    pub head_memo: usize,
    /// The refresher's view memo: the balance views of up to this many users, kept equal to
    /// the store by the steps the watcher commits, so a refresh at the head reads nothing
    /// back from the store for them. It holds only users it has refreshed (about 60 bytes
    /// per user and 100 per asset held, so the ceiling costs nothing until that many users
    /// exist). Users beyond it are read from the store each refresh; a reorg or a write of
    /// unknown outcome empties it. 0 reads every refresh from the store.
    pub refresh_memo: usize,
    /// Users valued per refresh batch (one store read and one cache write each): bounds
    /// how long the writer can wait for a refresh read and how large one cache write is.
    pub refresh_chunk: usize,
    /// While a catch-up runs, the cache and the subscribers are refreshed at most this
    /// often (every change is still folded into the next refresh).
    pub catch_up_refresh_interval: Duration,
    /// Opening balances read from the chain for keys the store has no balance for
    /// (default [`Openings::Lazy`]; needs a source with
    /// [`chain_balances`](crate::BlockSource::chain_balances)).
    pub openings: Openings,
    /// Holders whose opening balance is read at the start block (its parent), for a
    /// watcher starting after the token's deployment: balances that no event names
    /// before they move (a constructor supply) still count from the start.
    pub opening_holders: Vec<BalanceKey>,
    /// How often the refresher reads the prices this chain takes from another chain's
    /// store ([`Watcher::with_price_from`](crate::Watcher::with_price_from)); a change
    /// refreshes the holders of the assets priced by it (default 1 s).
    pub remote_price_interval: Duration,
}

impl WatcherConfig {
    /// Defaults: start at block 0, prices stale after an hour, 8 concurrent fetches,
    /// changesets of up to 1,024 blocks and 20,000 events, a memo of up to 2,097,152
    /// balances at the head, a view memo of up to 1,048,576 users, refreshes of 4,096 users,
    /// a refresh at most every second during catch-up, lazy opening balances.
    pub fn new(engine: EngineConfig) -> Self {
        Self {
            engine,
            start_block: 0,
            max_price_age: 3_600,
            fetch_concurrency: 8,
            apply_batch: 1_024,
            max_batch_events: 20_000,
            channel_capacity: 1_024,
            head_memo: 1 << 21,
            refresh_memo: 1 << 20,
            refresh_chunk: 4_096,
            catch_up_refresh_interval: Duration::from_secs(1),
            openings: Openings::Lazy,
            opening_holders: Vec::new(),
            remote_price_interval: Duration::from_secs(1),
        }
    }
}
