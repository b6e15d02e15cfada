//! Following the source until told to stop, and stopping cleanly: the current changeset
//! is finished, the refresh flushed, the writer claim released.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{RefreshStatus, StepReport, Watcher};
use crate::error::{Error, StoreError};

/// Most time [`Watcher::shutdown`] waits for the refresh to catch up.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

impl Watcher {
    /// Stops a catch-up after the changeset it is writing once `token` is cancelled (a
    /// sync then returns what it committed). [`run`](Self::run) sets it itself.
    pub fn stop_on(&mut self, token: CancellationToken) {
        self.stop = Some(token);
    }

    /// Whether the stop token was cancelled.
    pub(super) fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Follows the source until `token` is cancelled: a [`sync`](Self::sync), then a wait
    /// of `poll` (cut short by the token), and again. A cancellation during a sync lets
    /// the changeset being written finish; nothing is cut in half. A failed sync is logged
    /// (and counted in the metrics and the [`health`](Self::health) report) and retried
    /// at the next poll, except the errors no retry can fix: another writer took the
    /// store ([`StoreError::WriterFenced`], [`StoreError::WriterTaken`]) or the store
    /// follows another chain ([`StoreError::IdentityMismatch`]).
    ///
    /// Returns what the syncs committed. Call [`shutdown`](Self::shutdown) afterwards to
    /// flush the refresh and release the store.
    pub async fn run(
        &mut self,
        poll: Duration,
        token: CancellationToken,
    ) -> Result<StepReport, Error> {
        self.stop_on(token.clone());
        let mut total = StepReport::default();
        while !token.is_cancelled() {
            match self.sync().await {
                Ok(report) => total.add(&report),
                Err(e) if fatal(&e) => return Err(e),
                Err(error) => tracing::warn!(%error, "sync failed; retrying at the next poll"),
            }
            tokio::select! {
                () = token.cancelled() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(head = ?self.head_number(), "stop requested: stopped between changesets");
        Ok(total)
    }

    /// Stops cleanly: waits (up to 10 s) for the refresh to catch up
    /// with every committed step, then releases the writer claim
    /// ([`StoreWriter::release_writer`](crate::traits::StoreWriter::release_writer)) so
    /// the next writer claims at once. Returns where the refresh stood; what it had not
    /// refreshed is found by the next watcher's reconciliation from the cache's watermark.
    pub async fn shutdown(self) -> Result<RefreshStatus, Error> {
        let status = match tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, self.flush()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(
                    "the refresh did not catch up before shutdown; the next start reconciles"
                );
                self.refresh_status()
            }
        };
        self.store.release_writer().await?;
        Ok(status)
    }
}

/// Errors a retry cannot fix.
fn fatal(e: &Error) -> bool {
    match e {
        Error::Store(s) => matches!(
            s,
            StoreError::WriterFenced { .. }
                | StoreError::WriterTaken { .. }
                | StoreError::IdentityMismatch { .. }
        ),
        Error::PartiallyCommitted { source, .. } => fatal(source),
        _ => false,
    }
}
