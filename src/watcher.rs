//! The watcher: the one writer. It fetches blocks from a [`BlockSource`] in parallel,
//! feeds them to the [`Engine`] strictly in order, applies each resulting [`Changeset`]
//! to the [`BalanceStore`] atomically, then refreshes the [`CollateralCache`] and notifies
//! subscribers. Taking `&mut self` for every write makes "one writer" a compile-time fact.

use std::collections::BTreeSet;
use std::sync::Arc;

use alloy_primitives::U256;
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::engine::{BaseState, Changeset, Engine, EngineConfig, Transition, Window};
use crate::error::{CacheError, Error, SourceError, StoreError};
use crate::head_balances::HeadBalances;
use crate::model::{
    BalanceKey, Block, BlockHeader, BlockNumber, BlockRef, CachedCollateral, Collateral, UserId,
};
use crate::traits::{BalanceStore, BlockSource, CollateralCache, PriceFeed, Touched};
use crate::valuation::Valuator;

/// Most blocks one [`BlockSource::blocks`] call fetches during catch-up.
pub const CATCH_UP_CHUNK: u64 = 500;

/// Settings of the [`Watcher`].
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// The state machine's settings (assets, confirmation depth).
    pub engine: EngineConfig,
    /// First block to ingest when the store is empty.
    pub start_block: BlockNumber,
    /// Prices older than this many seconds (against the head's timestamp) are flagged stale.
    pub max_price_age: u64,
    /// Blocks fetched concurrently during catch-up.
    pub fetch_concurrency: usize,
    /// Consecutive blocks applied as one changeset (one store transaction) during catch-up.
    pub apply_batch: usize,
    /// Whether to finalize up to the source's `finalized` tag when it reports one.
    pub use_finalized_tag: bool,
    /// Capacity of the [`CollateralChanged`] broadcast channel.
    pub channel_capacity: usize,
    /// Balances kept in memory at the head, for keys the watcher itself wrote since its
    /// last reorg (a 40-byte key and a 32-byte balance each, plus hash-table overhead), so
    /// a block extending the head reads only the other keys from the store. When more keys
    /// are written, the memo starts over. 0 reads every key from the store.
    pub head_balance_memo: usize,
}

impl WatcherConfig {
    /// Defaults: start at block 0, prices stale after an hour, 8 concurrent fetches,
    /// one block per changeset, the source's finalized tag honoured, a memo of 262,144
    /// balances at the head.
    pub fn new(engine: EngineConfig) -> Self {
        Self {
            engine,
            start_block: 0,
            max_price_age: 3_600,
            fetch_concurrency: 8,
            apply_batch: 1,
            use_finalized_tag: true,
            channel_capacity: 1_024,
            head_balance_memo: 262_144,
        }
    }
}

/// Emitted for every user whose collateral may have changed with an applied step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollateralChanged {
    /// The user.
    pub user: UserId,
    /// The head after the step.
    pub block: BlockRef,
    /// Confirmed collateral total.
    pub confirmed: Decimal,
    /// Pending collateral total.
    pub pending: Decimal,
}

/// What one ingested block (or segment) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Blocks rolled back by a reorg.
    pub reverted: usize,
    /// Blocks applied.
    pub applied: usize,
    /// Balance events applied.
    pub events: usize,
    /// Oracle updates rejected (non-positive, old round, …).
    pub rejected_prices: usize,
    /// The finalized height after the step.
    pub finalized: Option<BlockNumber>,
    /// Users whose collateral was refreshed.
    pub refreshed_users: usize,
}

impl StepReport {
    fn add(&mut self, other: &StepReport) {
        self.reverted += other.reverted;
        self.applied += other.applied;
        self.events += other.events;
        self.rejected_prices += other.rejected_prices;
        self.refreshed_users += other.refreshed_users;
        self.finalized = other.finalized.or(self.finalized);
    }
}

