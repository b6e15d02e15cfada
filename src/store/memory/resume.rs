//! Resume requests in the [`MemoryStore`](super::MemoryStore): an operator's task in the
//! same process asks, the watcher reads them at its next sync and removes each after the
//! block carrying its resume commits (as the Postgres store's `resume_request` table).

use super::MemoryStore;
use crate::model::ResumeRequest;

impl MemoryStore {
    /// Stores a request that the watcher resume `request.asset` (replacing an earlier
    /// request for it). Nothing else is written: the resume lands when the watcher reads
    /// the request ([`resume_requests`](crate::traits::StoreWriter::resume_requests)) and
    /// applies its next block at or above `request.at_block`; the request is removed after
    /// that block is applied.
    pub fn request_resume(&self, request: ResumeRequest) {
        let mut inner = self.write();
        inner.resume_requests.retain(|r| r.asset != request.asset);
        inner.resume_requests.push(request);
    }

    /// Every stored request, oldest first.
    pub(super) fn read_resumes(&self) -> Vec<ResumeRequest> {
        self.read().resume_requests.clone()
    }

    /// Removes `request` if it is still the asset's request (same `at_block`).
    pub(super) fn remove_resume(&self, request: &ResumeRequest) {
        self.write().resume_requests.retain(|r| r != request);
    }
}
