//! The client-side deadline of every [`PostgresStore`] operation
//! ([`PostgresConfig::operation_deadline`](super::PostgresConfig::operation_deadline)): one
//! place that takes a pooled connection, runs the operation on it under the deadline, and
//! discards the connection when the deadline passes.
//!
//! The server's `statement_timeout` and `lock_timeout` need a server that runs; a frozen
//! one (SIGSTOP, a VM paused, a host gone behind a half-open TCP connection) answers
//! nothing, and without this the writer would wait forever.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryScalar};
use sqlx::{FromRow, PgConnection, PgPool, Postgres};

use super::PostgresStore;
use super::codec::{BACKEND, db};
use crate::error::{Committed, StoreError};

/// How far an operation got, for the deadline's error: whether its commit was sent.
#[derive(Debug, Default)]
pub(super) struct Progress {
    committing: AtomicBool,
}

impl Progress {
    /// The commit is about to be sent: a deadline from now on leaves the outcome unknown.
    pub(super) fn committing(&self) {
        self.committing.store(true, Ordering::Release);
    }

    pub(super) fn committed(&self) -> Committed {
        if self.committing.load(Ordering::Acquire) {
            Committed::Unknown
        } else {
            Committed::Nothing
        }
    }
}

/// A pooled connection that is closed instead of returned to the pool unless the operation
/// on it finished. An operation cut off by the deadline leaves its connection mid-exchange
/// (a query sent, its answer unread): the pool's check on return would wait on the frozen
/// server, and a connection that recovers later may still carry the old exchange.
struct Lease {
    conn: PoolConnection<Postgres>,
    finished: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.finished {
            // Closed in the background (bounded by sqlx's close timeout); the pool's count
            // drops at once, so a replacement can be opened.
            self.conn.close_on_drop();
        }
    }
}

/// A pooled connection for `operation`. A wait past the pool's `acquire_timeout` is
/// [`StoreError::Deadline`] naming the acquire: no connection answered in time (the pool
/// checks an idle connection before handing it out, and a frozen server never answers
/// that check), or every connection stayed busy.
pub(super) async fn acquire(
    pool: &PgPool,
    operation: &str,
) -> Result<PoolConnection<Postgres>, StoreError> {
    let what = format!("acquire a connection to {operation}");
    match pool.acquire().await {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::PoolTimedOut) => Err(StoreError::Deadline {
            backend: BACKEND,
            operation: what,
            deadline: pool.options().get_acquire_timeout(),
            committed: Committed::Nothing,
        }),
        Err(e) => Err(db(what)(e)),
    }
}

impl PostgresStore {
    /// Runs `work` on one pooled connection ([`acquire`]), the acquire included, under the
    /// operation deadline. Past it: [`StoreError::Deadline`] naming `operation`, with
    /// [`Committed::Unknown`] if `work` had called [`Progress::committing`], and the
    /// connection is discarded. Without a deadline, `work` runs unbounded (the server's
    /// own timeouts still apply).
    pub(super) async fn bounded<T>(
        &self,
        operation: &str,
        work: impl AsyncFnOnce(&mut PgConnection, &Progress) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let progress = Progress::default();
        let run = async {
            let conn = acquire(&self.pool, operation).await?;
            let mut lease = Lease {
                conn,
                finished: false,
            };
            let out = work(&mut lease.conn, &progress).await;
            lease.finished = true;
            out
        };
        let Some(deadline) = self.deadline else {
            return run.await;
        };
        match tokio::time::timeout(deadline, run).await {
            Ok(out) => out,
            Err(_) => {
                let committed = progress.committed();
                tracing::warn!(operation, ?deadline, %committed, "Postgres did not answer within the deadline; connection discarded");
                Err(StoreError::Deadline {
                    backend: BACKEND,
                    operation: operation.to_owned(),
                    deadline,
                    committed,
                })
            }
        }
    }
}

/// A read statement run through [`PostgresStore::bounded`]:
/// `.fetch_all(&self.pool).await.map_err(db(what))` becomes
/// `.fetch_bounded(self, what).await`.
pub(super) trait FetchBounded: Sized + Send {
    /// What one row decodes to.
    type Row: Send;

    /// Fetches every row on a pooled connection under `store`'s deadline; an error names
    /// `operation`.
    fn fetch_bounded(
        self,
        store: &PostgresStore,
        operation: impl Into<String> + Send,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
}

impl FetchBounded for Query<'_, Postgres, PgArguments> {
    type Row = PgRow;

    async fn fetch_bounded(
        self,
        store: &PostgresStore,
        operation: impl Into<String> + Send,
    ) -> Result<Vec<PgRow>, StoreError> {
        let operation = operation.into();
        store
            .bounded(&operation, async |conn, _| {
                self.fetch_all(conn).await.map_err(db(operation.as_str()))
            })
            .await
    }
}

impl<O> FetchBounded for QueryScalar<'_, Postgres, O, PgArguments>
where
    O: Send + Unpin,
    (O,): Send + Unpin + for<'r> FromRow<'r, PgRow>,
{
    type Row = O;

    async fn fetch_bounded(
        self,
        store: &PostgresStore,
        operation: impl Into<String> + Send,
    ) -> Result<Vec<O>, StoreError> {
        let operation = operation.into();
        store
            .bounded(&operation, async |conn, _| {
                self.fetch_all(conn).await.map_err(db(operation.as_str()))
            })
            .await
    }
}
