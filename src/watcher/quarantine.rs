//! Quarantines seen from the watcher: the base state of a transition, the operator's
//! resume, and the assets whose holders a quarantine (or its revert, finalization or
//! resume) revalues.

use super::Watcher;
use crate::engine::Transition;
use crate::error::{Error, StoreError};
use crate::model::{
    AssetId, AssetState, AssetStateView, BalanceChange, BalanceEvent, BlockNumber, BlockRef,
    Changeset, Quarantine, ResumeRequest, resume_log,
};

/// The watcher's quarantine bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Quarantines {
    /// Resumes asked for by the operator and not yet written in a block, each with the
    /// lowest block that may carry it.
    resumes: Vec<(AssetId, Option<BlockNumber>)>,
    /// Resumes injected into the changeset being written, and the block of each.
    injected: Vec<(AssetId, BlockRef)>,
    /// The store's quarantines after the last write (`None`: not read yet).
    known: Option<Vec<AssetStateView>>,
    /// The highest block that may hold an unfinalized state change (written by this
    /// watcher, or by an earlier one up to the head it started at): until the finalized tip
    /// passes it, a finalization or a revert may change a side that `known` cannot tell
    /// (a quarantine and its resume both pending show as active on both sides).
    unsettled: Option<BlockNumber>,
}

impl Quarantines {
    /// The bookkeeping of a watcher starting on a store with these quarantines.
    pub(super) fn loaded(known: Vec<AssetStateView>, head: Option<BlockNumber>) -> Self {
        Self {
            known: Some(known),
            unsettled: head,
            ..Self::default()
        }
    }
}

impl Quarantines {
    /// Records that the changeset being written ends `asset`'s quarantine at `block` by
    /// other means than a queued resume (fault corrections): reported like a resume.
    pub(super) fn note_lift(&mut self, asset: AssetId, block: BlockRef) {
        self.injected.push((asset, block));
    }
}

impl Watcher {
    /// Asks for `asset`'s quarantine to end: a resume event is written at the end of the
    /// next block the watcher applies (block-scoped: a reorg of that block puts the
    /// quarantine back, and the resume must be asked for again). From the block after it,
    /// the asset's events are folded again onto its balances as they were before the
    /// faulting log. Returns whether the asset is quarantined at the head now (a resume of
    /// an active asset does nothing).
    ///
    /// # Errors
    /// [`Error::UnknownAsset`] for an asset that is not tracked; a store error if its
    /// state cannot be read (nothing is queued then).
    pub async fn resume(&mut self, asset: AssetId) -> Result<bool, Error> {
        self.resume_at(asset, None).await
    }

    /// Like [`resume`](Self::resume), but the resume is written at the end of the first
    /// block at or above `at` that the watcher applies (`None`, or a height it has passed:
    /// the next block), e.g. the block from which a fixed decoder is deployed.
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    pub async fn resume_at(
        &mut self,
        asset: AssetId,
        at: Option<BlockNumber>,
    ) -> Result<bool, Error> {
        if !self.config.engine.assets.contains(&asset) {
            return Err(Error::UnknownAsset { asset });
        }
        let quarantined = self
            .store
            .asset_states()
            .await?
            .iter()
            .any(|v| v.asset == asset && v.pending.is_quarantined());
        if quarantined {
            tracing::info!(%asset, at, "resume of a quarantined asset queued");
            self.quarantines.resumes.retain(|(a, _)| *a != asset);
            self.quarantines.resumes.push((asset, at));
        }
        Ok(quarantined)
    }

