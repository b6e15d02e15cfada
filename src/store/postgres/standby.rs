//! The writer lease: a claim that a hung writer loses by itself, so a standby can take over.
//!
//! The ownership lock of `writer` is held by a session; a writer that dies (SIGKILL) loses
//! its session and the lock at once, but one that hangs (SIGSTOP, a stuck host) keeps both
//! forever. With a lease ([`PostgresStore::set_writer_lease`]) the claim's session is set
//! `idle_session_timeout = <lease>` and a heartbeat task queries on it every third of the
//! lease: while the process runs the session is never idle that long; once it stops, the
//! server ends the session after the lease, the lock goes with it, and a standby waiting
//! for the claim ([`Watcher::standby`](crate::Watcher::standby)) takes it. The stopped
//! writer, if it comes back, is fenced ([`StoreError::WriterFenced`]) by the new claim's
//! epoch. A changeset transaction the hung writer left open holds the checkpoint row: set
//! `idle_in_transaction_session_timeout` on the writer's sessions too (e.g.
//! `?options=-c%20idle_in_transaction_session_timeout%3D2000` in its URL), or the standby's
//! claim waits for it up to its lock timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgConnection;

use super::PostgresStore;
use super::codec::db;
use super::writer::Claim;
use crate::error::StoreError;

/// A claim's lease (milliseconds, 0: none) and whether its heartbeat runs.
#[derive(Debug, Default)]
pub(super) struct Lease {
    millis: AtomicU64,
    beating: AtomicBool,
}

impl PostgresStore {
    /// Makes this handle's writer claims leases of `lease` (at least 100 ms; call before
    /// the claim): a writer process that stops running loses its claim after about
    /// `lease`, instead of never. See the module docs of `standby` (`docs/standby.md`).
    pub fn set_writer_lease(&self, lease: Duration) {
        let millis = u64::try_from(lease.as_millis())
            .unwrap_or(u64::MAX)
            .max(100);
        self.claim.lease.millis.store(millis, Ordering::Release);
    }
}

/// Arms the lease on the session that just took the ownership lock: its idle timeout, and
/// the heartbeat (one task per handle, ending with the handle).
pub(super) async fn arm(conn: &mut PgConnection, claim: &Arc<Claim>) -> Result<(), StoreError> {
    let millis = claim.lease.millis.load(Ordering::Acquire);
    if millis == 0 {
        return Ok(());
    }
    // A number formatted by us, not user text: `SET` takes no bind parameters.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET idle_session_timeout = {millis}"
    )))
    .execute(&mut *conn)
    .await
    .map_err(db("set the writer lease (idle_session_timeout)"))?;
    if !claim.lease.beating.swap(true, Ordering::AcqRel) {
        let every = Duration::from_millis((millis / 3).max(30));
        tokio::spawn(heartbeat(Arc::downgrade(claim), every));
    }
    Ok(())
}

/// Queries on the claim's session every `every` while the handle lives.
async fn heartbeat(claim: Weak<Claim>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(claim) = claim.upgrade() else { return };
        claim.beat().await;
    }
}
