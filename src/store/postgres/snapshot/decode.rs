//! Decoding the rows of a snapshot statement into each chain's inputs.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::U256;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::asset_state::state;
use super::super::codec::{BACKEND, address, db, number, u256};
use super::super::read::{header, numeric, price};
use super::super::views::{Rows, views_of};
use super::{
    BALANCE, ChainInputs, FIXED_PRICE, HEAD, INDEX, PRICE, RATE, STATE, Snapshot, SnapshotQuery,
    column,
};
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetIndex, AssetState, AssetStateView, PriceView, RateUpdate, RateView, StateRef,
    UserId,
};

/// A key's confirmed balance and latest pending balance with its block, while decoding.
type Held = (Option<U256>, Option<(u64, U256)>);

/// A chain's rows while decoding: per user and asset the confirmed and latest pending
/// balance (with its block), the rebasing indexes, prices, rates and asset states.
#[derive(Default)]
struct ChainRows {
    balances: HashMap<UserId, BTreeMap<AssetId, Held>>,
    indexes: HashMap<AssetId, (Option<AssetIndex>, Option<AssetIndex>)>,
    prices: HashMap<AssetId, PriceView>,
    rates: HashMap<AssetId, RateView>,
    states: BTreeMap<AssetId, (Option<AssetState>, Option<AssetState>)>,
}

/// The snapshot `rows` of `query` answer, each side completed as the separate reads
/// complete it (a pending side without a row is the confirmed one).
pub(super) fn decode(query: &SnapshotQuery<'_>, rows: &[PgRow]) -> Result<Snapshot, StoreError> {
    let mut heads = vec![None; query.stores.len()];
    let mut chains: Vec<ChainRows> = query.chains.iter().map(|_| ChainRows::default()).collect();
    let mut fixed: Vec<HashMap<AssetId, PriceView>> = vec![HashMap::new(); query.prices.len()];
    let get = |c: &'static str| db(format!("read the snapshot's {c}"));
    let out_of_range = |column: &'static str, value: String| StoreError::OutOfRange {
        backend: BACKEND,
        column,
        value,
    };
    for row in rows {
        let part = usize::try_from(row.try_get::<i32, _>("part").map_err(get("part"))?)
            .map_err(|_| out_of_range("part", "negative".into()))?;
        let kind: i16 = row.try_get("kind").map_err(get("kind"))?;
        let asset = || -> Result<AssetId, StoreError> {
            address(
                &row.try_get::<Vec<u8>, _>("asset").map_err(get("asset"))?,
                "asset",
            )
        };
        let confirmed = || -> Result<bool, StoreError> {
            Ok(row
                .try_get::<i16, _>("block_status")
                .map_err(get("block_status"))?
                == 1)
        };
        let block = || -> Result<u64, StoreError> {
            number(
                row.try_get("block_number").map_err(get("block_number"))?,
                "block_number",
            )
        };
        let slot = |len: usize| {
            (part < len)
                .then_some(part)
                .ok_or_else(|| out_of_range("part", part.to_string()))
        };
        match kind {
            HEAD => {
                let h = header(row)?;
                let finalized = row
                    .try_get::<Option<i64>, _>("finalized")
                    .map_err(get("finalized height"))?
                    .map(|n| number(n, "finalized"))
                    .transpose()?;
                let j = slot(heads.len())?;
                heads[j] = Some((
                    h,
                    StateRef {
                        head: h.id(),
                        finalized,
                    },
                ));
            }
            BALANCE => {
                let chain = &mut chains[slot(query.chains.len())?];
                let user = address(
                    &row.try_get::<Vec<u8>, _>("user_address")
                        .map_err(get("user"))?,
                    "user_address",
                )?;
                let value = numeric(row, column("value"), "balance")?;
                let entry = chain
                    .balances
                    .entry(user)
                    .or_default()
                    .entry(asset()?)
                    .or_default();
                if confirmed()? {
                    entry.0 = Some(value);
                } else {
                    let n = block()?;
                    if entry.1.is_none_or(|(m, _)| m < n) {
                        entry.1 = Some((n, value));
                    }
                }
            }
            INDEX => {
                let chain = &mut chains[slot(query.chains.len())?];
                let index = Some(AssetIndex {
                    num: numeric(row, column("value"), "num")?,
                    den: numeric(row, column("den"), "den")?,
                });
                let entry = chain.indexes.entry(asset()?).or_default();
                if confirmed()? {
                    entry.0 = index;
                } else {
                    entry.1 = index;
                }
            }
            PRICE | FIXED_PRICE => {
                let key = asset()?;
                let p = price(row, key)?;
                let views = if kind == PRICE {
                    &mut chains[slot(query.chains.len())?].prices
                } else {
                    &mut fixed[slot(query.prices.len())?]
                };
                let view = views.entry(key).or_default();
                if confirmed()? {
                    view.confirmed = Some(p);
                } else {
                    view.pending = Some(p);
                }
            }
            RATE => {
                let chain = &mut chains[slot(query.chains.len())?];
                let text: String = row.try_get("rate").map_err(get("rate"))?;
                let a = asset()?;
                let rate = RateUpdate {
                    asset: a,
                    rate: u256(&text, "rate")?,
                    block: block()?,
                };
                let view = chain.rates.entry(a).or_default();
                if confirmed()? {
                    view.confirmed = Some(rate);
                } else {
                    view.pending = Some(rate);
                }
            }
            STATE => {
                let chain = &mut chains[slot(query.chains.len())?];
                let (a, s) = state(row)?;
                let entry = chain.states.entry(a).or_default();
                if confirmed()? {
                    entry.0 = Some(s);
                } else {
                    entry.1 = Some(s);
                }
            }
            other => return Err(out_of_range("kind", other.to_string())),
        }
    }
    let chains = chains
        .into_iter()
        .map(|c| {
            let found: HashMap<UserId, BTreeMap<AssetId, Rows>> = c
                .balances
                .into_iter()
                .map(|(user, held)| {
                    let held = held
                        .into_iter()
                        .map(|(a, (conf, pend))| (a, (conf, pend.map(|(_, v)| v))))
                        .collect();
                    (user, held)
                })
                .collect();
            let pending_or_confirmed = |mut v: PriceView| {
                v.pending = v.pending.or(v.confirmed);
                v
            };
            ChainInputs {
                balances: views_of(query.users, &found, &c.indexes),
                prices: c
                    .prices
                    .into_iter()
                    .map(|(k, v)| (k, pending_or_confirmed(v)))
                    .collect(),
                rates: c
                    .rates
                    .into_iter()
                    .map(|(k, mut v)| {
                        v.pending = v.pending.or(v.confirmed);
                        (k, v)
                    })
                    .collect(),
                states: c
                    .states
                    .into_iter()
                    .map(|(asset, (conf, pend))| {
                        let confirmed = conf.unwrap_or_default();
                        let pending = pend.unwrap_or_else(|| confirmed.clone());
                        AssetStateView {
                            asset,
                            confirmed,
                            pending,
                        }
                    })
                    .filter(|v| v.confirmed.is_quarantined() || v.pending.is_quarantined())
                    .collect(),
            }
        })
        .collect();
    let prices = fixed
        .into_iter()
        .map(|views| {
            views
                .into_iter()
                .map(|(k, mut v)| {
                    v.pending = v.pending.or(v.confirmed);
                    (k, v)
                })
                .collect()
        })
        .collect();
    Ok(Snapshot {
        heads,
        chains,
        prices,
    })
}
