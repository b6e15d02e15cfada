//! Connecting: the connection string (URL or `key=value`), client-side timeouts, the eager
//! first connection (so a failure reports its cause), redaction, and the typed timeouts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Executor, PgPool};

use super::codec::BACKEND;
use super::ident::{quote_ident, schema_problem};
use crate::error::{Committed, StoreError};

/// How a [`PostgresStore`](super::PostgresStore) connects. The server-side timeouts
/// (`statement_timeout`, `lock_timeout`) are set as session defaults at connection start-up
/// (`options=-c …`), so they hold for every statement of every pooled connection, the
/// migration toolkit's included; the client-side
/// [`operation_deadline`](Self::operation_deadline) bounds each store operation even when
/// the server cannot enforce its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Connections in the pool. Default 8.
    pub max_connections: u32,
    /// How long a statement waits for a pooled connection. The first connection is opened
    /// eagerly when connecting, so an unreachable server, a full `max_connections` or an
    /// unusable schema fails at once with its cause rather than after this. Default 10 s.
    pub acquire_timeout: Duration,
    /// `statement_timeout`: the server cancels a statement running longer (its transaction
    /// rolls back, [`StoreError::StatementTimeout`]). Covers a frozen writer and a
    /// runaway `verify`; raise it for a full verify of a very large log. Migrations run
    /// without it. `None`: the server's setting. Default 120 s.
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout`: a statement waiting longer for a lock (a row, a table, the writer
    /// lock) gives up with [`StoreError::LockTimeout`]. Default 10 s.
    pub lock_timeout: Option<Duration>,
    /// Client-side deadline of each [`PostgresStore`](super::PostgresStore) operation (an
    /// apply with its commit, a read, a claim, the window), pool acquire included: past it
    /// the client stops waiting, discards the connection and reports
    /// [`StoreError::Deadline`] (saying whether a commit was in flight). The server's own
    /// timeouts cannot fire on a server that does not run (frozen, a dead host behind a
    /// live TCP path); this one does.
    ///
    /// It must exceed `statement_timeout` (connecting refuses it otherwise): a live server
    /// always cancels a slow statement first, with the precise typed error and nothing
    /// committed, so the deadline only fires when the server cannot answer at all. A store
    /// operation is a few statements, each far below the statement timeout. `None`: no
    /// client deadline. Default 150 s (the default statement timeout plus 30 s).
    pub operation_deadline: Option<Duration>,
    /// Create the schema when it is missing (`true`, the default), or refuse a missing one
    /// with [`StoreError::Config`] (`false`: for tools that must not create a store by a
    /// typo, e.g. `verify`).
    pub create_schema: bool,
    /// `application_name` of every connection (shown in `pg_stat_activity`); `None`: the
    /// connection string's, if any.
    pub application_name: Option<String>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(120)),
            lock_timeout: Some(Duration::from_secs(10)),
            operation_deadline: Some(Duration::from_secs(150)),
            create_schema: true,
            application_name: None,
        }
    }
}

/// `url` (a `postgres://` URL or a libpq `key=value` string) described without any secret,
/// for messages: `postgres://user@host:port/database`. The password (in the user info, a
/// `?password=` parameter or a `password=` pair) and every other parameter are left out.
pub fn redact_url(url: &str) -> String {
    match parse_options(url) {
        Ok(options) => describe(&options),
        Err(_) if url.contains("://") => "a Postgres URL that does not parse".to_owned(),
        Err(_) => "a key=value connection string that does not parse".to_owned(),
    }
}

fn describe(o: &PgConnectOptions) -> String {
    let host = o
        .get_socket()
        .map_or_else(|| o.get_host().to_owned(), |s| s.display().to_string());
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        host,
        o.get_port(),
        o.get_database().unwrap_or_default()
    )
}

