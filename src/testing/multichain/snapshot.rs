//! [`StoreSnapshot`]: everything a chain's store holds for the harness's users and assets,
//! to show that a step on another chain left it exactly as it was.

use super::START;
use crate::model::{AssetId, AssetStateView, BalanceView, PriceView, RateView, UserId, Window};
use crate::testing::Harness;
use crate::traits::LogRecord;

/// One chain's store as the harness sees it: checkpoint, every user's balances, the whole
/// event log (reverted rows included), every asset's price and rate, the quarantines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSnapshot {
    /// The checkpoint (finalized block and unconfirmed headers).
    pub window: Window,
    /// Each user's balances, in the harness's user order.
    pub balances: Vec<(UserId, Vec<(AssetId, BalanceView)>)>,
    /// The log rows of every block from the harness's first to the head.
    pub log: Vec<LogRecord>,
    /// Each asset's price view, in the harness's asset order.
    pub prices: Vec<PriceView>,
    /// Each asset's rate view, in the harness's asset order.
    pub rates: Vec<RateView>,
    /// The quarantined assets.
    pub states: Vec<AssetStateView>,
}

impl StoreSnapshot {
    /// Reads `harness`'s store.
    pub async fn take(harness: &Harness) -> Self {
        let store = &harness.backends.store;
        let window = store.window().await.expect("window");
        let head = window.head().map_or(START, |h| h.number);
        let mut balances = Vec::with_capacity(harness.users.len());
        for user in &harness.users {
            let held = store.user_balances(*user).await.expect("user balances");
            balances.push((*user, held));
        }
        let assets: Vec<AssetId> = harness.assets.iter().map(|a| a.id).collect();
        Self {
            log: store.log(START..=head).await.expect("log"),
            prices: store.prices(&assets).await.expect("prices"),
            rates: store.rates(&assets).await.expect("rates"),
            states: crate::traits::AssetStateReader::asset_states(&**store)
                .await
                .expect("asset states"),
            window,
            balances,
        }
    }
}