    /// Queues the resumes asked for in the store by another process (`reorg-collateral
    /// quarantine resume`; see [`StoreWriter::resume_requests`](crate::traits::StoreWriter::resume_requests)).
    /// A request stays stored until the block carrying its resume commits
    /// ([`after_write`](Self::after_write) removes it), so a failure or a crash before that
    /// loses none; one already queued is not read again. A request for an asset this
    /// watcher does not track, or that is not quarantined (e.g. its resume committed just
    /// before a crash), is logged and removed.
    pub(super) async fn read_resume_requests(&mut self) -> Result<(), Error> {
        for request in self.store.resume_requests().await? {
            if self
                .quarantines
                .resumes
                .contains(&(request.asset, request.at_block))
            {
                continue;
            }
            match self.resume_at(request.asset, request.at_block).await {
                Ok(true) => continue,
                Ok(false) => {
                    tracing::warn!(asset = %request.asset, "resume requested for an asset that is not quarantined; dropped")
                }
                Err(Error::UnknownAsset { asset }) => {
                    tracing::warn!(%asset, "resume requested for an asset this watcher does not track; dropped")
                }
                Err(e) => return Err(e),
            }
            self.store.remove_resume_request(&request).await?;
        }
        Ok(())
    }

    /// Removes the store's requests of the resumes a committed write carried (a store
    /// without them does nothing). A failure is logged: the next sync reads the request
    /// again, finds the asset resumed and removes it then.
    async fn remove_written_requests(&self, written: &[ResumeRequest]) {
        for request in written {
            if let Err(error) = self.store.remove_resume_request(request).await {
                tracing::warn!(asset = %request.asset, %error, "removing a written resume request failed; it is dropped at the next sync");
            }
        }
    }

    /// Every asset quarantined at the head or at the finalized tip, as the store says.
    pub async fn quarantined(&self) -> Result<Vec<AssetStateView>, Error> {
        Ok(self.store.asset_states().await?)
    }

    /// The asset states at `at` of every tracked asset that is not active.
    pub(super) async fn read_asset_states(
        &self,
        at: BlockNumber,
    ) -> Result<Vec<(AssetId, AssetState)>, Error> {
        // No quarantine on either side and no unfinalized state change: every asset is
        // active at any height the engine builds on (at or above the finalized tip).
        if self.quarantines.known.as_ref().is_some_and(Vec::is_empty)
            && self.quarantines.unsettled.is_none()
        {
            return Ok(Vec::new());
        }
        let assets: Vec<AssetId> = self.config.engine.assets.iter().map(|a| a.id).collect();
        let states = self.store.asset_states_at(&assets, at).await?;
        if states.len() != assets.len() {
            return Err(StoreError::BrokenContract {
                method: "asset_states_at",
                detail: format!("{} states for {} assets", states.len(), assets.len()),
            }
            .into());
        }
        Ok(assets
            .into_iter()
            .zip(states)
            .filter(|(_, s)| s.is_quarantined())
            .collect())
    }

    /// Puts the queued resumes at the end of the transition's first new block.
    pub(super) fn inject_resumes(&mut self, transition: &mut Transition) {
        self.quarantines.injected.clear();
        if self.quarantines.resumes.is_empty() {
            return;
        }
        let new = match transition {
            Transition::Commit { new } | Transition::Reorg { new, .. } => new,
            Transition::Revert { .. } => return,
        };
        let mut count: Vec<(BlockNumber, u64)> = Vec::new();
        for &(asset, at) in &self.quarantines.resumes {
            let Some(block) = new
                .iter_mut()
                .find(|b| at.is_none_or(|at| b.header.number >= at))
            else {
                continue;
            };
            let number = block.header.number;
            let i = match count.iter_mut().find(|(n, _)| *n == number) {
                Some((_, i)) => {
                    *i += 1;
                    *i
                }
                None => {
                    count.push((number, 0));
                    0
                }
            };
            block.events.push(BalanceEvent {
                part: 0,
                log: resume_log(asset, number, i),
                asset,
                change: BalanceChange::Resume,
            });
            self.quarantines.injected.push((asset, block.id()));
        }
    }

