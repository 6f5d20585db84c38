//! Beside the AgentCore API, for operators: readiness (`GET /health/ready`, on the API
//! port) and Prometheus metrics (`GET /metrics`, on the separate `--metrics-listen`
//! port only). Neither path is an AgentCore route, and neither is authenticated.
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use purser_core::health::{Check, Readiness};

use crate::AppState;

/// Each dependency gets this long to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A readiness answer is reused for this long, and one probe runs at a time: an
/// unauthenticated caller cannot make Purser flood its database or its chain RPCs.
const REUSE: Duration = Duration::from_secs(1);

pub(crate) type ReadyCache = tokio::sync::Mutex<Option<(Instant, Readiness)>>;

fn check_json(c: &Check) -> serde_json::Value {
    let mut v = serde_json::json!({"ok": c.ok(), "millis": c.millis});
    if let Some(e) = c.error {
        v["error"] = e.into();
    }
    v
}

/// `GET /health/ready`: 200 when the database and every configured chain RPC answer,
/// else 503; the body says which.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let readiness = {
        let mut cached = state.ready.lock().await;
        match &*cached {
            Some((at, r)) if at.elapsed() < REUSE => r.clone(),
            _ => {
                let r = state.inner.data.readiness(PROBE_TIMEOUT).await;
                *cached = Some((Instant::now(), r.clone()));
                r
            }
        }
    };
    let chains: serde_json::Map<String, serde_json::Value> = readiness
        .chains
        .iter()
        .map(|(chain, c)| (chain.as_str().to_string(), check_json(c)))
        .collect();
    let body = serde_json::json!({
        "status": if readiness.ok() { "ready" } else { "not ready" },
        "database": check_json(&readiness.database),
        "chains": chains,
    });
    let status = if readiness.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics`: every metric in the Prometheus text format; the pool gauges are read
/// now.
async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.inner.data.pool_stats();
    purser_metrics::DB_POOL.set(&[("state", "in_use")], pool.in_use as f64);
    purser_metrics::DB_POOL.set(&[("state", "idle")], pool.idle as f64);
    purser_metrics::DB_POOL_MAX.set(&[], pool.max as f64);
    let mut r = purser_metrics::render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The operator's port: `GET /metrics` and `GET /health/ready`.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/health/ready", axum::routing::get(ready))
        .with_state(state)
}
