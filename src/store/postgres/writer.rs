//! One writer per store, one chain per store: [`StoreWriter::claim_writer`] for Postgres.
//! With several chains in one database (the `chains` catalog, see `chains`), each chain's
//! schema is a store of its own: claims and fencing are per schema, hence per chain.
//!
//! The claim takes a session-level advisory lock on a connection dedicated to it and held
//! for the store handle's lifetime (shared by its clones; dropped, and the lock released,
//! with the last one). The lock is keyed by the schema's oid like [`WRITER_LOCK_SQL`] (never
//! a hash of its name: two tenants must not share a lock), under its own
//! class id: the per-transaction lock must stay free for the owner's changesets (which run
//! on other pool connections) and for the migration toolkit's merge. The identity is
//! recorded in `store_identity` (migration 0007).
//!
//! The lock alone does not fence: if the claim's session dies (a terminated backend, a
//! dropped connection), the lock goes with it, another writer can claim, and the first one
//! would keep applying on its other connections. So each claim also bumps the checkpoint's
//! `writer_epoch` (migration 0008) and the handle remembers it; every changeset updates the
//! checkpoint only while the epoch is still its own (see `apply`), and is refused with
//! [`StoreError::WriterFenced`] otherwise.
//!
//! [`StoreWriter::claim_writer`]: crate::StoreWriter::claim_writer
//! [`WRITER_LOCK_SQL`]: super::WRITER_LOCK_SQL

use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use super::codec::{BACKEND, b256, db};
use super::deadline::Progress;
use super::{PostgresStore, SCHEMA_LOCK_KEY_SQL};
use crate::chains::ChainId;
use crate::error::StoreError;
use crate::model::StoreIdentity;

/// Class id (first key) of the ownership lock; the per-transaction writer lock uses
/// `1919118188`.
const OWNER_LOCK_CLASS: i64 = 1_919_118_189;

/// A claim waits up to 2 s for a previous owner to let go (a handle being dropped, a
/// process exiting) before it reports the holder.
const CLAIM_WAIT_SQL: &str = "SET lock_timeout = '2s'";

/// The writer ownership of a store handle, shared by its clones.
#[derive(Debug, Default)]
pub(super) struct Claim {
    /// The session holding the ownership lock.
    session: tokio::sync::Mutex<Option<PgConnection>>,
    /// The `writer_epoch` this handle's claim set; 0 before any claim (claims start at 1).
    epoch: AtomicI64,
    /// The claim's lease and heartbeat, when set (see `standby`).
    pub(super) lease: super::standby::Lease,
}

impl Claim {
    /// One heartbeat of the lease: a query on the claim's session (see `standby`). A lost
    /// session is left for the next claim to notice; fencing covers the writes meanwhile.
    pub(super) async fn beat(&self) {
        let mut session = self.session.lock().await;
        let Some(conn) = session.as_mut() else { return };
        if let Err(error) = sqlx::query("SELECT 1").execute(&mut *conn).await {
            tracing::warn!(%error, "the writer lease's heartbeat failed");
        }
    }
}

impl PostgresStore {
    /// The fencing epoch of this handle's claim, if it claimed the store.
    pub(super) fn claim_epoch(&self) -> Option<i64> {
        Some(self.claim.epoch.load(Ordering::Acquire)).filter(|e| *e != 0)
    }

    /// See [`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer); bounded by the
    /// operation deadline, past which the claim's session is dropped (the server releases
    /// the lock once it sees the connection close).
    pub(super) async fn claim(&self, identity: &StoreIdentity) -> Result<(), StoreError> {
        let progress = Progress::default();
        let Some(deadline) = self.deadline else {
            return self.claim_unbounded(identity, &progress).await;
        };
        match tokio::time::timeout(deadline, self.claim_unbounded(identity, &progress)).await {
            Ok(out) => out,
            Err(_) => {
                drop(self.claim.session.lock().await.take());
                Err(StoreError::Deadline {
                    backend: BACKEND,
                    operation: "claim the writer ownership".to_owned(),
                    deadline,
                    committed: progress.committed(),
                })
            }
        }
    }

    async fn claim_unbounded(
        &self,
        identity: &StoreIdentity,
        progress: &Progress,
    ) -> Result<(), StoreError> {
        let mut slot = self.claim.session.lock().await;
        if let Some(conn) = slot.as_mut() {
            if sqlx::Connection::ping(conn).await.is_ok() {
                return check_identity(conn, identity, progress).await;
            }
            // The owning session died (a server restart, a terminated backend): its lock
            // went with it, so claim afresh.
            tracing::warn!("the writer ownership session was lost; claiming again");
            *slot = None;
        }
        let mut conn = super::deadline::acquire(&self.pool, "claim the writer ownership")
            .await?
            .detach();
        lock(&mut conn).await?;
        super::standby::arm(&mut conn, &self.claim).await?;
        let claimed = match check_identity(&mut conn, identity, progress).await {
            Ok(()) => bump_epoch(&mut conn).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(epoch) => {
                self.claim.epoch.store(epoch, Ordering::Release);
                *slot = Some(conn);
                Ok(())
            }
            Err(e) => {
                // Closing the session releases the lock; its own error adds nothing.
                let _ = conn.close().await;
                Err(e)
            }
        }
    }
}

