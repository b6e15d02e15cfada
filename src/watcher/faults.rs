//! [`FaultPolicy::Reconcile`]: an asset whose log cannot be applied is repaired from the
//! chain in the block of the fault.
//!
//! The engine quarantines the asset at the faulting log as it does for
//! [`FaultPolicy::Quarantine`]. The watcher then looks at the changeset it built: for each
//! asset of that policy quarantined after a new block (by a fault of that block, or since an
//! earlier block whose read failed), it reads `balanceOf` at that block for every holder the
//! asset may have there — the store's holders, every user the asset's logs named since the
//! fault (the logs the quarantine skipped), and the faulting user — and appends the values to
//! the block as fault corrections ([`fault_correction`], applied at the end of the block).
//! The first of them ends the quarantine, so the block's state of the asset is the chain's
//! and it folds again from the next block; the changeset is built again and checked for the
//! next fault.
//!
//! All holders, not only the faulting log's: after a log that could not be applied, any of
//! the asset's balances may be wrong (a mint without an event, a rebase the decoder does not
//! see), and a partial repair would end the quarantine on balances nobody checked.
//!
//! A read that fails (the node is down, the token's `balanceOf` reverts for one holder, the
//! source has no [`ChainBalances`](crate::traits::ChainBalances)) writes nothing for that
//! asset: it stays quarantined — visible in reads, notifications, progress and health as any
//! quarantine — and the read is tried again at the first new block of the next transition.

use std::collections::{BTreeSet, HashSet};

use alloy_primitives::U256;

use super::Watcher;
use crate::engine::{BaseState, Transition};
use crate::error::Error;
use crate::model::{
    AssetId, AssetState, Block, BlockRef, Changeset, FaultPolicy, FaultReason, Quarantine, UserId,
    fault_correction,
};
use crate::traits::LogStatus;

/// One fault repaired from the chain: the asset, and the block whose end carries its fault
/// corrections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultRepair {
    /// The repaired asset.
    pub asset: AssetId,
    /// The block read at, whose end carries the fault corrections.
    pub block: BlockRef,
    /// Fault corrections written (one per holder read).
    pub holders: usize,
}

/// Holders and their `balanceOf`.
type Holders = Vec<(UserId, U256)>;

/// An asset to repair: the index of the new block read at, and its quarantine.
struct Todo {
    index: usize,
    asset: AssetId,
    quarantine: Quarantine,
}

impl Watcher {
    /// Builds the changeset of `transition` on `base`, repairing the faults of assets of
    /// [`FaultPolicy::Reconcile`] with fault corrections (see the [module docs](self)).
    /// Returns the changeset and the repairs it carries.
    ///
    /// # Errors
    /// The engine's error of a strict asset's fault, or a store read failing (nothing is
    /// written then). A failed chain read is not an error: that asset stays quarantined.
    pub(super) async fn build_reconciling(
        &mut self,
        transition: Transition,
        base: BaseState,
    ) -> Result<(Changeset, Vec<FaultRepair>), Error> {
        let reconciling: Vec<AssetId> = self
            .config
            .engine
            .assets
            .iter()
            .filter(|a| a.policy == FaultPolicy::Reconcile)
            .map(|a| a.id)
            .collect();
        let at = transition.base().unwrap_or_default();
        if reconciling.is_empty() || transition.new_blocks().is_empty() {
            return Ok((
                self.engine.build(transition, base, self.known_final)?,
                Vec::new(),
            ));
        }
        let mut changes = self
            .engine
            .build(transition, base.clone(), self.known_final)?;
        let mut failed: HashSet<AssetId> = HashSet::new();
        let mut repairs: Vec<FaultRepair> = Vec::new();
        loop {
            let todo = next_faults(&base, &changes, &reconciling, &mut failed, &repairs);
            let mut rows: Vec<(usize, AssetId, Holders)> = Vec::new();
            for t in todo {
                let block = &changes.blocks[t.index].block;
                match self.read_holders(&changes, &t, at).await? {
                    Some(values) => {
                        tracing::warn!(asset = %t.asset, block = %block.id(), log = %t.quarantine.log, reason = %t.quarantine.reason, holders = values.len(), "fault reconciled from the chain");
                        repairs.push(FaultRepair {
                            asset: t.asset,
                            block: block.id(),
                            holders: values.len(),
                        });
                        rows.push((t.index, t.asset, values));
                    }
                    None => {
                        failed.insert(t.asset);
                    }
                }
            }
            if rows.is_empty() {
                return Ok((changes, repairs));
            }
            let revert = std::mem::take(&mut changes.revert);
            let mut new: Vec<Block> = changes.blocks.into_iter().map(|b| b.block).collect();
            for (index, asset, values) in rows {
                append(&mut new[index], self.chain_id, asset, values);
            }
            let transition = if revert.is_empty() {
                Transition::Commit { new }
            } else {
                Transition::Reorg { old: revert, new }
            };
            changes = self
                .engine
                .build(transition, base.clone(), self.known_final)?;
        }
    }