/// Counters since the watcher started, for export to metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Blocks applied (including replacements after reorgs).
    pub blocks_applied: u64,
    /// Blocks rolled back.
    pub blocks_reverted: u64,
    /// Reorgs handled.
    pub reorgs: u64,
    /// Balance events applied.
    pub events_applied: u64,
    /// Oracle updates rejected.
    pub prices_rejected: u64,
    /// Cache writes that failed (ingestion went on).
    pub cache_errors: u64,
}

/// The single writer that drives the engine. See the [module docs](self).
#[derive(Debug)]
pub struct Watcher {
    engine: Engine,
    config: WatcherConfig,
    source: Arc<dyn BlockSource>,
    store: Arc<dyn BalanceStore>,
    prices: Arc<dyn PriceFeed>,
    cache: Option<Arc<dyn CollateralCache>>,
    /// Users whose latest cache write failed: their cached entry may be outdated, so reads
    /// skip it and the next successful refresh rewrites it.
    stale: BTreeSet<UserId>,
    valuator: Valuator,
    changes: broadcast::Sender<CollateralChanged>,
    stats: WatcherStats,
    /// The highest height the source has reported final (its head minus the confirmation
    /// depth, or its `finalized` tag): blocks at or below it are written as confirmed as
    /// soon as they are applied.
    known_final: Option<BlockNumber>,
    /// Balances at the head that this watcher wrote (see [`HeadBalances`]).
    memo: HeadBalances,
}

impl Watcher {
    /// A watcher resuming from the store's checkpoint.
    pub async fn new(
        config: WatcherConfig,
        source: Arc<dyn BlockSource>,
        store: Arc<dyn BalanceStore>,
        prices: Arc<dyn PriceFeed>,
    ) -> Result<Self, Error> {
        let window = store.window().await?;
        let engine = Engine::new(config.engine.clone(), window);
        let valuator = Valuator::new(config.engine.assets.clone(), config.max_price_age);
        let (changes, _) = broadcast::channel(config.channel_capacity.max(1));
        Ok(Self {
            engine,
            source,
            store,
            prices,
            cache: None,
            stale: BTreeSet::new(),
            valuator,
            changes,
            stats: WatcherStats::default(),
            known_final: None,
            memo: HeadBalances::new(config.head_balance_memo),
            config,
        })
    }

