//! Connection settings of the Redis cache, secret-free descriptions of its URL, and error
//! texts of a bounded length.

use std::path::PathBuf;
use std::time::Duration;

use redis::IntoConnectionInfo;

use crate::error::{BoxError, CacheError};

/// How a [`RedisCollateralCache`](super::RedisCollateralCache) connects. A frozen or dead
/// server turns into errors after these bounds instead of stalling ingestion; the
/// connection manager reconnects by itself when the server is back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisCacheConfig {
    /// Bound on opening a connection (each attempt). Default 1 s.
    pub connection_timeout: Duration,
    /// Bound on each command or transaction's reply. A refresh of 100,000 users is one
    /// transaction of well under a second, so the default leaves a wide margin. Default 5 s.
    pub response_timeout: Duration,
    /// Reconnection attempts after a lost connection. Default 2.
    pub retries: usize,
    /// The longest pause between two reconnection attempts. Default 500 ms.
    pub max_retry_delay: Duration,
    /// A PEM file of the CA certificate(s) that signed the server's certificate, trusted
    /// instead of the system's roots for a `rediss://` URL (a private CA, a self-signed
    /// test server). Needs the `tls` feature. Default `None`: the system's roots.
    pub tls_root_cert: Option<PathBuf>,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(5),
            retries: 2,
            max_retry_delay: Duration::from_millis(500),
            tls_root_cert: None,
        }
    }
}

/// `url` described without its password, for messages: `redis://[user@]host:port/db`
/// (`rediss://` for TLS).
pub fn redact_redis_url(url: &str) -> String {
    match url.into_connection_info() {
        Ok(info) => {
            let scheme = if url.starts_with("rediss://") || url.starts_with("valkeys://") {
                "rediss"
            } else if url.starts_with("redis+unix://") || url.starts_with("unix://") {
                "unix"
            } else {
                "redis"
            };
            let redis = info.redis_settings();
            let user = redis
                .username()
                .map_or_else(String::new, |u| format!("{u}@"));
            format!("{scheme}://{user}{}/{}", info.addr(), redis.db())
        }
        // Not usable here (e.g. `rediss://` without the `tls` feature): the scheme and what
        // follows the user info, never the user info itself.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                let host = host.split(['?', '#']).next().unwrap_or_default();
                format!("{scheme}://{host}")
            }
            None => "a Redis URL that does not parse".to_owned(),
        },
    }
}

/// Refuses a key prefix that is empty or uses more than `[A-Za-z0-9_:-]` (it is part of every
/// key and of the keys' hash tags).
pub(super) fn check_prefix(prefix: &str) -> Result<(), CacheError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-:".contains(c);
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        return Err(CacheError::Backend {
            backend: super::BACKEND,
            operation: format!("use key prefix {prefix:?}"),
            source: "prefix must be non-empty and use only [A-Za-z0-9_:-]".into(),
        });
    }
    Ok(())
}

/// A client for `url`, trusting `config`'s CA file when one is given.
pub(super) fn client(url: &str, config: &RedisCacheConfig) -> Result<redis::Client, CacheError> {
    let target = redact_redis_url(url);
    let Some(path) = &config.tls_root_cert else {
        return redis::Client::open(url).map_err(backend(format!("open {target}")));
    };
    let operation = format!(
        "use the TLS root certificate {} for {target}",
        path.display()
    );
    #[cfg(feature = "tls")]
    {
        let pem = std::fs::read(path).map_err(|e| CacheError::Backend {
            backend: super::BACKEND,
            operation: operation.clone(),
            source: Box::new(e),
        })?;
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        redis::Client::build_with_tls(url, certificates).map_err(backend(operation))
    }
    #[cfg(not(feature = "tls"))]
    Err(CacheError::Backend {
        backend: super::BACKEND,
        operation,
        source: "the crate was built without the `tls` feature".into(),
    })
}

/// The longest error text kept from a Redis error. A failed transaction's error can list
/// every queued command (a 100,000-user put: megabytes in one log line).
pub(super) const MAX_ERROR_TEXT: usize = 512;

/// A Redis error whose text was cut to [`MAX_ERROR_TEXT`] bytes.
#[derive(Debug)]
pub(super) struct TruncatedError {
    text: String,
}

impl std::fmt::Display for TruncatedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for TruncatedError {}

/// `error` as a source error of bounded text: itself when short, else its text cut at
/// [`MAX_ERROR_TEXT`] bytes with the length left out said.
pub(super) fn bounded(error: redis::RedisError) -> BoxError {
    let text = error.to_string();
    if text.len() <= MAX_ERROR_TEXT {
        return Box::new(error);
    }
    let mut cut = MAX_ERROR_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Box::new(TruncatedError {
        text: format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    })
}

/// Maps a Redis error to [`CacheError::Backend`] naming the operation, its text bounded.
pub(super) fn backend(
    operation: impl Into<String>,
) -> impl FnOnce(redis::RedisError) -> CacheError {
    let operation = operation.into();
    move |source| CacheError::Backend {
        backend: super::BACKEND,
        operation,
        source: bounded(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_the_password() {
        assert_eq!(
            redact_redis_url("redis://:hunter2@10.0.0.1:6399/3"),
            "redis://10.0.0.1:6399/3"
        );
        assert_eq!(
            redact_redis_url("redis://bob:hunter2@cache.example:6399"),
            "redis://bob@cache.example:6399/0"
        );
        let tls = redact_redis_url("rediss://bob:hunter2@cache.example:6380/1");
        assert!(
            tls.starts_with("rediss://") && tls.contains("cache.example:6380"),
            "{tls}"
        );
        assert!(!tls.contains("hunter2"), "{tls}");
        assert!(!redact_redis_url("redis://:hunter2@[bad").contains("hunter2"));
        assert!(!redact_redis_url("redis://127.0.0.1:6379/0?password=hunter2").contains("hunter2"));
    }

    #[test]
    fn long_error_texts_are_cut() {
        let long =
            redis::RedisError::from((redis::ErrorKind::Io, "boom", "é".repeat(2 * MAX_ERROR_TEXT)));
        let text = bounded(long).to_string();
        assert!(text.len() < MAX_ERROR_TEXT + 40, "{}", text.len());
        assert!(text.starts_with("boom") && text.contains("more bytes"));
        let short = redis::RedisError::from((redis::ErrorKind::Io, "short"));
        let text = bounded(short).to_string();
        assert!(
            text.starts_with("short") && !text.contains("more bytes"),
            "{text}"
        );
    }
}