/// A new fencing epoch for the claim holding the lock on `conn`. The update waits for a
/// changeset in flight (its checkpoint row lock), so every changeset either committed
/// before the new epoch or sees it.
impl PostgresStore {
    /// See [`StoreWriter::release_writer`](crate::StoreWriter::release_writer): unlocks
    /// the ownership lock and closes its session. The epoch stays this handle's: a later
    /// changeset through it is still checked against the checkpoint's epoch.
    pub(super) async fn release(&self) -> Result<(), StoreError> {
        let Some(mut conn) = self.claim.session.lock().await.take() else {
            return Ok(());
        };
        // The same key the claim locked (the schema's oid), so the lock is released here and
        // not only when the session closes.
        sqlx::query(AssertSqlSafe(format!(
            "SELECT pg_advisory_unlock($1::int, {SCHEMA_LOCK_KEY_SQL})"
        )))
        .bind(OWNER_LOCK_CLASS)
        .execute(&mut conn)
        .await
        .map_err(db("release the writer ownership"))?;
        // Closing the session would release the lock too; a failed close changes nothing.
        let _ = conn.close().await;
        Ok(())
    }
}

async fn bump_epoch(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "UPDATE checkpoint SET writer_epoch = writer_epoch + 1 RETURNING writer_epoch",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("bump the writer epoch"))
}

/// Takes the ownership lock on `conn`, waiting up to 2 s;
/// [`StoreError::WriterTaken`] naming the holder otherwise.
async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    let taken: bool = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT pg_try_advisory_lock($1::int, {SCHEMA_LOCK_KEY_SQL})"
    )))
    .bind(OWNER_LOCK_CLASS)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("try the writer ownership lock"))?;
    if taken {
        return Ok(());
    }
    sqlx::query(CLAIM_WAIT_SQL)
        .execute(&mut *conn)
        .await
        .map_err(db("set the claim's lock timeout"))?;
    let waited = sqlx::query(AssertSqlSafe(format!(
        "SELECT pg_advisory_lock($1::int, {SCHEMA_LOCK_KEY_SQL})"
    )))
    .bind(OWNER_LOCK_CLASS)
    .execute(&mut *conn)
    .await;
    sqlx::query("RESET lock_timeout")
        .execute(&mut *conn)
        .await
        .map_err(db("reset the lock timeout"))?;
    match waited {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
            Err(StoreError::WriterTaken {
                backend: BACKEND,
                holder: holder(conn).await?,
            })
        }
        Err(e) => Err(db("wait for the writer ownership lock")(e)),
    }
}

/// Who holds the ownership lock of the current schema: pid, `application_name`, client
/// address and connection time, from `pg_locks` and `pg_stat_activity`.
async fn holder(conn: &mut PgConnection) -> Result<String, StoreError> {
    let row = sqlx::query(
        "SELECT a.pid, COALESCE(a.application_name, '') AS app,
                COALESCE(host(a.client_addr), 'local socket') AS client,
                a.backend_start::text AS since
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = $1::bigint::oid
           AND l.objid = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
         LIMIT 1",
    )
    .bind(OWNER_LOCK_CLASS)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("look up the writer ownership lock's holder"))?;
    let Some(row) = row else {
        return Ok("a session that released it while it was being looked up".to_owned());
    };
    let get = |c: &str| row.try_get::<String, _>(c).unwrap_or_default();
    let pid: i32 = row.try_get("pid").map_err(db("read the holder's pid"))?;
    Ok(format!(
        "pid {pid}, application_name {:?}, client {}, connected since {}",
        get("app"),
        get("client"),
        get("since")
    ))
}

/// Records `identity` if the store has none; [`StoreError::IdentityMismatch`] if it has
/// another. In the same transaction, the chain is checked against the schema's row of the
/// chains catalog (migration 0017): a never-claimed store (chain 0) becomes the chain of
/// its first claim, a schema the catalog gives to another chain refuses the claim
/// ([`StoreError::Chain`]).
async fn check_identity(
    conn: &mut PgConnection,
    identity: &StoreIdentity,
    progress: &Progress,
) -> Result<(), StoreError> {
    let chain_id = identity.chain_id.map(|id| id.to_string());
    let mut tx = conn.begin().await.map_err(db("begin the claim"))?;
    let first = sqlx::query(
        "INSERT INTO store_identity (chain_id, registry) VALUES ($1::numeric, $2)
         ON CONFLICT (singleton) DO NOTHING",
    )
    .bind(chain_id.as_deref())
    .bind(identity.registry.as_slice())
    .execute(&mut *tx)
    .await
    .map_err(db("record the store identity"))?
    .rows_affected()
        == 1;
    let row = sqlx::query("SELECT chain_id::text AS chain_id, registry FROM store_identity")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("read the store identity"))?;
    let stored_chain: Option<String> = row.try_get("chain_id").map_err(db("read chain_id"))?;
    let stored_chain = stored_chain
        .map(|text| {
            text.parse::<u64>().map_err(|_| StoreError::OutOfRange {
                backend: BACKEND,
                column: "chain_id",
                value: text,
            })
        })
        .transpose()?;
    let registry: Vec<u8> = row.try_get("registry").map_err(db("read registry"))?;
    let stored = StoreIdentity {
        chain_id: stored_chain,
        registry: b256(&registry, "registry")?,
    };
    if stored != *identity {
        return Err(StoreError::IdentityMismatch {
            backend: BACKEND,
            stored,
            claimed: *identity,
        });
    }
    super::chains::claim_chain(&mut tx, ChainId::of(identity.chain_id), first).await?;
    // Past the deadline from here, the identity may have been recorded.
    progress.committing();
    tx.commit().await.map_err(db("commit the claim"))
}
