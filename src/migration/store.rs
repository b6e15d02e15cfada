//! The store the live watcher runs on while a backfill is in progress.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgPool, Row};
use tokio::sync::Mutex;

use super::history::fold_sql;
use super::state::{Phase, load_state};
use super::{History, MigrationError};
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, BalanceKey, BalanceView, BlockHeader, BlockNumber, Changeset, Price,
    PriceView, RateView, StateRef, StoreIdentity, UserId, Window,
};
use crate::store::PostgresStore;
use crate::traits::{
    BalanceReader, LogReader, LogRecord, PriceFeed, RateFeed, StoreWriter, Touched,
};

/// How often the migration phase is re-read.
const PHASE_REFRESH: Duration = Duration::from_secs(1);

/// A [`PostgresStore`] whose balance reads fall back to the history for keys the backfill
/// has not merged yet (see the ownership rule in [`crate::migration`]).
///
/// A key with neither a confirmed nor a pending row in `user_current_balances` has not
/// been touched since the high-water mark `H`, so its balance at any height the engine asks
/// for is the history's fold at or below `H`, read with one query for all such keys
/// (through the history's key index). Once the backfill is done the fallback switches off.
/// Writes, the window, prices and the log are the inner store's. `holders(asset)` lists
/// only users with current state: refresh the cache (`rebuild-cache`) after the backfill.
#[derive(Debug)]
pub struct MigratingStore {
    inner: PostgresStore,
    history: History,
    high_water: i64,
    done: AtomicBool,
    checked: Mutex<Instant>,
}