    /// Also keeps `cache` up to date after every step.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Subscribes to [`CollateralChanged`] notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<CollateralChanged> {
        self.changes.subscribe()
    }

    /// The chain position applied so far.
    pub fn window(&self) -> &Window {
        self.engine.window()
    }

    /// Counters since start.
    pub fn stats(&self) -> WatcherStats {
        self.stats
    }

    /// The valuator used for collateral.
    pub fn valuator(&self) -> &Valuator {
        &self.valuator
    }

    /// Catches up with the source: checks the head is still canonical, fetches the missing
    /// heights in parallel, applies them in order, then follows the source's finalized tag.
    ///
    /// Blocks the source already reports final (at least the confirmation depth below its
    /// head, or at or below its `finalized` tag) are written as confirmed in the changeset
    /// that applies them, so a catch-up does not write pending rows only to promote them
    /// a few changesets later.
    pub async fn sync(&mut self) -> Result<StepReport, Error> {
        let mut report = StepReport::default();
        let source_head = self.source.head().await?;
        let tag = if self.config.use_finalized_tag {
            self.source.finalized().await?
        } else {
            None
        };
        let by_depth = source_head.checked_sub(self.config.engine.confirmations);
        self.known_final = self.known_final.max(by_depth).max(tag);
        let next = match self.engine.window().head().copied() {
            None => self.config.start_block,
            Some(head) => {
                // A reorg that does not lengthen the chain shows as a different hash at a height we hold.
                let probe = source_head.min(head.number);
                if let Some(ours) = self.engine.window().at(probe).copied() {
                    let theirs = self.fetch(probe).await?;
                    if theirs.header.hash != ours.hash {
                        report.add(&self.ingest(theirs).await?);
                    }
                }
                self.head_number()
                    .map_or(self.config.start_block, |h| h + 1)
            }
        };
        if next <= source_head {
            report.add(&self.catch_up(next, source_head).await?);
        }
        if let Some(tag) = tag {
            report.add(&self.finalize_to(tag).await?);
        }
        Ok(report)
    }

    /// Fetches `from..=to` in chunks ([`BlockSource::blocks`]) with `fetch_concurrency`
    /// chunks in flight and applies the blocks strictly in order, `apply_batch` linked
    /// blocks per changeset. Chunks hold `ceil(len / fetch_concurrency)` blocks, between 1
    /// and [`CATCH_UP_CHUNK`], so short catch-ups still spread over all fetchers.
    async fn catch_up(&mut self, from: BlockNumber, to: BlockNumber) -> Result<StepReport, Error> {
        let mut report = StepReport::default();
        let source = self.source.clone();
        let concurrency = self.config.fetch_concurrency.max(1);
        let chunk = (to - from + 1)
            .div_ceil(concurrency as u64)
            .clamp(1, CATCH_UP_CHUNK);
        let starts = (from..=to).step_by(usize::try_from(chunk).unwrap_or(usize::MAX));
        let mut chunks = futures::stream::iter(starts)
            .map(move |start| {
                let source = source.clone();
                let end = to.min(start + chunk - 1);
                async move {
                    let blocks = source.blocks(start, end).await?;
                    if blocks.len() as u64 != end - start + 1 {
                        return Err(SourceError::NotFound(format!(
                            "#{start}..=#{end}: got {} blocks",
                            blocks.len()
                        )));
                    }
                    Ok::<_, SourceError>(blocks)
                }
            })
            .buffered(concurrency);
        let mut batch: Vec<Block> = Vec::new();
        while let Some(blocks) = chunks.try_next().await? {
            for block in blocks {
                let links = batch.last().is_none_or(|p| {
                    p.header.number + 1 == block.header.number
                        && p.header.hash == block.header.parent_hash
                });
                if !links || batch.len() >= self.config.apply_batch.max(1) {
                    report.add(&self.ingest_segment(std::mem::take(&mut batch)).await?);
                }
                batch.push(block);
            }
        }
        if !batch.is_empty() {
            report.add(&self.ingest_segment(batch).await?);
        }
        Ok(report)
    }

    async fn fetch(&self, number: BlockNumber) -> Result<Block, Error> {
        Ok(self
            .source
            .block_by_number(number)
            .await?
            .ok_or_else(|| SourceError::NotFound(format!("#{number}")))?)
    }

    fn head_number(&self) -> Option<BlockNumber> {
        self.engine.window().head().map(|h| h.number)
    }

    /// Ingests one delivered block (e.g. from a new-heads subscription).
    pub async fn ingest(&mut self, block: Block) -> Result<StepReport, Error> {
        self.ingest_segment(vec![block]).await
    }

    /// Ingests linked blocks as one step. If the first block's parent is unknown, walks
    /// back through the source by parent hash to the fork point, then applies the reorg.
    /// On error nothing was written.
    pub async fn ingest_segment(&mut self, mut segment: Vec<Block>) -> Result<StepReport, Error> {
        let span = match (segment.first(), segment.last()) {
            (Some(first), Some(last)) => {
                tracing::debug_span!("block", number = last.header.number, hash = %last.header.hash, from = first.header.number)
            }
            _ => return Ok(StepReport::default()),
        };
        async move {
            loop {
                let (transition, rest) = self.engine.plan_owned(segment)?;
                segment = rest;
                match transition {
                    Transition::NeedParent { hash, number } => {
                        tracing::debug!(parent = number, %hash, "walking back to the fork point");
                        let parent =
                            self.source.block_by_hash(hash).await?.ok_or_else(|| {
                                SourceError::NotFound(format!("#{number} ({hash})"))
                            })?;
                        segment.insert(0, parent);
                    }
                    Transition::Noop => return Ok(StepReport::default()),
                    transition => return self.apply(transition).await,
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Finalizes up to `number` (capped at the head), e.g. from the node's `finalized` tag.
    pub async fn finalize_to(&mut self, number: BlockNumber) -> Result<StepReport, Error> {
        match self.engine.finalize(number) {
            Some(changes) => self.write(changes).await,
            None => Ok(StepReport::default()),
        }
    }

    async fn apply(&mut self, transition: Transition) -> Result<StepReport, Error> {
        let keys = transition.keys();
        let assets = transition.price_assets();
        let at = transition.base().unwrap_or_default();
        let balances = if matches!(transition, Transition::Commit { .. }) {
            self.read_balances(&keys, at).await?
        } else {
            self.store.balances_at(&keys, at).await?
        };
        let prices = self.store.prices_at(&assets, at).await?;
        let base = BaseState {
            balances: keys.into_iter().zip(balances).collect(),
            prices: assets
                .into_iter()
                .zip(prices)
                .filter_map(|(a, p)| p.map(|p| (a, p)))
                .collect(),
        };
        let changes = self
            .engine
            .build_with_finality(transition, base, self.known_final)?;
        self.write(changes).await
    }

    /// The balances of `keys` at `at`: from the memo of balances at the head where it has
    /// them, from the store for the rest (one read).
    async fn read_balances(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, Error> {
        let mut known = self.memo.lookup(keys, at);
        let missing: Vec<BalanceKey> = keys
            .iter()
            .zip(&known)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if missing.is_empty() {
            return Ok(known.into_iter().flatten().collect());
        }
        let mut read = self.store.balances_at(&missing, at).await?.into_iter();
        for slot in known.iter_mut().filter(|v| v.is_none()) {
            *slot = read.next();
        }
        known
            .into_iter()
            .map(|v| {
                v.ok_or_else(|| {
                    Error::Store(StoreError::Inconsistent {
                        backend: "watcher",
                        detail: format!(
                            "the store returned fewer balances than the {} keys asked",
                            missing.len()
                        ),
                    })
                })
            })
            .collect()
    }

    /// Writes a changeset, advances the engine, refreshes collateral.
    async fn write(&mut self, changes: Changeset) -> Result<StepReport, Error> {
        let refresh = self.cache.is_some() || self.changes.receiver_count() > 0;
        let mut touched = Touched::default();
        if refresh {
            if let (Some(first), Some(last)) = (changes.revert.first(), changes.revert.last()) {
                merge(
                    &mut touched,
                    self.store.touched(first.number, last.number).await?,
                );
            }
            if let Some(fin) = changes.finalize {
                let from = self.engine.window().finalized_number().map_or(0, |f| f + 1);
                merge(&mut touched, self.store.touched(from, fin.number).await?);
            }
        }
        if let Err(e) = self.store.apply(&changes).await {
            // The write may or may not have landed (a lost acknowledgement): forget the
            // memo rather than trust it.
            self.memo.clear();
            return Err(e.into());
        }
        self.engine.commit(&changes);
        self.memo.record(&changes);

        let rejected: usize = changes.blocks.iter().map(|b| b.rejected_prices.len()).sum();
        if !changes.revert.is_empty() {
            self.stats.reorgs += 1;
            tracing::info!(
                depth = changes.revert.len(),
                from = changes.revert[0].number,
                "reorg"
            );
        }
        self.stats.blocks_reverted += changes.revert.len() as u64;
        self.stats.blocks_applied += changes.blocks.len() as u64;
        self.stats.events_applied += changes.event_count() as u64;
        self.stats.prices_rejected += rejected as u64;
        let mut report = StepReport {
            reverted: changes.revert.len(),
            applied: changes.blocks.len(),
            events: changes.event_count(),
            rejected_prices: rejected,
            finalized: self.engine.window().finalized_number(),
            refreshed_users: 0,
        };
        if refresh {
            touched.users.extend(changes.new_users());
            touched.price_assets.extend(changes.new_price_assets());
            let mut users = touched.users;
            for asset in touched.price_assets {
                users.extend(self.store.holders(asset).await?);
            }
            report.refreshed_users = users.len();
            self.refresh(users).await?;
        }
        Ok(report)
    }

    /// Recomputes the collateral of `users` from the store, writes it to the cache in one
    /// batch and notifies subscribers. A cache failure is logged and counted, not returned;
    /// the users it missed are marked stale and rewritten after the next successful write.
    async fn refresh(&mut self, users: BTreeSet<UserId>) -> Result<(), Error> {
        let Some(head) = self.engine.window().head().copied() else {
            return Ok(());
        };
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let c = self
                .collateral_at(user, head.number, head.timestamp)
                .await?;
            let _ = self.changes.send(CollateralChanged {
                user,
                block: head.id(),
                confirmed: c.confirmed.total,
                pending: c.pending.total,
            });
            entries.push(CachedCollateral::from(&c));
        }
        if let Some(cache) = self.cache.clone() {
            match cache.put(&entries).await {
                Ok(()) => {
                    for e in &entries {
                        self.stale.remove(&e.user);
                    }
                    self.heal_cache(&*cache, head).await?;
                }
                Err(error) => {
                    self.stats.cache_errors += 1;
                    self.stale.extend(entries.iter().map(|e| e.user));
                    tracing::warn!(%error, users = entries.len(), "collateral cache update failed; ingestion continues");
                }
            }
        }
        Ok(())
    }

    /// Rewrites the entries of stale users (whose earlier write failed), 512 per write,
    /// stopping at the first failure.
    async fn heal_cache(
        &mut self,
        cache: &dyn CollateralCache,
        head: BlockHeader,
    ) -> Result<(), Error> {
        let users: Vec<UserId> = self.stale.iter().copied().collect();
        for chunk in users.chunks(512) {
            let mut entries = Vec::with_capacity(chunk.len());
            for user in chunk {
                let c = self
                    .collateral_at(*user, head.number, head.timestamp)
                    .await?;
                entries.push(CachedCollateral::from(&c));
            }
            if let Err(error) = cache.put(&entries).await {
                self.stats.cache_errors += 1;
                tracing::warn!(%error, stale = self.stale.len(), "collateral cache still failing");
                return Ok(());
            }
            for user in chunk {
                self.stale.remove(user);
            }
        }
        Ok(())
    }

    /// How many users' cache entries may be outdated because their latest cache write
    /// failed (they are read from the store until a later write succeeds).
    pub fn stale_cache_entries(&self) -> usize {
        self.stale.len()
    }

    /// A user's collateral, computed from the store (the truth), valued at the head's time.
    /// Cost: O(assets of the user).
    pub async fn collateral(&self, user: UserId) -> Result<Collateral, Error> {
        let (number, now) = self
            .engine
            .window()
            .head()
            .map_or((0, 0), |h| (h.number, h.timestamp));
        self.collateral_at(user, number, now).await
    }

    async fn collateral_at(
        &self,
        user: UserId,
        block: BlockNumber,
        now: u64,
    ) -> Result<Collateral, Error> {
        collateral_from(
            &*self.store,
            &*self.prices,
            &self.valuator,
            user,
            block,
            now,
        )
        .await
    }

    /// A user's collateral from the cache, falling back to the store when the cache misses,
    /// fails, or may be outdated for `user` (see [`stale_cache_entries`](Self::stale_cache_entries)).
    pub async fn cached_collateral(&self, user: UserId) -> Result<CachedCollateral, Error> {
        if let Some(cache) = self.cache.as_ref().filter(|_| !self.stale.contains(&user)) {
            match cache.get(user).await {
                Ok(Some(entry)) => return Ok(entry),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, %user, "collateral cache read failed; reading the store")
                }
            }
        }
        Ok(CachedCollateral::from(&self.collateral(user).await?))
    }

    /// Repopulates the cache from the store for every holder of every tracked asset,
    /// calling `progress(done, total)` as it goes. Returns the number of users written.
    pub async fn rebuild_cache(
        &self,
        progress: impl FnMut(usize, usize) + Send,
    ) -> Result<usize, Error> {
        let Some(cache) = &self.cache else {
            return Ok(0);
        };
        let (block, now) = self
            .engine
            .window()
            .head()
            .map_or((0, 0), |h| (h.number, h.timestamp));
        rebuild_cache_from(
            &*self.store,
            &*self.prices,
            &self.valuator,
            &**cache,
            (block, now),
            progress,
        )
        .await
    }
}

/// Repopulates `cache` from `store` and `prices` for every holder of every asset the
/// valuator tracks, valued at `(block, now)` (the head's number and timestamp), calling
/// `progress(done, total)` after each batch of 512 users. Returns the number of users
/// written. What [`Watcher::rebuild_cache`] does, usable without a watcher (e.g. from an
/// operator's command line).
pub async fn rebuild_cache_from(
    store: &dyn BalanceStore,
    prices: &dyn PriceFeed,
    valuator: &Valuator,
    cache: &dyn CollateralCache,
    (block, now): (BlockNumber, u64),
    mut progress: impl FnMut(usize, usize) + Send,
) -> Result<usize, Error> {
    let mut users = BTreeSet::new();
    for asset in valuator.assets().iter() {
        users.extend(store.holders(asset.id).await?);
    }
    let total = users.len();
    let users: Vec<UserId> = users.into_iter().collect();
    let mut done = 0;
    for chunk in users.chunks(512) {
        let mut entries = Vec::with_capacity(chunk.len());
        for user in chunk {
            let c = collateral_from(store, prices, valuator, *user, block, now).await?;
            entries.push(CachedCollateral::from(&c));
        }
        cache.put(&entries).await?;
        done += chunk.len();
        progress(done, total);
    }
    Ok(total)
}

/// A cache entry that differs from what the store implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMismatch {
    /// The user.
    pub user: UserId,
    /// What the store implies.
    pub expected: CachedCollateral,
    /// What the cache holds (`None`: missing or unreadable).
    pub cached: Option<CachedCollateral>,
    /// Why the cached entry could not be read (e.g. an entry of an older layout), if so.
    pub unreadable: Option<String>,
}

