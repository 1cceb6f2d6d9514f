//! The one middleware around every route: request id, the JSON error shape
//! for every 4xx/5xx (ours and axum's own rejections alike), request metrics,
//! and one log line per request.

use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, header};
use axum::middleware::Next;
use tracing::Instrument;

use super::{json_response, timestamp};
use crate::app::AppState;
use crate::error::ErrorBody;

const REQUEST_ID: &str = "x-request-id";

/// A client's `X-Request-Id` is kept when it is short and plain.
fn acceptable_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Requests whose latency the reference's metrics count: video and stream
/// work, not health or the metrics themselves.
fn is_api_work(path: &str) -> bool {
    (path.starts_with("/api/v2/videos") || path.starts_with("/api/v2/stream/")) && path != "/api/v2/stream/metrics"
}

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable_id(id))
        .map_or_else(|| state.next_request_id(), str::to_owned);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        resp = error_json(resp, &request_id).await;
    }
    resp.headers_mut().insert(REQUEST_ID, HeaderValue::from_str(&request_id).expect("ids are plain ASCII"));
    let latency = started.elapsed();
    if is_api_work(&path) {
        state.metrics.record_request(latency);
    }
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let _entered = span.enter();
    if path == "/health" || path == "/api/v2/system/health" {
        tracing::debug!(%method, %path, status = status.as_u16(), latency_ms, "request");
    } else if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), latency_ms, "request");
    } else {
        tracing::info!(%method, %path, status = status.as_u16(), latency_ms, "request");
    }
    resp
}

/// Gives an error response the API's JSON error shape. Our own errors carry
/// an [`ErrorBody`]; axum's rejections (bad path encoding, bad query, wrong
/// method) carry plain text, which becomes the detail.
async fn error_json(resp: Response<Body>, request_id: &str) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let is_json =
        parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let detail = match parts.extensions.remove::<ErrorBody>() {
        Some(b) => Some(b),
        None if is_json => return Response::from_parts(parts, body),
        None => None,
    };
    let reason = parts.status.canonical_reason().unwrap_or("Error");
    let ErrorBody { error, detail } = match detail {
        Some(b) => b,
        None => {
            let text = to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            ErrorBody { error: reason.to_owned(), detail: text }
        }
    };
    let json = serde_json::json!({
        "success": false,
        "error": error,
        "detail": detail,
        "code": reason,
        "timestamp": timestamp(),
        "request_id": request_id,
    });
    let mut out = json_response(parts.status, serde_json::to_vec(&json).expect("json values serialise").into());
    for name in [header::RETRY_AFTER, header::ALLOW, header::LOCATION, header::CONTENT_RANGE] {
        if let Some(v) = parts.headers.remove(&name) {
            out.headers_mut().insert(name, v);
        }
    }
    out
}
