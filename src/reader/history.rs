//! [`CollateralReader::explain`] and [`CollateralReader::collateral_at_block`]: the reads
//! that answer "why is this user's collateral X" and "what was it at block N".

use std::collections::HashMap;

use super::explain::{AssetExplanation, Explanation, PriceOrigin, PriceUsed, SideExplanation};
use super::{CollateralReader, SNAPSHOT_ATTEMPTS, ValuationPoint};
use crate::error::{Error, StoreError, ValuationError};
use crate::model::{
    Asset, AssetId, BalanceKey, BalanceView, BlockNumber, Collateral, Price, PriceView, RateUpdate,
    RateView, UserId, Valuation,
};
use crate::traits::{LogSide, UserLog};
use crate::valuation::shares_to_units;
use alloy_primitives::U256;

/// Log rows [`CollateralReader::explain`] shows per side unless asked otherwise.
pub const DEFAULT_EXPLAIN_ROWS: usize = 10;

impl CollateralReader {
    /// Why `user`'s collateral is what it is: per asset the confirmed and pending balance
    /// with the latest `limit` log rows of each side, the price used (round, block, age,
    /// origin), the factor and the arithmetic with its rounding, and the collateral itself,
    /// all read from one state of the store (checked as
    /// [`collateral_snapshot`](Self::collateral_snapshot) does), so that
    /// `explain(u).collateral == collateral(u)` for that state.
    ///
    /// Cost: the reads of [`collateral`](Self::collateral) plus two
    /// [`user_log`](crate::traits::LogReader::user_log) reads per asset of the user.
    pub async fn explain(&self, user: UserId, limit: usize) -> Result<Explanation, Error> {
        let mut last = None;
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let before = self.store.head_state().await?;
            let remote_before = self.remote_states().await?;
            let mut at = ValuationPoint::of(before.as_ref().map(|(head, _)| head));
            at.now = remote_before
                .iter()
                .filter_map(|(_, s)| s.map(|(time, _)| time))
                .fold(at.now, u64::max);
            let held = self.store.user_balances(user).await?;
            let assets: Vec<AssetId> = held.iter().map(|(a, _)| *a).collect();
            // Each asset's price key (its own feed, its `SameAs` feed or its underlying's),
            // its vault rate if derived, and the quarantines, as `collateral` reads them.
            let registry = self.valuator.assets();
            let keys: Vec<AssetId> = assets.iter().map(|a| registry.price_key(a)).collect();
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let prices = self.read_prices(&distinct).await?;
            let views: Vec<PriceView> = keys
                .iter()
                .map(|k| prices.get(k).copied().unwrap_or_default())
                .collect();
            let rates = self.rates_of(&assets).await?;
            let states = self.store.asset_states().await?;
            let mut logs = Vec::with_capacity(held.len());
            for (asset, _) in &held {
                let key = BalanceKey {
                    user,
                    asset: *asset,
                };
                let confirmed = self.store.user_log(key, LogSide::Confirmed, limit).await?;
                let pending = self.store.user_log(key, LogSide::Canonical, limit).await?;
                logs.push((confirmed, pending));
            }
            let after = self.store.head_state().await?.map(|(_, state)| state);
            let remote_after = self.remote_states().await?;
            if after != before.map(|(_, state)| state) || remote_after != remote_before {
                last = after;
                tokio::task::yield_now().await;
                continue;
            }
            let collateral = self
                .value_many(&[user], [held.as_slice()], &prices, &rates, &states, at)
                .pop()
                .unwrap_or_else(|| Ok(self.empty(user, at.block)))?;
            let mut explained = Vec::with_capacity(held.len());
            for (((asset_id, view), price), (confirmed, pending)) in
                held.iter().zip(&views).zip(logs)
            {
                let asset =
                    self.valuator
                        .assets()
                        .get(asset_id)
                        .ok_or(ValuationError::UnknownAsset {
                            user,
                            asset: *asset_id,
                        })?;
                let rate = rates.get(asset_id).copied().unwrap_or_default();
                let key = registry.price_key(asset_id);
                let origin = self.remote_prices().find(|(k, _)| *k == key).map_or(
                    PriceOrigin::Feed,
                    |(_, r)| PriceOrigin::OtherChain {
                        chain: r.chain,
                        key: r.key,
                    },
                );
                // A derived asset's arithmetic is that of its underlying units (shares at
                // the side's rate, rounded down) with the underlying's decimals.
                let underlying = match registry.price_source(asset_id) {
                    crate::model::PriceSource::Derived { underlying } => registry.get(&underlying),
                    _ => None,
                };
                let arithmetic = |balance: U256, price: &Price, rate: Option<RateUpdate>| match (
                    underlying, rate,
                ) {
                    (None, _) => Some(self.valuator.arithmetic(asset, balance, price)),
                    (Some(u), Some(r)) => {
                        let units = shares_to_units(balance, r.rate, asset.decimals)?;
                        let as_units = Asset {
                            decimals: u.decimals,
                            ..asset.clone()
                        };
                        Some(self.valuator.arithmetic(&as_units, units, price))
                    }
                    (Some(_), None) => None,
                };
                let side = |balance,
                            price: Option<Price>,
                            rate: Option<RateUpdate>,
                            log: UserLog,
                            v: &Valuation| {
                    let valued = v.assets.iter().find(|a| a.asset == *asset_id);
                    SideExplanation {
                        balance,
                        rows: log.rows,
                        truncated: log.truncated,
                        price: price.map(|p| PriceUsed {
                            price: p,
                            age: at.now.abs_diff(p.updated_at),
                            origin,
                        }),
                        status: valued.map(|a| a.status),
                        value: valued.and_then(|a| a.value),
                        arithmetic: price
                            .filter(|_| !balance.is_zero())
                            .and_then(|p| arithmetic(balance, &p, rate)),
                        rate: rate.filter(|_| underlying.is_some()),
                    }
                };
                explained.push(AssetExplanation {
                    asset: *asset_id,
                    symbol: asset.symbol.clone(),
                    decimals: asset.decimals,
                    factor_bps: asset.collateral_factor_bps,
                    confirmed: side(
                        view.confirmed,
                        price.confirmed,
                        rate.confirmed,
                        confirmed,
                        &collateral.confirmed,
                    ),
                    pending: side(
                        view.pending,
                        price.pending,
                        rate.pending,
                        pending,
                        &collateral.pending,
                    ),
                });
            }
            return Ok(Explanation {
                user,
                state: after,
                now: at.now,
                limit,
                assets: explained,
                collateral,
            });
        }
        Err(StoreError::Moving {
            attempts: SNAPSHOT_ATTEMPTS,
            last,
        }
        .into())
    }

    /// `user`'s collateral after the finalized block `block`, from the log: each balance
    /// the fold of the user's rows at or below it (a rebasing asset's shares converted
    /// with its index after the block), each price (of the asset's price key) and vault
    /// rate the latest accepted at or below it, an asset quarantined after the block left
    /// out as the live read leaves it out, valued at the block's timestamp. Both sides of the result are that one
    /// confirmed state; `block` is stamped on it. (The existing
    /// [`collateral_at`](Self::collateral_at) values the *current* balances at a given
    /// point; this one reads the past.)
    ///
    /// Cost: O(log rows of the user), with the store's history index. Refused with
    /// [`Error::History`] (a typed [`HistoryError`](crate::traits::HistoryError)) for a
    /// block that is not final, below the store's first block, below a memory store's
    /// retained horizon, or below a migration backfill's high-water; a Postgres store
    /// without `PostgresStore::create_history_indexes`
    /// answers `Unsupported`. So is a user holding an asset priced from another chain
    /// ([`with_price_from`](Self::with_price_from)): two chains' blocks have no common past
    /// point to read both at.
    pub async fn collateral_at_block(
        &self,
        user: UserId,
        block: BlockNumber,
    ) -> Result<Collateral, Error> {
        let h = self.store.history_at(user, block).await?;
        let registry = self.valuator.assets();
        if h.balances.iter().any(|(a, _)| {
            let key = registry.price_key(a);
            self.remote_prices().any(|(k, _)| k == key)
        }) {
            return Err(crate::traits::HistoryError::Unsupported {
                backend: "cross-chain reader's",
                what: "a price from another chain at a past block",
            }
            .into());
        }
        let own: HashMap<AssetId, Option<Price>> = h
            .balances
            .iter()
            .map(|(a, _)| *a)
            .zip(h.prices.iter().copied())
            .collect();
        // Price keys the history does not name (a `SameAs` feed, a vault's underlying the
        // user does not hold): read at the same finalized block.
        let missing: Vec<AssetId> = self
            .price_keys(&own.keys().copied().collect::<Vec<_>>())
            .into_iter()
            .filter(|k| !own.contains_key(k))
            .collect();
        let mut keyed = own;
        if !missing.is_empty() {
            let extra = self.store.history_prices(&missing, block).await?;
            keyed.extend(missing.into_iter().zip(extra));
        }
        let views: Vec<(AssetId, BalanceView)> = h
            .balances
            .iter()
            .map(|(a, b)| {
                (
                    *a,
                    BalanceView {
                        confirmed: *b,
                        pending: *b,
                    },
                )
            })
            .collect();
        let prices: Vec<PriceView> = h
            .balances
            .iter()
            .map(|(a, _)| {
                let p = keyed.get(&registry.price_key(a)).copied().flatten();
                PriceView {
                    confirmed: p,
                    pending: p,
                }
            })
            .collect();
        let rates: Vec<RateView> = h
            .rates
            .iter()
            .map(|r| RateView {
                confirmed: *r,
                pending: *r,
            })
            .collect();
        Ok(self.valuator.collateral_full(
            user,
            block,
            h.header.timestamp,
            &views,
            &prices,
            &rates,
            &h.states,
        )?)
    }
}
