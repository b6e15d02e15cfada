//! Which node errors are transient: [`NodeErrorPolicy`], a [`RetryPolicy`] for alloy's
//! [`RetryBackoffLayer`], and the few answers the source itself acts on ("too many results",
//! "unknown block").
//!
//! The retrying, the backoff and the rate-limit budget are alloy's; this file only says
//! which errors are worth another attempt.

use std::time::Duration;

use alloy_json_rpc::ErrorPayload;
use alloy_transport::layers::{RateLimitRetryPolicy, RetryBackoffLayer, RetryPolicy};
use alloy_transport::{RpcError, TransportError, TransportErrorKind};

/// Retry settings of the transports the URL constructors build
/// ([`RpcBlockSource::http`](super::RpcBlockSource::http) and friends). A provider the user
/// builds brings its own layers and ignores these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Retries after the first attempt, for errors [`NodeErrorPolicy`] calls transient.
    pub max_retries: u32,
    /// Delay before each retry, unless the node asks for a longer one (`Retry-After`, an
    /// Infura-style backoff hint).
    pub backoff: Duration,
    /// The endpoint's compute-unit budget per second (alloy's rate-limit model: 20 CU per
    /// request on average); retries queue behind it. `u64::MAX`: no budget.
    pub compute_units_per_second: u64,
    /// Time allowed for one HTTP request (a timed-out request is retried).
    pub timeout: Duration,
}

impl Default for TransportConfig {
    /// 8 retries 250 ms apart, no compute-unit budget, 30 s per request.
    fn default() -> Self {
        Self {
            max_retries: 8,
            backoff: Duration::from_millis(250),
            compute_units_per_second: u64::MAX,
            timeout: Duration::from_secs(30),
        }
    }
}

impl TransportConfig {
    /// Alloy's [`RetryBackoffLayer`] with these settings and [`NodeErrorPolicy`].
    pub fn retry_layer(&self) -> RetryBackoffLayer<NodeErrorPolicy> {
        RetryBackoffLayer::new_with_policy(
            self.max_retries,
            self.backoff.as_millis().min(u128::from(u64::MAX)) as u64,
            self.compute_units_per_second,
            NodeErrorPolicy,
        )
    }
}

/// The source's classification of node errors, as a [`RetryPolicy`].
///
/// Transient (retried): everything alloy's default policy retries (HTTP 429 / 503,
/// JSON-RPC rate-limit codes and messages, missing batch responses, `Retry-After`), plus
/// HTTP 502 / 504, connection failures and timeouts (the node may be restarting), and
/// "try again" / "timeout" answers. Permanent: other HTTP statuses, malformed requests, and
/// "too many results" answers to `eth_getLogs` even when sent with a rate-limit code
/// (`-32005`): the source shrinks its range instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeErrorPolicy;

impl RetryPolicy for NodeErrorPolicy {
    fn should_retry(&self, error: &TransportError) -> bool {
        is_transient(error)
    }

    fn backoff_hint(&self, error: &TransportError) -> Option<Duration> {
        RateLimitRetryPolicy::default().backoff_hint(error)
    }
}

/// Whether `error` is worth another attempt (see [`NodeErrorPolicy`]).
pub fn is_transient(error: &TransportError) -> bool {
    match error {
        RpcError::ErrorResp(payload) => is_transient_payload(payload),
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http) => {
                http.status == 429 || matches!(http.status, 502..=504)
            }
            TransportErrorKind::HttpErrorWithRetryAfter { .. }
            | TransportErrorKind::MissingBatchResponse(_)
            | TransportErrorKind::BackendGone
            | TransportErrorKind::PubsubUnavailable => true,
            // Connection refused / reset, DNS, timeouts, body read errors.
            TransportErrorKind::Custom(_) => true,
            _ => RateLimitRetryPolicy::default().should_retry(error),
        },
        RpcError::NullResp => true,
        _ => RateLimitRetryPolicy::default().should_retry(error),
    }
}

/// Whether a JSON-RPC error answer is transient.
pub fn is_transient_payload<E>(payload: &ErrorPayload<E>) -> bool {
    if is_too_many_results(&payload.message) {
        return false;
    }
    let m = payload.message.to_ascii_lowercase();
    payload.is_retry_err()
        || m.contains("try again")
        || m.contains("timeout")
        || m.contains("timed out")
        || m.contains("exceeded")
}

/// Whether an error message means "your `eth_getLogs` query asked for too much".
pub fn is_too_many_results(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too many results")
        || m.contains("more than")
        || m.contains("query returned")
        || m.contains("block range")
        || m.contains("range is too large")
        || m.contains("response size")
        || m.contains("too large")
}

/// Whether an error answer means "I do not know that block" (it was reorged away, or a
/// lagging node has not seen it yet).
pub(crate) fn is_unknown_block(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unknown block") || m.contains("not found") || m.contains("cannot find")
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
    fn classifies_rate_limits_result_limits_and_connection_failures() {
        assert!(is_transient_payload(&payload(429, "Too Many Requests")));
        assert!(is_transient_payload(&payload(
            -32005,
            "daily request count exceeded"
        )));
        // Infura's code for "too many results" is its rate-limit code: not retried.
        assert!(!is_transient_payload(&payload(
            -32005,
            "query returned more than 10000 results"
        )));
        assert!(is_too_many_results(
            "query returned more than 10000 results"
        ));
        assert!(!is_transient_payload(&payload(
            -32000,
            "execution reverted"
        )));
        assert!(is_transient(&TransportErrorKind::http_error(
            429,
            String::new()
        )));
        assert!(is_transient(&TransportErrorKind::http_error(
            502,
            String::new()
        )));
        assert!(!is_transient(&TransportErrorKind::http_error(
            400,
            String::new()
        )));
        assert!(is_transient(&TransportErrorKind::custom_str(
            "error sending request: connection refused"
        )));
        assert!(!is_transient(&TransportError::ser_err(
            serde_json::from_str::<u8>("x").unwrap_err()
        )));
    }
}