/// Parses a `postgres://` URL (sqlx) or a libpq `key=value` string. The error never holds
/// the input (it may hold a password).
fn parse_options(url: &str) -> Result<PgConnectOptions, String> {
    if let Some((scheme, _)) = url.split_once("://") {
        if !scheme.eq_ignore_ascii_case("postgres") && !scheme.eq_ignore_ascii_case("postgresql") {
            // Only a scheme-like prefix is repeated: anything else may be part of a secret.
            let plain = !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            return Err(if plain {
                format!("scheme {scheme}:// is not postgres:// or postgresql://")
            } else {
                "the URL's scheme is not postgres:// or postgresql://".to_owned()
            });
        }
        return PgConnectOptions::from_str(url).map_err(|e| e.to_string());
    }
    let mut options = PgConnectOptions::new_without_pgpass();
    let pairs = parse_dsn(url)?;
    if pairs.is_empty() {
        return Err("empty connection string".to_owned());
    }
    for (key, value) in pairs {
        options = match key.as_str() {
            "host" | "hostaddr" if value.starts_with('/') => options.socket(&value),
            "host" | "hostaddr" => options.host(&value),
            "port" => options.port(value.parse().map_err(|_| "port is not a number")?),
            "user" => options.username(&value),
            "password" => options.password(&value),
            "dbname" => options.database(&value),
            "sslmode" => options
                .ssl_mode(PgSslMode::from_str(&value).map_err(|_| "sslmode is not a libpq mode")?),
            "sslrootcert" => options.ssl_root_cert(&value),
            "application_name" => options.application_name(&value),
            other => return Err(format!("unsupported connection parameter {other:?}")),
        };
    }
    Ok(options)
}

