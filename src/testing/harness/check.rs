//! [`Harness::check`]: the backends (window, balances, prices, log, collateral, cache)
//! compared with the replay oracle.

use super::{Harness, START};
use crate::model::{
    Asset, BalanceKey, Block, BlockHeader, BlockNumber, CachedCollateral, Collateral, UserId,
};
use crate::testing::oracle::{Expected, replay};
use crate::traits::LogStatus;
use crate::valuation::Valuator;

impl Harness {
    /// Asserts that store, price feed, log, collateral and cache all equal the oracle.
    pub async fn check(&self) {
        let canonical = self.canonical();
        let fin = self.expected_finalized();
        let expected = replay(&canonical, fin);
        let store = &self.backends.store;

        let window = store.window().await.expect("window");
        let head = canonical.last().expect("chain has blocks").header;
        assert_eq!(
            window.head(),
            Some(&head),
            "stored head differs from the canonical head"
        );
        assert_eq!(
            store.head().await.expect("head"),
            Some(head),
            "the store's head read differs from its window's head"
        );
        assert_eq!(window.finalized_number(), fin, "stored finalized height");
        let unconfirmed: Vec<_> = canonical
            .iter()
            .map(|b| b.header)
            .filter(|h| fin.is_none_or(|f| h.number > f))
            .collect();
        assert_eq!(window.unconfirmed, unconfirmed, "stored unconfirmed window");
        assert_eq!(
            self.watcher.window(),
            &window,
            "watcher and store disagree on the window"
        );

        for user in &self.users {
            let mut want = Vec::new();
            for asset in &self.assets {
                let key = BalanceKey {
                    user: *user,
                    asset: asset.id,
                };
                let exp = expected.balance(&key);
                let got = store.balance(key).await.expect("balance");
                assert_eq!(got, exp, "balance of {user} in {}", asset.symbol);
                if !exp.confirmed.is_zero() || !exp.pending.is_zero() {
                    want.push((asset.id, exp));
                }
            }
            let got: Vec<_> = store
                .user_balances(*user)
                .await
                .expect("user balances")
                .into_iter()
                .filter(|(_, v)| !v.confirmed.is_zero() || !v.pending.is_zero())
                .collect();
            assert_eq!(got, want, "balances of {user}");
        }

        for asset in &self.assets {
            let got = self.backends.store.price(asset.id).await.expect("price");
            assert_eq!(got, expected.price(&asset.id), "price of {}", asset.symbol);
            let got = self.backends.store.rates(&[asset.id]).await.expect("rate");
            assert_eq!(got, [expected.rate(&asset.id)], "rate of {}", asset.symbol);
        }

        assert_eq!(
            crate::traits::AssetStateReader::asset_states(&**store)
                .await
                .expect("asset states"),
            expected.asset_states(),
            "quarantined assets"
        );

        self.check_log(&canonical, fin).await;
        self.check_collateral(&expected, &head).await;
    }

    async fn check_log(&self, canonical: &[Block], fin: Option<BlockNumber>) {
        let head = canonical.last().map_or(START, |b| b.header.number);
        let rows = self.backends.store.log(START..=head).await.expect("log");
        let got: Vec<_> = rows
            .iter()
            .filter(|r| r.status != LogStatus::Reverted)
            .map(|r| (r.block, r.log, r.ordinal, r.key, r.effect, r.status))
            .collect();
        let mut want = Vec::new();
        for block in canonical {
            let status = if fin.is_some_and(|f| block.header.number <= f) {
                LogStatus::Confirmed
            } else {
                LogStatus::Pending
            };
            for e in &block.events {
                for (i, (key, effect)) in e.effects().enumerate() {
                    want.push((block.id(), e.log, e.ordinal(i), key, effect, status));
                }
            }
        }
        assert_eq!(got, want, "canonical rows of the event log");
    }

    async fn check_collateral(&self, expected: &Expected, head: &BlockHeader) {
        let valuator = self.watcher.valuator();
        for user in &self.users {
            let want = expected_collateral(valuator, expected, *user, &self.assets, head);
            let got = self.watcher.collateral(*user).await.expect("collateral");
            assert_eq!(got, want, "collateral of {user}");
            if let Some(cache) = &self.backends.cache {
                let cached = cache.get(*user).await.expect("cache read");
                let want = CachedCollateral::new(&want, None);
                match cached {
                    None => assert!(
                        want.assets.is_empty(),
                        "no cache entry for {user} who has collateral"
                    ),
                    Some(c) => assert_eq!(
                        (c.confirmed, c.pending, &c.assets),
                        (want.confirmed, want.pending, &want.assets),
                        "cached collateral of {user}"
                    ),
                }
            }
        }
    }
}

/// The collateral `expected` implies for `user` over `assets` at `head`, valued with
/// `valuator` (prices of each asset's price key, rates of derived assets).
pub(crate) fn expected_collateral(
    valuator: &Valuator,
    expected: &Expected,
    user: UserId,
    assets: &[Asset],
    head: &BlockHeader,
) -> Collateral {
    let balances: Vec<_> = assets
        .iter()
        .map(|a| (a.id, expected.balance(&BalanceKey { user, asset: a.id })))
        .filter(|(_, v)| !v.confirmed.is_zero() || !v.pending.is_zero())
        .collect();
    let registry = valuator.assets();
    let prices: Vec<_> = balances
        .iter()
        .map(|(a, _)| expected.price(&registry.price_key(a)))
        .collect();
    let rates: Vec<_> = balances.iter().map(|(a, _)| expected.rate(a)).collect();
    valuator
        .collateral_full(
            user,
            head.number,
            head.timestamp,
            &balances,
            &prices,
            &rates,
            &expected.asset_states(),
        )
        .expect("oracle valuation")
}
