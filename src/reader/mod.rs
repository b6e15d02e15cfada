//! The read side: [`CollateralReader`] values users from the store (the truth) and reads
//! the cache when it is current. The watcher refreshes the cache through it; API servers
//! of a trading backend, which only read, use it directly.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn reorg_collateral::traits::BalanceStore>,
//! #               cache: std::sync::Arc<dyn reorg_collateral::traits::CollateralCache>,
//! #               valuator: reorg_collateral::valuation::Valuator,
//! #               user: reorg_collateral::model::UserId) -> Result<(), reorg_collateral::Error> {
//! use reorg_collateral::reader::{CollateralReader, ReadSource};
//!
//! let reader = CollateralReader::new(store, valuator).with_cache(cache);
//! let read = reader.cached(user).await?;
//! if let ReadSource::Store(reason) = &read.source {
//!     tracing::debug!(?reason, "served from the store");
//! }
//! println!("{} confirmed, {} pending", read.entry.confirmed, read.entry.pending);
//! # Ok(()) }
//! ```

mod cache_ops;
mod cached;
mod explain;
mod history;
#[cfg(feature = "postgres")]
pub(crate) mod one_statement;
mod remote_prices;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use cache_ops::CacheMismatch;
pub use cached::{CachedRead, FallbackReason, ReadSource};
pub use explain::{AssetExplanation, Explanation, PriceOrigin, PriceUsed, SideExplanation};
pub use history::DEFAULT_EXPLAIN_ROWS;
pub use remote_prices::RemotePrice;

use crate::error::{Error, StoreError, ValuationError};
use crate::model::{
    AssetId, AssetStateView, BalanceView, BlockHeader, BlockNumber, Collateral, PriceView,
    RateView, StateRef, UserId,
};
use crate::traits::{BalanceStore, CollateralCache};
use crate::valuation::Valuator;

/// Reads of [`CollateralReader::collateral_snapshot`] before it gives up on a store that
/// keeps moving.
pub const SNAPSHOT_ATTEMPTS: u32 = 16;

/// The point a valuation is made at: the head block's number (stamped on the result) and
/// its timestamp (against which price ages are measured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ValuationPoint {
    /// The head block the valuation reflects.
    pub block: BlockNumber,
    /// The head block's timestamp, in seconds.
    pub now: u64,
}

impl ValuationPoint {
    /// The valuation point of a head header (`None`: nothing applied, block 0 at time 0).
    pub fn of(head: Option<&BlockHeader>) -> Self {
        head.map_or(Self::default(), |h| Self {
            block: h.number,
            now: h.timestamp,
        })
    }
}

/// Store + price feed + valuator + optional cache: everything a process that only reads
/// collateral needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CollateralReader {
    store: Arc<dyn BalanceStore>,
    valuator: Valuator,
    cache: Option<Arc<dyn CollateralCache>>,
    remote: remote_prices::RemotePrices,
}

impl CollateralReader {
    /// A reader of `store` (balances and the prices it ingested) valued by `valuator`.
    pub fn new(store: Arc<dyn BalanceStore>, valuator: Valuator) -> Self {
        Self {
            store,
            valuator,
            cache: None,
            remote: Default::default(),
        }
    }