    /// After a committed write: forgets the resumes it carried (and removes their requests
    /// from the store), and returns the assets
    /// whose state on either side changed (their holders are revalued) and the new
    /// quarantines of its blocks.
    pub(super) async fn after_write(
        &mut self,
        changes: &Changeset,
    ) -> (Vec<AssetId>, Vec<Quarantine>, Vec<(AssetId, BlockRef)>) {
        let resumed = std::mem::take(&mut self.quarantines.injected);
        let carried = |a: &AssetId| resumed.iter().any(|(r, _)| r == a);
        let written: Vec<ResumeRequest> = self
            .quarantines
            .resumes
            .iter()
            .filter(|(a, _)| carried(a))
            .map(|&(asset, at_block)| ResumeRequest { asset, at_block })
            .collect();
        self.quarantines.resumes.retain(|(a, _)| !carried(a));
        self.remove_written_requests(&written).await;
        let new: Vec<Quarantine> = changes
            .blocks
            .iter()
            .flat_map(|b| {
                b.asset_states
                    .iter()
                    .filter_map(|(_, s)| s.quarantine().cloned())
            })
            .collect();
        let stateful = !changes.new_state_assets().is_empty();
        if let Some(last) = changes
            .blocks
            .iter()
            .rev()
            .find(|b| !b.asset_states.is_empty())
        {
            let n = last.block.header.number;
            self.quarantines.unsettled = self.quarantines.unsettled.max(Some(n));
        }
        let moved = !changes.revert.is_empty() || changes.finalize.is_some();
        let known_empty = self.quarantines.known.as_ref().is_some_and(Vec::is_empty);
        let settled = self.quarantines.unsettled.is_none();
        if !stateful && (!moved || (known_empty && settled)) {
            return (Vec::new(), new, resumed);
        }
        let fin = self.engine.window().finalized_number();
        if self
            .quarantines
            .unsettled
            .is_some_and(|u| fin.is_some_and(|f| f >= u))
        {
            self.quarantines.unsettled = None;
        }
        let now = match self.store.asset_states().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(%error, "reading the asset states after a write failed");
                self.quarantines.known = None;
                return (
                    changes.new_state_assets().into_iter().collect(),
                    new,
                    resumed,
                );
            }
        };
        let before = self.quarantines.known.take().unwrap_or_default();
        let mut changed: Vec<AssetId> = changes.new_state_assets().into_iter().collect();
        for v in before.iter().chain(&now) {
            let (a, b) = (
                before.iter().find(|x| x.asset == v.asset),
                now.iter().find(|x| x.asset == v.asset),
            );
            if a != b && !changed.contains(&v.asset) {
                changed.push(v.asset);
            }
        }
        for q in &new {
            tracing::warn!(asset = %q.asset, block = q.block.number, log = %q.log, reason = %q.reason, "asset quarantined at #{}", q.block.number);
        }
        self.quarantines.known = Some(now);
        (changed, new, resumed)
    }
}

impl Watcher {
    /// Forgets what it knew of the store's quarantines after a write of unknown outcome
    /// (`changes`, which may have landed): they are read again until the finalized tip
    /// passes its head.
    pub(super) fn forget_quarantines(&mut self, changes: &Changeset) {
        let head = self.head_number().max(changes.new_head().map(|h| h.number));
        self.quarantines.known = None;
        self.quarantines.unsettled = self.quarantines.unsettled.max(head);
        self.quarantines.injected.clear();
    }

    /// The quarantines the watcher last read from the store (after its last write).
    pub(super) fn quarantines_known(&self) -> Option<Vec<AssetStateView>> {
        self.quarantines.known.clone()
    }

    /// The quarantine figures of [`SyncProgress`](super::SyncProgress): how many assets are
    /// quarantined at the head, and the first.
    pub(super) fn quarantine_progress(&self) -> (usize, Option<(AssetId, BlockNumber)>) {
        let Some(known) = &self.quarantines.known else {
            return (0, None);
        };
        let mut pending = known.iter().filter_map(|v| v.pending.quarantine());
        let first = pending.next().map(|q| (q.asset, q.block.number));
        (first.map_or(0, |_| 1) + pending.count(), first)
    }
}