impl Watcher {
    /// Compares the cache with the store for every holder of every tracked asset and returns
    /// the entries that differ in totals or per-asset values (the `block` and `complete`
    /// fields are time-dependent and not compared). Users without collateral may be absent.
    /// An entry the cache cannot decode ([`CacheError::Corrupt`](crate::CacheError::Corrupt))
    /// is a mismatch with [`CacheMismatch::unreadable`] set, not an error; other cache
    /// errors (e.g. the server is down) are returned.
    pub async fn verify_cache(&self) -> Result<Vec<CacheMismatch>, Error> {
        let Some(cache) = &self.cache else {
            return Ok(Vec::new());
        };
        let mut users = BTreeSet::new();
        for asset in self.valuator.assets().iter() {
            users.extend(self.store.holders(asset.id).await?);
        }
        let mut mismatches = Vec::new();
        for user in users {
            let expected = CachedCollateral::from(&self.collateral(user).await?);
            let (cached, unreadable) = match cache.get(user).await {
                Ok(cached) => (cached, None),
                Err(CacheError::Corrupt { detail, .. }) => (None, Some(detail)),
                Err(e) => return Err(e.into()),
            };
            let same = unreadable.is_none()
                && match &cached {
                    None => expected.assets.values().all(|a| {
                        a.confirmed.is_none_or(|v| v.is_zero())
                            && a.pending.is_none_or(|v| v.is_zero())
                    }),
                    Some(c) => {
                        (c.confirmed, c.pending, &c.assets)
                            == (expected.confirmed, expected.pending, &expected.assets)
                    }
                };
            if !same {
                mismatches.push(CacheMismatch {
                    user,
                    expected,
                    cached,
                    unreadable,
                });
            }
        }
        Ok(mismatches)
    }
}

/// A user's collateral from any store and price feed: O(assets of the user).
pub async fn collateral_from(
    store: &dyn BalanceStore,
    prices: &dyn PriceFeed,
    valuator: &Valuator,
    user: UserId,
    block: BlockNumber,
    now: u64,
) -> Result<Collateral, Error> {
    let balances = store.user_balances(user).await?;
    let assets: Vec<_> = balances.iter().map(|(a, _)| *a).collect();
    let views = prices.prices(&assets).await?;
    Ok(valuator.collateral(user, block, now, &balances, &views)?)
}

fn merge(into: &mut Touched, from: Touched) {
    into.users.extend(from.users);
    into.price_assets.extend(from.price_assets);
}