/// libpq's `key = value` pairs: values bare or single-quoted with `\'` and `\\` escapes.
fn parse_dsn(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{key:?} has no `=`"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// The options of `url` with `config`'s timeouts as session defaults.
fn options(url: &str, config: &PostgresConfig) -> Result<PgConnectOptions, StoreError> {
    let mut options = parse_options(url).map_err(|reason| StoreError::Config {
        what: "Postgres connection string",
        value: redact_url(url),
        reason,
    })?;
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    if let Some(t) = config.statement_timeout {
        options = options.options([("statement_timeout", ms(t))]);
    }
    if let Some(t) = config.lock_timeout {
        options = options.options([("lock_timeout", ms(t))]);
    }
    if let Some(name) = &config.application_name {
        options = options.application_name(name);
    }
    Ok(options)
}

/// A pool over `url`, every connection's `search_path` set to `schema` (created if missing)
/// when one is given. One connection is opened (and the schema prepared) before the pool is
/// built, so a refused connection, a full server or an unusable schema is reported with
/// its cause instead of as a pool timeout.
pub(super) async fn connect_pool(
    url: &str,
    schema: Option<&str>,
    config: &PostgresConfig,
) -> Result<PgPool, StoreError> {
    connect_pool_with(url, schema, config, &[]).await
}

/// [`connect_pool`], with `session` statements (e.g. `SET default_transaction_read_only =
/// on`) run on every connection after it selects the schema, the first one included.
pub(super) async fn connect_pool_with(
    url: &str,
    schema: Option<&str>,
    config: &PostgresConfig,
    session: &[&str],
) -> Result<PgPool, StoreError> {
    crate::tls::ensure_crypto_provider();
    if let Some(schema) = schema
        && let Some(reason) = schema_problem(schema)
    {
        return Err(StoreError::Config {
            what: "schema name",
            value: schema.to_owned(),
            reason,
        });
    }
    if let (Some(deadline), Some(statement)) = (config.operation_deadline, config.statement_timeout)
        && deadline <= statement
    {
        return Err(StoreError::Config {
            what: "operation deadline",
            value: format!("{deadline:?}"),
            reason: format!(
                "must exceed the statement timeout ({statement:?}), so that a live server cancels a slow statement first"
            ),
        });
    }
    let options = options(url, config)?;
    let target = match schema {
        Some(s) => format!("{} (schema {s})", describe(&options)),
        None => describe(&options),
    };
    // The first connection creates a missing schema (under a lock); the pool's connections
    // only select it.
    let setup: Vec<String> = schema
        .map(|s| format!("SET search_path TO {}", quote_ident(s)))
        .into_iter()
        .chain(session.iter().map(|s| (*s).to_owned()))
        .collect();
    let first = first_connection(&options, schema, config, &setup, &target);
    match config.operation_deadline {
        Some(deadline) => {
            tokio::time::timeout(deadline, first)
                .await
                .map_err(|_| StoreError::Deadline {
                    backend: BACKEND,
                    operation: format!("connect to {target}"),
                    deadline,
                    committed: Committed::Nothing,
                })??
        }
        None => first.await?,
    }
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(config.acquire_timeout)
        .after_connect(move |conn, _| {
            let setup = setup.clone();
            Box::pin(async move {
                for sql in setup {
                    conn.execute(AssertSqlSafe(sql)).await?;
                }
                Ok(())
            })
        })
        .connect_lazy_with(options);
    Ok(pool)
}

/// Opens one connection and prepares the schema on it (see [`connect_pool`]), then closes
/// it: a refused connection, a full server or an unusable schema fails here with its cause.
async fn first_connection(
    options: &PgConnectOptions,
    schema: Option<&str>,
    config: &PostgresConfig,
    setup: &[String],
    target: &str,
) -> Result<(), StoreError> {
    let mut first = PgConnection::connect_with(options)
        .await
        .map_err(|e| classify(format!("connect to {target}"), e))?;
    if let Some(s) = schema
        && config.create_schema
    {
        if let Err(e) = create_schema(&mut first, s, target).await {
            let _ = first.close().await;
            return Err(e);
        }
    } else if let Some(s) = schema {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(s)
                .fetch_one(&mut first)
                .await
                .map_err(|e| classify(format!("look up schema {s} on {target}"), e))?;
        if !exists {
            let _ = first.close().await;
            return Err(StoreError::Config {
                what: "schema name",
                value: s.to_owned(),
                reason: format!(
                    "no such schema on {} (create the store with `migrate`, or check the name)",
                    describe(options)
                ),
            });
        }
    }
    for sql in setup {
        first
            .execute(AssertSqlSafe(sql.clone()))
            .await
            .map_err(|e| classify(format!("prepare {target}"), e))?;
    }
    // A failed goodbye does not matter: the connection worked.
    let _ = first.close().await;
    Ok(())
}

/// Class id (first key) of the lock serializing the creation of a schema; the second key
/// is `hashtext` of its name (a collision only makes two creations wait for each other).
const CREATE_SCHEMA_LOCK_CLASS: i32 = 1_919_118_190;

/// Creates `schema` unless it exists, in a transaction holding an advisory lock on its
/// name: concurrent first starts on a new schema wait for each other instead of one of
/// them failing with a unique violation of `pg_namespace` (`CREATE SCHEMA IF NOT EXISTS`
/// alone races). An existing schema is left alone, so a role without the database's CREATE
/// privilege can connect to it.
pub(super) async fn create_schema(
    conn: &mut PgConnection,
    schema: &str,
    target: &str,
) -> Result<(), StoreError> {
    let failed = |e| classify(format!("create schema {schema} on {target}"), e);
    let mut tx = conn.begin().await.map_err(failed)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(CREATE_SCHEMA_LOCK_CLASS)
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
    if !exists {
        tx.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA {}",
            quote_ident(schema)
        )))
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

/// Cancels the running statement of every session tagged `application_name` (see
/// [`PostgresConfig::application_name`]) on the server of `url`, through a connection of
/// its own: an interrupted tool leaves nothing running. Returns how many were signalled.
pub async fn cancel_sessions(url: &str, application_name: &str) -> Result<u64, StoreError> {
    crate::tls::ensure_crypto_provider();
    let options = options(url, &PostgresConfig::default())?;
    let target = describe(&options);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| classify(format!("connect to {target}"), e))?;
    let cancelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(application_name)
    .fetch_one(&mut conn)
    .await
    .map_err(|e| classify(format!("cancel the statements of {application_name}"), e))?;
    let _ = conn.close().await;
    Ok(u64::try_from(cancelled).unwrap_or(0))
}

/// Whether the server of `url` answers: a fresh connection of its own runs `SELECT 1` and
/// is closed. For a liveness watchdog beside long work on other connections (the CLI's
/// `--unresponsive-timeout`): a frozen server never answers, so bound it with a timeout; a
/// busy one answers at once even while a long statement runs elsewhere.
pub async fn ping(url: &str) -> Result<(), StoreError> {
    crate::tls::ensure_crypto_provider();
    let options = options(url, &PostgresConfig::default())?;
    let target = describe(&options);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| classify(format!("connect to {target}"), e))?;
    conn.execute("SELECT 1")
        .await
        .map_err(|e| classify(format!("ping {target}"), e))?;
    let _ = conn.close().await;
    Ok(())
}

