//! The service's HTTP side (axum): `/metrics` (Prometheus text), `/health` (the health
//! report; 503 when not ready), `GET /collateral/{user}` (JSON, with its block and whether
//! the cache answered) and `/updates` (server-sent events, one per refresh).

use std::convert::Infallible;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use metrics_exporter_prometheus::PrometheusHandle;
use reorg_collateral::health::{HealthProblem, HealthReport};
use reorg_collateral::reader::{CollateralReader, ReadSource};
use reorg_collateral::watcher::{Notification, UpdateCause};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub reader: CollateralReader,
    pub prometheus: PrometheusHandle,
    pub health: watch::Receiver<HealthReport>,
    /// Each refresh as a JSON text.
    pub updates: broadcast::Sender<String>,
    /// Cancelled at shutdown: open update streams end, so the server can stop.
    pub stop: CancellationToken,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/collateral/{user}", get(collateral))
        .route("/updates", get(updates))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> String {
    state.prometheus.render()
}

async fn health(State(state): State<AppState>) -> Response {
    let report = state.health.borrow().clone();
    let code = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let problems: Vec<Value> = report.problems.iter().map(problem).collect();
    let body = json!({
        "ready": report.ready(),
        "live": report.live(),
        "head": report.head,
        "finalized": report.finalized,
        "source_head": report.source_head,
        "refresh_through": report.refresh_through,
        "problems": problems,
    });
    (code, Json(body)).into_response()
}

fn problem(p: &HealthProblem) -> Value {
    match p {
        HealthProblem::BehindSource {
            source_head,
            head,
            behind,
        } => {
            json!({"kind": "behind_source", "source_head": source_head, "head": head, "behind": behind})
        }
        HealthProblem::SyncFailing {
            error,
            since_success,
        } => json!({
            "kind": "sync_failing",
            "error": error,
            "since_success_s": since_success.map(|d| d.as_secs_f64()),
        }),
        HealthProblem::CacheFailing { error } => json!({"kind": "cache_failing", "error": error}),
        HealthProblem::RefreshBehind {
            through,
            head,
            queued,
        } => {
            json!({"kind": "refresh_behind", "through": through, "head": head, "queued": queued})
        }
        HealthProblem::StoreUnreachable { error } => {
            json!({"kind": "store_unreachable", "error": error})
        }
        HealthProblem::Quarantined {
            asset,
            block,
            reason,
        } => {
            json!({"kind": "quarantined", "asset": asset.to_string(), "block": block, "reason": reason})
        }
        other => json!({"kind": "other", "detail": format!("{other:?}")}),
    }
}

async fn collateral(State(state): State<AppState>, Path(user): Path<String>) -> Response {
    let Ok(user) = user.parse() else {
        let body = json!({"error": format!("`{user}` is not an address")});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    match state.reader.cached(user).await {
        Ok(read) => {
            let e = &read.entry;
            let assets: Value = e
                .assets
                .iter()
                .map(|(asset, a)| {
                    let value = json!({
                        "confirmed": a.confirmed.map(|d| d.normalize().to_string()),
                        "pending": a.pending.map(|d| d.normalize().to_string()),
                    });
                    (asset.to_string(), value)
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
            let (source, reason) = match &read.source {
                ReadSource::Cache => ("cache", None),
                ReadSource::Store(reason) => ("store", Some(format!("{reason:?}"))),
            };
            Json(json!({
                "user": e.user.to_string(),
                "block": e.block,
                "confirmed": e.confirmed.normalize().to_string(),
                "pending": e.pending.normalize().to_string(),
                "complete": e.complete,
                "source": source,
                "fallback_reason": reason,
                "assets": assets,
            }))
            .into_response()
        }
        Err(error) => {
            let body = json!({"error": error.to_string()});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn updates(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.updates.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(text) => Event::default().event("update").data(text),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let text = json!({"lagged": missed}).to_string();
                Event::default().event("lagged").data(text)
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    let stream = stream.take_until(state.stop.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A notification as the JSON text of an SSE event.
pub(crate) fn update_json(n: &Notification) -> String {
    match n {
        Notification::Update(u) => json!({
            "block": u.block.number,
            "hash": u.block.hash.to_string(),
            "cause": match u.cause {
                UpdateCause::Step => "step",
                UpdateCause::PriceFanOut => "price_fan_out",
                _ => "other",
            },
            "complete_through": u.complete_through.map(|b| b.number),
            "users": u.users.iter().map(|t| json!({
                "user": t.user.to_string(),
                "confirmed": t.confirmed.normalize().to_string(),
                "pending": t.pending.normalize().to_string(),
                "complete": t.complete,
            })).collect::<Vec<_>>(),
        })
        .to_string(),
        Notification::Quarantined {
            chain,
            quarantine: q,
        } => json!({
            "chain": chain.0,
            "quarantined": q.asset.to_string(),
            "block": q.block.number,
            "hash": q.block.hash.to_string(),
            "log": q.log.to_string(),
            "reason": q.reason.to_string(),
        })
        .to_string(),
        Notification::Resumed {
            chain,
            asset,
            block,
        } => json!({
            "chain": chain.0,
            "resumed": asset.to_string(),
            "block": block.number,
            "hash": block.hash.to_string(),
        })
        .to_string(),
        Notification::Lagged {
            chain,
            missed,
            resync_from,
        } => json!({
            "chain": chain.0,
            "lagged": missed,
            "resync_from": resync_from.map(|b| b.number),
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};
    use reorg_collateral::chains::ChainId;
    use reorg_collateral::model::{BlockRef, FaultReason, LogId, Quarantine};

    use super::*;

    #[test]
    fn quarantine_and_resume_events_name_the_chain() {
        let block = BlockRef {
            number: 7,
            hash: B256::repeat_byte(1),
        };
        let asset = Address::repeat_byte(0xa1);
        let quarantined = Notification::Quarantined {
            chain: ChainId(8453),
            quarantine: Quarantine {
                asset,
                block,
                log: LogId {
                    tx_hash: B256::repeat_byte(2),
                    log_index: 3,
                },
                reason: FaultReason::Undecodable {
                    detail: "short".into(),
                },
            },
        };
        let resumed = Notification::Resumed {
            chain: ChainId(10),
            asset,
            block,
        };
        let json = |n| serde_json::from_str::<Value>(&update_json(n)).unwrap();
        let q = json(&quarantined);
        assert_eq!(
            (q["chain"].as_u64(), q["block"].as_u64()),
            (Some(8453), Some(7))
        );
        assert_eq!(q["quarantined"], asset.to_string());
        let r = json(&resumed);
        assert_eq!(
            (r["chain"].as_u64(), r["resumed"].as_str()),
            (Some(10), Some(asset.to_string().as_str()))
        );
        let lagged = Notification::Lagged {
            chain: ChainId(42161),
            missed: 5,
            resync_from: Some(block),
        };
        let l = json(&lagged);
        assert_eq!(
            (
                l["chain"].as_u64(),
                l["lagged"].as_u64(),
                l["resync_from"].as_u64()
            ),
            (Some(42161), Some(5), Some(7)),
            "a lag names the chain whose updates were dropped"
        );
    }
}
