//! The cluster cache's connection, and what it does when the cluster moves under it.
//!
//! redis-rs' `ClusterConnection` follows `MOVED`/`ASK` of plain commands and then refreshes
//! its slot map, but not those of a transaction: the `MOVED`s inside a `MULTI`/`EXEC` come
//! back as one `EXECABORT`, which it neither follows nor takes as a sign of a stale slot map.
//! After a failover its map keeps the dead master for the slots of the promoted replica; a
//! transaction routed there goes to a random node, is refused with `MOVED`, and nothing ever
//! refreshes the map. Its recovery can also stall (a slot refresh that never completes while
//! the dead node is being reconnected), and then every command times out. So [`Link::run`]
//! handles it here: a redirected transaction lets the client see the redirection on a plain
//! single-key command of the slot (which it follows, refreshing its slot map) and is sent
//! again; what still fails is sent again on a new `ClusterConnection`, which reads the
//! cluster's slots afresh from the seed nodes.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::error::ClusterError;

/// How many times [`Link::run`] sends an operation: once, once after the client saw the
/// redirection, once on a new connection.
pub(super) const ATTEMPTS: u32 = 3;

/// What a failed attempt says about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// `MOVED`/`ASK` (alone, or in a transaction's `EXECABORT`): the slot map is stale.
    Redirected {
        /// `host:port` the redirection names.
        node: String,
        /// An `ASK`.
        ask: bool,
    },
    /// No answer, or the cluster cannot serve the slot now.
    Unavailable,
}

/// Why `error` failed, if the connection or the cluster's state may be the reason (`None`:
/// the server refused the command itself; sending it again would not help).
pub(super) fn cause(error: &RedisError) -> Option<Cause> {
    match error.kind() {
        ErrorKind::Server(ServerErrorKind::ExecAbort) => {
            let errors = error.clone().into_server_errors()?;
            let mut unavailable = false;
            for (_, e) in errors.iter() {
                let inner = RedisError::from(e.clone());
                match cause(&inner) {
                    Some(redirected @ Cause::Redirected { .. }) => return Some(redirected),
                    Some(Cause::Unavailable) => unavailable = true,
                    None => {}
                }
            }
            unavailable.then_some(Cause::Unavailable)
        }
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask) => {
            let ask = error.kind() == ErrorKind::Server(ServerErrorKind::Ask);
            let node = error
                .redirect_node()
                .map_or_else(String::new, |(n, _)| n.to_owned());
            Some(Cause::Redirected { node, ask })
        }
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::BusyLoading,
        )
        | ErrorKind::Io
        | ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Parse => Some(Cause::Unavailable),
        _ => None,
    }
}

/// The cache's current `ClusterConnection`, numbered, and the client to open a new one.
pub(super) struct Link {
    client: ClusterClient,
    seeds: String,
    /// Bound on opening a new connection (the connect and the slot discovery).
    open_timeout: Duration,
    current: Mutex<(u64, ClusterConnection)>,
    /// Held while a new connection is opened, so concurrent failures open one.
    reopening: tokio::sync::Mutex<()>,
}

impl Link {
    /// Opens the first connection through `client` (`seeds`: its nodes, for messages).
    pub(super) async fn open(
        client: ClusterClient,
        seeds: String,
        open_timeout: Duration,
    ) -> Result<Self, ClusterError> {
        let conn = open(&client, &seeds, open_timeout).await?;
        Ok(Self {
            client,
            seeds,
            open_timeout,
            current: Mutex::new((0, conn)),
            reopening: tokio::sync::Mutex::new(()),
        })
    }

    /// The current connection and its number (how many times it was replaced).
    pub(super) fn current(&self) -> (u64, ClusterConnection) {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Replaces connection number `seen` with a new one (unless another caller already
    /// did). The old one's in-flight requests end with their timeouts.
    async fn reopen(&self, seen: u64) -> Result<(), ClusterError> {
        let _one = self.reopening.lock().await;
        if self.current().0 != seen {
            return Ok(());
        }
        let conn = open(&self.client, &self.seeds, self.open_timeout).await?;
        let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *guard = (seen + 1, conn);
        Ok(())
    }

    /// Runs `op` on the current connection, up to [`ATTEMPTS`] times while it fails for
    /// a [`Cause`]: after a redirection, first a plain `TYPE probe_key` (a single-key
    /// command of the operation's slot: the client follows its redirection and refreshes
    /// its slot map), then on a new connection. `operation` and `slot` name it in errors.
    pub(super) async fn run<T, F, Fut>(
        &self,
        operation: &(dyn Fn() -> String + Sync),
        slot: Option<u16>,
        probe_key: Option<&str>,
        op: F,
    ) -> Result<T, ClusterError>
    where
        F: Fn(ClusterConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (number, conn) = self.current();
            let error = match op(conn.clone()).await {
                Ok(out) => return Ok(out),
                Err(error) => error,
            };
            let Some(cause) = cause(&error) else {
                return Err(ClusterError::Refused {
                    operation: operation(),
                    source: error,
                });
            };
            if attempt >= ATTEMPTS {
                return Err(match (cause, slot) {
                    (Cause::Redirected { node, ask }, Some(slot)) => ClusterError::Redirected {
                        slot,
                        node,
                        ask,
                        attempts: attempt,
                    },
                    _ => ClusterError::Unavailable {
                        operation: operation(),
                        attempts: attempt,
                        source: error,
                    },
                });
            }
            match (&cause, probe_key) {
                (Cause::Redirected { .. }, Some(key)) if attempt == 1 => {
                    let mut conn = conn;
                    let probe: redis::RedisResult<redis::Value> =
                        redis::cmd("TYPE").arg(key).query_async(&mut conn).await;
                    if probe.is_err() {
                        self.reopen(number).await?;
                    }
                }
                _ => self.reopen(number).await?,
            }
        }
    }
}

/// A new connection through `client`, bounded by `timeout`.
async fn open(
    client: &ClusterClient,
    seeds: &str,
    timeout: Duration,
) -> Result<ClusterConnection, ClusterError> {
    let reconnect = |source| ClusterError::Reconnect {
        seeds: seeds.to_owned(),
        source,
    };
    match tokio::time::timeout(timeout, client.get_async_connection()).await {
        Ok(conn) => conn.map_err(reconnect),
        Err(_) => Err(reconnect(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection and slot map within {timeout:?}"),
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(text: &str) -> RedisError {
        let value = redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap();
        match value {
            redis::Value::ServerError(e) => e.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redirections_and_cluster_states_are_causes_other_refusals_not() {
        assert_eq!(
            cause(&server_error("MOVED 3999 127.0.0.1:6381")),
            Some(Cause::Redirected {
                node: "127.0.0.1:6381".into(),
                ask: false
            })
        );
        assert_eq!(
            cause(&server_error("ASK 3999 127.0.0.1:6381")),
            Some(Cause::Redirected {
                node: "127.0.0.1:6381".into(),
                ask: true
            })
        );
        assert_eq!(
            cause(&server_error("CLUSTERDOWN The cluster is down")),
            Some(Cause::Unavailable)
        );
        assert_eq!(
            cause(&server_error("WRONGTYPE Operation against a key")),
            None
        );
        let timed_out = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        assert_eq!(cause(&timed_out), Some(Cause::Unavailable));
    }
}
