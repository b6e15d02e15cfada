//! A tower [`Layer`] that retries JSON-RPC requests with exponential backoff and full
//! jitter, and bounds each attempt with a timeout. It sits under the [`RpcClient`]
//! (see [`RpcBlockSource::http`](super::RpcBlockSource::http)), so the block source's
//! logic never sees a transient failure it could have survived.
//!
//! Retried: attempt timeouts, connection failures, HTTP 429 / 502 / 503 / 504, missing
//! batch responses, and JSON-RPC rate-limit errors (code 429, `-32005` "limit exceeded",
//! messages mentioning rate limits). Not retried here: "too many results" answers to
//! `eth_getLogs`, which the source handles by shrinking its range.
//!
//! [`RpcClient`]: alloy_rpc_client::RpcClient

use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_json_rpc::{ErrorPayload, RequestPacket, ResponsePacket, RpcError};
use alloy_transport::{TransportError, TransportErrorKind, TransportFut};
use tower::{Layer, Service};

/// Retry settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts per request, including the first (at least 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles with each attempt.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Time allowed for one attempt.
    pub timeout: Duration,
}

impl Default for RetryConfig {
    /// 8 attempts, 100 ms doubling up to 10 s, 30 s per attempt.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryConfig {
    /// The delay before retry number `attempt` (1-based): `initial_backoff × 2^(attempt-1)`,
    /// capped at `max_backoff`, then scaled by a random factor in `[0.5, 1)` (jitter) so
    /// concurrent requests do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_backoff);
        let jitter = jitter_fraction(attempt);
        cap.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// A pseudo-random number in `[0, 1)` from the clock and the attempt number; good enough
/// to spread retries of concurrent requests, no RNG dependency.
fn jitter_fraction(attempt: u32) -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) ^ (u64::from(attempt) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A tower layer that retries JSON-RPC requests with exponential backoff and full jitter
/// and bounds each attempt with a timeout. Retried: attempt timeouts, connection failures,
/// HTTP 429 / 502 / 503 / 504, missing batch responses and JSON-RPC rate-limit errors; not
/// "too many results" answers to `eth_getLogs`, which the source handles by shrinking its
/// range.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryLayer {
    config: RetryConfig,
}

impl RetryLayer {
    /// A layer with these settings.
    pub fn new(config: RetryConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            config: self.config,
        }
    }
}

/// The service produced by [`RetryLayer`].
#[derive(Clone, Debug)]
pub struct RetryService<S> {
    inner: S,
    config: RetryConfig,
}

/// Why an error response is worth retrying, if it is.
pub(crate) fn retryable_payload<E>(error: &ErrorPayload<E>) -> Option<&'static str> {
    let message = error.message.to_ascii_lowercase();
    if is_too_many_results(&message) {
        return None;
    }
    if error.code == 429
        || message.contains("rate limit")
        || message.contains("too many requests")
        || message.contains("exceeded")
        || message.contains("try again")
        || message.contains("timeout")
        || message.contains("timed out")
    {
        return Some("rate limited");
    }
    if error.code == -32005 {
        return Some("limit exceeded");
    }
    None
}

/// Whether an error message means "your `eth_getLogs` query asked for too much".
pub(crate) fn is_too_many_results(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too many results")
        || m.contains("more than")
        || m.contains("query returned")
        || m.contains("block range")
        || m.contains("range is too large")
        || m.contains("response size")
        || m.contains("too large")
        || m.contains("log response size exceeded")
}

fn retryable_error(error: &TransportError) -> Option<&'static str> {
    match error {
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http) if http.status == 429 => Some("HTTP 429"),
            TransportErrorKind::HttpError(http) if matches!(http.status, 502..=504) => {
                Some("HTTP 5xx")
            }
            TransportErrorKind::HttpError(_) => None,
            TransportErrorKind::MissingBatchResponse(_) => Some("missing batch response"),
            // Connection refused / reset, DNS, body read errors: the node may be restarting.
            _ => Some("transport failure"),
        },
        RpcError::ErrorResp(payload) => retryable_payload(payload),
        _ => None,
    }
}

fn retryable_response(response: &ResponsePacket) -> Option<&'static str> {
    response.iter_errors().find_map(retryable_payload)
}

impl<S> Service<RequestPacket> for RetryService<S>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let mut inner = self.inner.clone();
        let config = self.config;
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                let outcome = tokio::time::timeout(config.timeout, inner.call(request.clone()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(TransportErrorKind::custom_str(&format!(
                            "request timed out after {:?}",
                            config.timeout
                        )))
                    });
                let reason = match &outcome {
                    Ok(response) => retryable_response(response),
                    Err(RpcError::Transport(TransportErrorKind::Custom(e)))
                        if e.to_string().starts_with("request timed out") =>
                    {
                        Some("timeout")
                    }
                    Err(error) => retryable_error(error),
                };
                let Some(reason) = reason else {
                    return outcome;
                };
                if attempt >= config.max_attempts.max(1) {
                    tracing::warn!(attempt, reason, methods = ?request.method_names().collect::<Vec<_>>(), "JSON-RPC request failed; giving up");
                    return outcome;
                }
                let delay = config.backoff(attempt);
                tracing::warn!(
                    attempt,
                    reason,
                    delay_ms = delay.as_millis() as u64,
                    methods = ?request.method_names().collect::<Vec<_>>(),
                    "JSON-RPC request failed; retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn payload(code: i64, message: &'static str) -> ErrorPayload<()> {
        ErrorPayload {
            code,
            message: Cow::Borrowed(message),
            data: None,
        }
    }

    #[test]
    fn classifies_rate_limits_and_result_limits() {
        assert!(retryable_payload(&payload(429, "Too Many Requests")).is_some());
        assert!(retryable_payload(&payload(-32005, "daily request count exceeded")).is_some());
        assert!(
            retryable_payload(&payload(-32005, "query returned more than 10000 results")).is_none()
        );
        assert!(is_too_many_results(
            "query returned more than 10000 results"
        ));
        assert!(retryable_payload(&payload(-32000, "execution reverted")).is_none());
        let http = TransportErrorKind::http_error(429, String::new());
        assert!(retryable_error(&http).is_some());
        assert!(retryable_error(&TransportErrorKind::http_error(400, String::new())).is_none());
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let c = RetryConfig {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            timeout: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let b1 = c.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b5 = c.backoff(5);
            assert!(b5 >= Duration::from_millis(150) && b5 <= Duration::from_millis(300));
        }
    }
}