/// SQLSTATE `lock_not_available`: a lock wait hit `lock_timeout` (or `NOWAIT`).
pub(super) fn is_lock_timeout(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("55P03"))
}

/// SQLSTATE `query_canceled` raised by `statement_timeout` (not by a cancel request).
fn is_statement_timeout(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("57014") && d.message().contains("statement timeout")
    })
}

/// A sqlx error as the [`StoreError`] it is: a lock or statement timeout typed, anything
/// else [`StoreError::Backend`] with the sqlx error (and its cause) as the source.
pub(crate) fn classify(operation: String, e: sqlx::Error) -> StoreError {
    classify_timeout(operation, e).unwrap_or_else(|(operation, e)| StoreError::Backend {
        backend: BACKEND,
        operation,
        source: Box::new(e),
    })
}

/// A lock or statement timeout as its typed [`StoreError`]; any other error given back.
pub(crate) fn classify_timeout(
    operation: String,
    e: sqlx::Error,
) -> Result<StoreError, (String, sqlx::Error)> {
    if is_lock_timeout(&e) {
        Ok(StoreError::LockTimeout {
            backend: BACKEND,
            operation,
            lock: "a lock held by another session".to_owned(),
            holder: None,
            source: Box::new(e),
        })
    } else if is_statement_timeout(&e) {
        Ok(StoreError::StatementTimeout {
            backend: BACKEND,
            operation,
            source: Box::new(e),
        })
    } else {
        Err((operation, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_every_form_of_password() {
        for url in [
            "postgres://alice:s3cr3t@db.example:5433/prod",
            "postgres://alice@db.example:5433/prod?password=s3cr3t",
            "postgres://alice@db.example:5433/prod?sslmode=disable&password=s3cr3t&application_name=x",
            "postgresql://alice:s3cr3t@db.example:5433/prod?password=s3cr3t",
            "host=db.example port=5433 user=alice password=s3cr3t dbname=prod",
            "host=db.example port=5433 user=alice password = 's3cr3t' dbname=prod",
            "host=db.example port=5433 user=alice password='s3\\'cr3t' dbname=prod",
        ] {
            let r = redact_url(url);
            assert!(!r.contains("s3cr3t") && !r.contains("cr3t"), "{url} -> {r}");
            assert_eq!(r, "postgres://alice@db.example:5433/prod", "{url}");
        }
        for bad in [
            "postgres://alice:s3cr3t@[bad/prod",
            "host=db password='s3cr3t",
            "host=db password=s3cr3t sslmode=bogus",
        ] {
            let r = redact_url(bad);
            assert!(!r.contains("s3cr3t"), "{bad} -> {r}");
        }
    }

    #[test]
    fn only_postgres_schemes_are_accepted() {
        for url in ["postgres://u@h/d", "postgresql://u@h/d", "POSTGRES://u@h/d"] {
            assert!(parse_options(url).is_ok(), "{url}");
        }
        for url in [
            "mysql://u:s3cr3t@h/d",
            "redis://h:6379",
            "http://h/d",
            "u:s3cr3t@h://d",
        ] {
            let e = parse_options(url).expect_err(url);
            assert!(
                e.contains("is not postgres://") && !e.contains("s3cr3t"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn dsn_values_are_parsed_like_libpq() {
        let pairs = parse_dsn(" host = h  password='a b\\'c\\\\' dbname=d ").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("host".into(), "h".into()),
                ("password".into(), "a b'c\\".into()),
                ("dbname".into(), "d".into())
            ]
        );
        let o = parse_options("host=h port=6000 user=u password=p dbname=d").unwrap();
        assert_eq!(
            (
                o.get_host(),
                o.get_port(),
                o.get_username(),
                o.get_database()
            ),
            ("h", 6000, "u", Some("d"))
        );
        assert!(parse_dsn("host").is_err());
    }
}
