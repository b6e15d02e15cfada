//! A transition's base state: the balances and prices at its base height, from the head
//! memo where it has them and from the store for the rest.

use alloy_primitives::U256;

use super::{StepReport, Watcher};
use crate::engine::{BaseState, Transition};
use crate::error::{Error, StoreError};
use crate::model::{BalanceKey, BlockNumber};

impl Watcher {
    /// Reads the base state of `transition`, builds its changeset and writes it.
    pub(super) async fn apply(&mut self, mut transition: Transition) -> Result<StepReport, Error> {
        self.add_queued_corrections(&mut transition);
        self.inject_resumes(&mut transition);
        let keys = transition.keys();
        let assets = transition.price_assets();
        let at = transition.base().unwrap_or_default();
        let balances = if transition.extends_head() {
            self.read_balances(&keys, at).await?
        } else {
            self.store.balances_at(&keys, at).await?
        };
        self.add_opening_indexes(&mut transition).await?;
        self.add_openings(&mut transition, &keys, &balances).await?;
        let prices = self.store.prices_at(&assets, at).await?;
        let event_assets = transition.event_assets();
        let indexes = if event_assets.is_empty() {
            Vec::new()
        } else {
            self.store.indexes_at(&event_assets, at).await?
        };
        let asset_states = self.read_asset_states(at).await?;
        let base = BaseState {
            balances: keys.into_iter().zip(balances).collect(),
            prices: assets
                .into_iter()
                .zip(prices)
                .filter_map(|(a, p)| p.map(|p| (a, p)))
                .collect(),
            indexes: event_assets
                .into_iter()
                .zip(indexes)
                .filter_map(|(a, i)| i.map(|i| (a, i)))
                .collect(),
            asset_states,
        };
        let quarantined_at_base: Vec<_> = base.asset_states.iter().map(|(a, _)| *a).collect();
        let (changes, repairs) = self.build_reconciling(transition, base).await?;
        let first = changes.blocks.first().map(|b| b.block.id());
        for r in &repairs {
            // A quarantine the store holds ends with this block: reported as a resume.
            if Some(r.block) == first && quarantined_at_base.contains(&r.asset) {
                self.quarantines.note_lift(r.asset, r.block);
            }
        }
        let mut report = self.write(changes).await?;
        report.reconciled = repairs;
        Ok(report)
    }

    /// The balances of `keys` at `at`: from the head memo where it has them, from the
    /// store for the rest (one read).
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
        let read = self.store.balances_at(&missing, at).await?;
        if read.len() != missing.len() {
            return Err(StoreError::BrokenContract {
                method: "balances_at",
                detail: format!("{} balances for {} keys", read.len(), missing.len()),
            }
            .into());
        }
        let mut read = read.into_iter();
        for slot in known.iter_mut().filter(|v| v.is_none()) {
            *slot = read.next();
        }
        Ok(known.into_iter().flatten().collect())
    }
}