    /// `balanceOf` of every holder of `t.asset` at the new block `t.index` of `changes`
    /// (see the [module docs](self)); `None` (logged) if the chain cannot tell them all.
    async fn read_holders(
        &self,
        changes: &Changeset,
        t: &Todo,
        at: crate::model::BlockNumber,
    ) -> Result<Option<Holders>, Error> {
        let block = changes.blocks[t.index].block.id();
        let source = self.source.clone();
        let Some(chain) = source.chain_balances().filter(|c| c.reads(t.asset)) else {
            tracing::warn!(asset = %t.asset, block = %block, "fault not reconciled: the source reads no balanceOf of this asset; it stays quarantined");
            return Ok(None);
        };
        let mut users: BTreeSet<UserId> = self.store.holders(t.asset).await?.into_iter().collect();
        if t.quarantine.block.number <= at {
            // Quarantined before this transition: the users its skipped logs named.
            for row in self.store.log(t.quarantine.block.number..=at).await? {
                if row.key.asset == t.asset && row.status != LogStatus::Reverted {
                    users.insert(row.key.user);
                }
            }
        }
        for b in &changes.blocks[..=t.index] {
            for event in b.block.events.iter().filter(|e| e.asset == t.asset) {
                users.extend(event.effects().map(|(k, _)| k.user));
            }
        }
        if let FaultReason::Underflow { user, .. } | FaultReason::Overflow { user, .. } =
            t.quarantine.reason
        {
            users.insert(user);
        }
        if users.is_empty() {
            // Nobody to read: the zero address's zero balance ends the quarantine.
            return Ok(Some(vec![(UserId::ZERO, U256::ZERO)]));
        }
        let keys: Vec<crate::model::BalanceKey> = users
            .iter()
            .map(|&user| crate::model::BalanceKey {
                user,
                asset: t.asset,
            })
            .collect();
        let reads = match chain.balances_each(&keys, block).await {
            Ok(reads) => reads,
            Err(error) => {
                tracing::warn!(asset = %t.asset, block = %block, %error, "fault not reconciled: balanceOf failed; the asset stays quarantined and is read again at the next block");
                return Ok(None);
            }
        };
        let mut values = Vec::with_capacity(keys.len());
        for (key, read) in keys.iter().zip(reads) {
            match read {
                Ok(value) => values.push((key.user, value)),
                Err(error) => {
                    tracing::warn!(asset = %t.asset, user = %key.user, block = %block, %error, "fault not reconciled: a holder's balanceOf failed; the asset stays quarantined");
                    return Ok(None);
                }
            }
        }
        Ok(Some(values))
    }
}

/// For each reconciling asset not in `failed`, the first new block of `changes` after which
/// it is quarantined, if it was not repaired there already (one that was, and is still
/// quarantined, is given up for this transition: added to `failed`).
fn next_faults(
    base: &BaseState,
    changes: &Changeset,
    reconciling: &[AssetId],
    failed: &mut HashSet<AssetId>,
    repairs: &[FaultRepair],
) -> Vec<Todo> {
    let mut quarantined: Vec<(AssetId, Quarantine)> = base
        .asset_states
        .iter()
        .filter_map(|(a, s)| s.quarantine().map(|q| (*a, q.clone())))
        .filter(|(a, _)| reconciling.contains(a))
        .collect();
    let mut todo: Vec<Todo> = Vec::new();
    for (index, b) in changes.blocks.iter().enumerate() {
        for (asset, state) in &b.asset_states {
            quarantined.retain(|(a, _)| a != asset);
            if let AssetState::Quarantined(q) = state
                && reconciling.contains(asset)
            {
                quarantined.push((*asset, q.clone()));
            }
        }
        let id = b.block.id();
        for (asset, q) in &quarantined {
            if failed.contains(asset) || todo.iter().any(|t| t.asset == *asset) {
                continue;
            }
            if repairs.iter().any(|r| r.asset == *asset && r.block == id) {
                failed.insert(*asset);
                continue;
            }
            todo.push(Todo {
                index,
                asset: *asset,
                quarantine: q.clone(),
            });
        }
    }
    todo
}

/// Appends the fault corrections `values` of `asset` to the end of `block`, numbered after its
/// existing ones.
fn append(block: &mut Block, chain: u64, asset: AssetId, values: Holders) {
    let existing = block
        .events
        .iter()
        .filter(|e| e.log.is_fault_correction())
        .count() as u64;
    let number = block.header.number;
    for (i, (user, balance)) in values.into_iter().enumerate() {
        block.events.push(fault_correction(
            chain,
            number,
            asset,
            user,
            balance,
            existing + i as u64,
        ));
    }
}
