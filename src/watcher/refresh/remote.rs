//! [`RemoteWatch`]: the refresher's poll of the prices its chain takes from other chains'
//! stores ([`CollateralReader::with_price_from`]).
//!
//! Another chain's prices reach this chain's store through no block of this chain, so no
//! step tells the refresher that they moved. Once per interval it reads the remote price
//! views of its remote-priced keys (one read per other store) and, for every key whose
//! view changed since the last poll (or was never seen), queues the key as repriced: the
//! queue then lists the holders of every asset priced by it and refreshes them, as for a
//! price ingested on this chain. A failed read is logged and tried at the next interval.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{AssetId, PriceView};
use crate::reader::CollateralReader;
use crate::traits::Touched;

/// The last remote price views seen and when to read them next.
#[derive(Debug)]
pub(super) struct RemoteWatch {
    interval: Duration,
    /// Whether the reader has remote prices (known after the first poll).
    active: bool,
    next: Instant,
    seen: BTreeMap<AssetId, PriceView>,
}

impl RemoteWatch {
    /// Polls every `interval` (the first poll at once).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            active: true,
            next: Instant::now(),
            seen: BTreeMap::new(),
        }
    }

    /// When the next poll is due, if `reader` has remote prices at all.
    pub fn next_poll(&self) -> Option<Instant> {
        self.active.then_some(self.next)
    }

    /// If due, reads `reader`'s remote price views: the keys whose view changed since the
    /// last poll, as repriced work (`None`: not due, no remote prices, nothing changed, or
    /// the read failed).
    pub async fn poll(&mut self, reader: &CollateralReader) -> Option<Touched> {
        let keys: Vec<AssetId> = reader.remote_prices().map(|(key, _)| key).collect();
        if keys.is_empty() {
            self.active = false;
            return None;
        }
        if Instant::now() < self.next {
            return None;
        }
        self.next = Instant::now() + self.interval;
        let views = match reader.read_prices(&keys).await {
            Ok(views) => views,
            Err(error) => {
                tracing::warn!(%error, "reading prices from another chain's store failed; retried next interval");
                return None;
            }
        };
        let changed: BTreeSet<AssetId> = views
            .into_iter()
            .filter(|(key, view)| self.seen.insert(*key, *view) != Some(*view))
            .map(|(key, _)| key)
            .collect();
        (!changed.is_empty()).then(|| Touched {
            users: BTreeSet::new(),
            price_assets: changed,
        })
    }
}