    /// Also reads (and, for [`rebuild_cache`](Self::rebuild_cache), writes) `cache`.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The valuator.
    pub fn valuator(&self) -> &Valuator {
        &self.valuator
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Arc<dyn CollateralCache>> {
        self.cache.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BalanceStore> {
        &self.store
    }

    /// Whether a collateral read is one statement: the store, and every store prices come
    /// from ([`with_price_from`](Self::with_price_from)), is a
    /// `PostgresStore` (feature `postgres`; not a decorator of one), all of one
    /// database. Otherwise the reads are separate, checked against the store's state before
    /// and after.
    pub fn reads_in_one_statement(&self) -> bool {
        #[cfg(feature = "postgres")]
        return one_statement::one_database(&self.handles()).is_some();
        #[cfg(not(feature = "postgres"))]
        false
    }

    /// The store's head (its checkpoint's latest block), if any block was applied:
    /// [`StoreWriter::head`](crate::traits::StoreWriter::head), one indexed probe on
    /// Postgres whatever the history.
    pub async fn head(&self) -> Result<Option<BlockHeader>, StoreError> {
        self.store.head().await
    }

    /// A user's collateral from the store, valued at the store's head, from one state of
    /// the store (see [`collateral_snapshot`](Self::collateral_snapshot)).
    /// Cost: O(assets of the user); on Postgres one statement, elsewhere the head state
    /// read before and after four reads.
    pub async fn collateral(&self, user: UserId) -> Result<Collateral, Error> {
        let (state, mut all) = self.collateral_snapshot(&[user]).await?;
        let block = state.map_or(0, |s| s.head.number);
        Ok(all.pop().unwrap_or_else(|| Ok(self.empty(user, block)))?)
    }

    /// The collateral of `users` (in the order asked) read from ONE state of the store,
    /// valued at its head, and that state (`None`: no block applied).
    ///
    /// The store's checkpoint is read before and after the balances and prices: the reads
    /// are kept only if both name the same state (head and finalized height), which,
    /// written by a single writer, is then the state they were read from; otherwise they
    /// are read again, up to [`SNAPSHOT_ATTEMPTS`] times, then [`StoreError::Moving`].
    /// (A store whose chain goes from a state to another and back between the two reads
    /// passes the check; the values of that state are then the same again.)
    ///
    /// With prices from other chains ([`with_price_from`](Self::with_price_from)), each
    /// other store's state is checked the same way, and prices are aged against the latest
    /// head timestamp of this chain and those chains.
    ///
    /// When every store involved is a Postgres store of one database
    /// ([`reads_in_one_statement`](Self::reads_in_one_statement)), all of it (the states
    /// included) is ONE statement, one snapshot of every schema: no check, no retry, one
    /// round trip.
    pub async fn collateral_snapshot(
        &self,
        users: &[UserId],
    ) -> Result<(Option<StateRef>, Vec<Result<Collateral, ValuationError>>), Error> {
        #[cfg(feature = "postgres")]
        if let Some(read) = self.snapshot_in_one_statement(users).await {
            return Ok(read?);
        }
        let mut last = None;
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let before = self.store.head_state().await?;
            let remote_before = self.remote_states().await?;
            let mut at = ValuationPoint::of(before.as_ref().map(|(head, _)| head));
            at.now = remote_before
                .iter()
                .filter_map(|(_, s)| s.map(|(time, _)| time))
                .fold(at.now, u64::max);
            let values = self.collateral_many(users, at).await?;
            let after = self.store.head_state().await?.map(|(_, state)| state);
            let remote_after = self.remote_states().await?;
            if after == before.map(|(_, state)| state) && remote_after == remote_before {
                return Ok((after, values));
            }
            last = after;
            tokio::task::yield_now().await;
        }
        Err(StoreError::Moving {
            attempts: SNAPSHOT_ATTEMPTS,
            last,
        }
        .into())
    }

    /// A user's collateral from the store, valued at `at`.
    pub async fn collateral_at(
        &self,
        user: UserId,
        at: ValuationPoint,
    ) -> Result<Collateral, Error> {
        let mut all = self.collateral_many(&[user], at).await?;
        Ok(all
            .pop()
            .unwrap_or_else(|| Ok(self.empty(user, at.block)))?)
    }

    /// The collateral of many users, in the order asked: one balance read
    /// ([`user_balances_many`](crate::traits::BalanceReader::user_balances_many)) and one
    /// price read for all of them (plus one per other store prices come from, see
    /// [`with_price_from`](Self::with_price_from)), valued in memory. A user whose
    /// valuation fails gets its own error; the others are valued. On Postgres stores of one
    /// database ([`reads_in_one_statement`](Self::reads_in_one_statement)) all of it is one
    /// statement.
    pub async fn collateral_many(
        &self,
        users: &[UserId],
        at: ValuationPoint,
    ) -> Result<Vec<Result<Collateral, ValuationError>>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(feature = "postgres")]
        if let Some(values) = self.many_in_one_statement(users, at).await {
            return values;
        }
        let balances = self.store.user_balances_many(users).await?;
        let assets: Vec<AssetId> = assets_of(balances.iter().map(Vec::as_slice));
        let keys = self.price_keys(&assets);
        let prices = self.read_prices(&keys).await?;
        let states = self.store.asset_states().await?;
        let rates = self.rates_of(&assets).await?;
        Ok(self.value_many(
            users,
            balances.iter().map(Vec::as_slice),
            &prices,
            &rates,
            &states,
            at,
        ))
    }

    /// The price keys ([`AssetRegistry::price_key`](crate::model::AssetRegistry::price_key))
    /// of `assets`, ascending and distinct: the prices their valuation reads.
    pub(crate) fn price_keys(&self, assets: &[AssetId]) -> Vec<AssetId> {
        let registry = self.valuator.assets();
        let keys: BTreeSet<AssetId> = assets.iter().map(|a| registry.price_key(a)).collect();
        keys.into_iter().collect()
    }

    /// The rate views of those of `assets` priced through a vault rate (one read, none when
    /// there is no such asset).
    pub(crate) async fn rates_of(
        &self,
        assets: &[AssetId],
    ) -> Result<HashMap<AssetId, RateView>, StoreError> {
        let registry = self.valuator.assets();
        let derived: Vec<AssetId> = assets
            .iter()
            .filter(|a| registry.is_derived(a))
            .copied()
            .collect();
        if derived.is_empty() {
            return Ok(HashMap::new());
        }
        let views = self.store.rates(&derived).await?;
        Ok(derived.into_iter().zip(views).collect())
    }

    /// Values `users` in memory from their balance views (`held`, in the same order), the
    /// price views of the price keys of every asset they hold, the rate views of those
    /// priced through a vault rate and the quarantined assets (`states`: their values are
    /// left out of the side they are quarantined on).
    pub(crate) fn value_many<'a>(
        &self,
        users: &[UserId],
        held: impl IntoIterator<Item = &'a [(AssetId, BalanceView)]>,
        prices: &HashMap<AssetId, PriceView>,
        rates: &HashMap<AssetId, RateView>,
        states: &[AssetStateView],
        at: ValuationPoint,
    ) -> Vec<Result<Collateral, ValuationError>> {
        let registry = self.valuator.assets();
        let (mut user_prices, mut user_rates) = (Vec::new(), Vec::new());
        users
            .iter()
            .zip(held)
            .map(|(user, held)| {
                user_prices.clear();
                user_prices.extend(held.iter().map(|(a, _)| {
                    prices
                        .get(&registry.price_key(a))
                        .copied()
                        .unwrap_or_default()
                }));
                user_rates.clear();
                user_rates.extend(
                    held.iter()
                        .map(|(a, _)| rates.get(a).copied().unwrap_or_default()),
                );
                self.valuator.collateral_full(
                    *user,
                    at.block,
                    at.now,
                    held,
                    &user_prices,
                    &user_rates,
                    states,
                )
            })
            .collect()
    }

    /// Every user that holds (or held) a tracked asset, ascending.
    pub async fn holders(&self) -> Result<Vec<UserId>, StoreError> {
        let mut users = BTreeSet::new();
        for asset in self.valuator.assets().iter() {
            users.extend(self.store.holders(asset.id).await?);
        }
        Ok(users.into_iter().collect())
    }

    fn empty(&self, user: UserId, block: BlockNumber) -> Collateral {
        Collateral {
            user,
            block,
            confirmed: Default::default(),
            pending: Default::default(),
        }
    }
}

/// The distinct assets of some users' balance views, ascending.
pub(crate) fn assets_of<'a>(
    held: impl IntoIterator<Item = &'a [(AssetId, BalanceView)]>,
) -> Vec<AssetId> {
    held.into_iter()
        .flatten()
        .map(|(a, _)| *a)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