impl MigratingStore {
    /// Wraps `inner`; a backfill of `history` must have been started in its schema.
    pub async fn new(inner: PostgresStore, history: History) -> Result<Self, MigrationError> {
        history.validate()?;
        let state = load_state(inner.pool())
            .await?
            .ok_or(MigrationError::NotStarted)?;
        if state.source != history.describe() {
            return Err(MigrationError::OtherHistory {
                running: state.source,
                asked: history.describe(),
            });
        }
        Ok(Self {
            high_water: i64::try_from(state.high_water).unwrap_or(-1),
            done: AtomicBool::new(state.phase == Phase::Done),
            checked: Mutex::new(Instant::now()),
            inner,
            history,
        })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &PostgresStore {
        &self.inner
    }

    fn pool(&self) -> &PgPool {
        self.inner.pool()
    }

    /// Whether reads still need the fallback (re-reads the phase at most once a second).
    async fn active(&self) -> Result<bool, StoreError> {
        if self.done.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut checked = self.checked.lock().await;
        if checked.elapsed() >= PHASE_REFRESH {
            *checked = Instant::now();
            let done = load_state(self.pool())
                .await
                .map_err(store_error)?
                .is_none_or(|s| s.phase == Phase::Done);
            if done {
                self.done.store(true, Ordering::Release);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The history's fold at or below the high-water mark of each key (absent: zero).
    async fn folded(&self, keys: &[BalanceKey]) -> Result<BTreeMap<BalanceKey, U256>, StoreError> {
        let users: Vec<Vec<u8>> = keys.iter().map(|k| k.user.to_vec()).collect();
        let assets: Vec<Vec<u8>> = keys.iter().map(|k| k.asset.to_vec()).collect();
        let sql = format!(
            "SELECT u, a, net::text AS net FROM ({}) f",
            fold_sql(
                &self.history,
                "n <= $3 AND (u, a) IN (SELECT * FROM UNNEST($1::bytea[], $2::bytea[]))",
                4
            )
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(&users)
            .bind(&assets)
            .bind(self.high_water);
        if let Some(status) = self.history.status_value() {
            q = q.bind(status);
        }
        let rows = q.fetch_all(self.pool()).await.map_err(backend(format!(
            "fold the history of {} keys up to #{}",
            keys.len(),
            self.high_water
        )))?;
        let mut out = BTreeMap::new();
        for r in &rows {
            let key = BalanceKey {
                user: address(&r.try_get::<Vec<u8>, _>("u").map_err(backend("read u"))?)?,
                asset: address(&r.try_get::<Vec<u8>, _>("a").map_err(backend("read a"))?)?,
            };
            let net: String = r.try_get("net").map_err(backend("read net"))?;
            let value = net.parse::<U256>().map_err(|_| StoreError::Inconsistent {
                backend: "postgres",
                detail: format!(
                    "the history folds {}'s {} balance to {net}, outside 0..2^256",
                    key.user, key.asset
                ),
            })?;
            out.insert(key, value);
        }
        Ok(out)
    }

    /// Views with the fallback applied: a key without a confirmed row gets the history's
    /// fold as its confirmed value (and as its pending one when it has no pending row).
    async fn patch_views(
        &self,
        user: UserId,
        asset: Option<AssetId>,
        mut views: Vec<(AssetId, BalanceView)>,
    ) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        if !self.active().await? {
            return Ok(views);
        }
        let rows = sqlx::query(
            "SELECT asset, bool_or(block_status = 1) AS confirmed, bool_or(block_status = 0) AS pending
             FROM user_current_balances WHERE user_address = $1 AND ($2::bytea IS NULL OR asset = $2)
             GROUP BY asset",
        )
        .bind(user.as_slice())
        .bind(asset.map(|a| a.to_vec()))
        .fetch_all(self.pool())
        .await
        .map_err(backend(format!("read the row kinds of {user}")))?;
        let mut has: BTreeMap<AssetId, (bool, bool)> = BTreeMap::new();
        for r in &rows {
            let a = address(
                &r.try_get::<Vec<u8>, _>("asset")
                    .map_err(backend("read asset"))?,
            )?;
            has.insert(
                a,
                (
                    r.try_get("confirmed").map_err(backend("read confirmed"))?,
                    r.try_get("pending").map_err(backend("read pending"))?,
                ),
            );
        }
        let (filter, status_param) = match asset {
            Some(_) => ("n <= $2 AND u = $1 AND a = $3", 4),
            None => ("n <= $2 AND u = $1", 3),
        };
        let sql = format!(
            "SELECT a, net::text AS net FROM ({}) f",
            fold_sql(&self.history, filter, status_param)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(user.as_slice())
            .bind(self.high_water);
        if let Some(a) = asset {
            q = q.bind(a.to_vec());
        }
        if let Some(status) = self.history.status_value() {
            q = q.bind(status);
        }
        let folded = q
            .fetch_all(self.pool())
            .await
            .map_err(backend(format!("fold the history of {user}")))?;
        let mut by_asset: BTreeMap<AssetId, BalanceView> = views.drain(..).collect();
        for r in &folded {
            let a = address(&r.try_get::<Vec<u8>, _>("a").map_err(backend("read a"))?)?;
            let net: String = r.try_get("net").map_err(backend("read net"))?;
            let value = net.parse::<U256>().unwrap_or_default();
            let (confirmed, pending) = has.get(&a).copied().unwrap_or_default();
            if confirmed || (value.is_zero() && !by_asset.contains_key(&a)) {
                continue;
            }
            let view = by_asset.entry(a).or_default();
            view.confirmed = value;
            if !pending {
                view.pending = value;
            }
        }
        Ok(by_asset.into_iter().collect())
    }
}

fn backend(operation: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let operation = operation.into();
    move |source| StoreError::Backend {
        backend: "postgres",
        operation,
        source: Box::new(source),
    }
}

fn store_error(e: MigrationError) -> StoreError {
    match e {
        MigrationError::Store(s) => s,
        other => StoreError::Inconsistent {
            backend: "postgres",
            detail: other.to_string(),
        },
    }
}

fn address(bytes: &[u8]) -> Result<Address, StoreError> {
    Address::try_from(bytes).map_err(|_| StoreError::OutOfRange {
        backend: "postgres",
        column: "address",
        value: format!("{bytes:?}"),
    })
}

#[async_trait]
impl StoreWriter for MigratingStore {
    async fn window(&self) -> Result<Window, StoreError> {
        self.inner.window().await
    }

    async fn head(&self) -> Result<Option<BlockHeader>, StoreError> {
        self.inner.head().await
    }

    async fn head_state(&self) -> Result<Option<(BlockHeader, StateRef)>, StoreError> {
        self.inner.head_state().await
    }

    async fn balances_at(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<U256>, StoreError> {
        let mut values = self.inner.balances_at(keys, at).await?;
        if keys.is_empty() || !self.active().await? {
            return Ok(values);
        }
        // A key with a row at or below `at` (confirmed, or pending) has its exact value in
        // the inner answer; one without was not touched since H up to `at`.
        let need = self.without_confirmed(keys, at).await?;
        if need.is_empty() {
            return Ok(values);
        }
        let folded = self.folded(&need).await?;
        let need: std::collections::BTreeSet<BalanceKey> = need.into_iter().collect();
        for (key, value) in keys.iter().zip(values.iter_mut()) {
            if need.contains(key) {
                *value = folded.get(key).copied().unwrap_or_default();
            }
        }
        Ok(values)
    }

    async fn prices_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<Price>>, StoreError> {
        self.inner.prices_at(assets, at).await
    }

    async fn indexes_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<Option<AssetIndex>>, StoreError> {
        self.inner.indexes_at(assets, at).await
    }

    async fn asset_states_at(
        &self,
        assets: &[AssetId],
        at: BlockNumber,
    ) -> Result<Vec<crate::model::AssetState>, StoreError> {
        self.inner.asset_states_at(assets, at).await
    }

    async fn apply(&self, changes: &Changeset) -> Result<(), StoreError> {
        self.inner.apply(changes).await
    }

    async fn touched(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Touched, StoreError> {
        self.inner.touched(blocks).await
    }

    async fn claim_writer(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        self.inner.claim_writer(identity).await
    }

    async fn release_writer(&self) -> Result<(), StoreError> {
        self.inner.release_writer().await
    }

    async fn resume_requests(&self) -> Result<Vec<crate::model::ResumeRequest>, StoreError> {
        self.inner.resume_requests().await
    }

    async fn remove_resume_request(
        &self,
        request: &crate::model::ResumeRequest,
    ) -> Result<(), StoreError> {
        self.inner.remove_resume_request(request).await
    }
}

#[async_trait]
impl BalanceReader for MigratingStore {
    async fn balance(&self, key: BalanceKey) -> Result<BalanceView, StoreError> {
        let view = self.inner.balance(key).await?;
        let patched = self
            .patch_views(key.user, Some(key.asset), vec![(key.asset, view)])
            .await?;
        Ok(patched
            .into_iter()
            .find(|(a, _)| *a == key.asset)
            .map(|(_, v)| v)
            .unwrap_or_default())
    }

    async fn user_balances(&self, user: UserId) -> Result<Vec<(AssetId, BalanceView)>, StoreError> {
        let views = self.inner.user_balances(user).await?;
        self.patch_views(user, None, views).await
    }

    async fn holders(&self, asset: AssetId) -> Result<Vec<UserId>, StoreError> {
        self.inner.holders(asset).await
    }
}

#[async_trait]
impl LogReader for MigratingStore {
    async fn log(&self, blocks: RangeInclusive<BlockNumber>) -> Result<Vec<LogRecord>, StoreError> {
        self.inner.log(blocks).await
    }

    async fn user_log(
        &self,
        key: BalanceKey,
        side: crate::traits::LogSide,
        limit: usize,
    ) -> Result<crate::traits::UserLog, crate::traits::HistoryError> {
        self.inner.user_log(key, side, limit).await
    }

    async fn history_at(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<crate::traits::HistoryAt, crate::traits::HistoryError> {
        self.inner.history_at(user, block).await
    }

    async fn history_prices(
        &self,
        assets: &[crate::model::AssetId],
        block: BlockNumber,
    ) -> Result<Vec<Option<crate::model::Price>>, crate::traits::HistoryError> {
        self.inner.history_prices(assets, block).await
    }
}

#[async_trait]
impl PriceFeed for MigratingStore {
    async fn price(&self, asset: AssetId) -> Result<PriceView, StoreError> {
        self.inner.price(asset).await
    }

    async fn prices(&self, assets: &[AssetId]) -> Result<Vec<PriceView>, StoreError> {
        self.inner.prices(assets).await
    }
}

#[async_trait]
impl RateFeed for MigratingStore {
    async fn rates(&self, assets: &[AssetId]) -> Result<Vec<RateView>, StoreError> {
        self.inner.rates(assets).await
    }
}

impl MigratingStore {
    /// Keys with no confirmed row and no pending row at or below `at`: the inner store
    /// answered zero for them, and their value at `at` is the history's fold.
    async fn without_confirmed(
        &self,
        keys: &[BalanceKey],
        at: BlockNumber,
    ) -> Result<Vec<BalanceKey>, StoreError> {
        let users: Vec<Vec<u8>> = keys.iter().map(|k| k.user.to_vec()).collect();
        let assets: Vec<Vec<u8>> = keys.iter().map(|k| k.asset.to_vec()).collect();
        let missing: Vec<i64> = sqlx::query_scalar(
            "SELECT k.i FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY AS k(u, a, i)
             WHERE NOT EXISTS (SELECT 1 FROM user_current_balances c
                               WHERE c.user_address = k.u AND c.asset = k.a
                                 AND (c.block_status = 1 OR c.block_number <= $3))",
        )
        .bind(&users)
        .bind(&assets)
        .bind(i64::try_from(at).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(backend("find keys without confirmed state"))?;
        Ok(missing
            .into_iter()
            .filter_map(|i| keys.get(usize::try_from(i - 1).ok()?).copied())
            .collect())
    }
}

#[async_trait]
impl crate::traits::AssetStateReader for MigratingStore {
    async fn asset_states(&self) -> Result<Vec<crate::model::AssetStateView>, StoreError> {
        self.inner.asset_states().await
    }
}
