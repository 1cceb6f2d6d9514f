//! The outer middleware around every route: request id, the client's
//! address, size limits and load shedding, security headers, the JSON error
//! shape for every 4xx/5xx (ours and axum's own rejections alike), caching's
//! last word (`caching::finish`), metrics, and one log line per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Instrument;

use super::reply::timestamp;
use super::state::{AppState, Client};
use crate::config::Environment;
use crate::http::error::{ApiError, ErrorBody};

/// A parsed name: inserting by `&str` parses the name on every request.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request target accepted (414 past it).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes accepted, names and values together (431 past it).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The largest request body read (413 past it); the API's only body, a batch,
/// is far smaller, and a body on any other route is read and dropped.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Reads the body a request announces, within `REQUEST_BODY_TIMEOUT` and
/// [`MAX_BODY_BYTES`], so that handlers only ever see a body in hand: a
/// client that promises a body and stalls gets a `408` instead of holding
/// the request open until its deadline.
async fn read_body(state: &AppState, req: Request) -> Result<Request, ApiError> {
    use axum::body::HttpBody;
    if req.body().size_hint().exact() == Some(0) {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let limit = state.config.request_body_timeout;
    match tokio::time::timeout(std::time::Duration::from_secs(limit), to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(e)) if is_length_limit(&e) => {
            Err(ApiError::PayloadTooLarge(format!("the body is over {} KiB", MAX_BODY_BYTES / 1024)))
        }
        Ok(Err(_)) => Err(ApiError::bad_request("Invalid body", "the body ended before its announced length")),
        Err(_) => {
            Err(ApiError::RequestTimeout(format!("the body did not arrive within {limit} s (REQUEST_BODY_TIMEOUT)")))
        }
    }
}

/// Whether a body error is axum's length limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// A client's `X-Request-Id` is kept when it is short and plain.
fn acceptable_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Requests whose latency the reference's metrics count: video and stream
/// work, not health or the metrics themselves.
fn is_api_work(path: &str) -> bool {
    (path.starts_with("/api/v2/videos") || path.starts_with("/api/v2/stream")) && path != "/api/v2/stream/metrics"
}

/// How a request's id reaches the lines logged while it runs.
enum Carry {
    Nothing,
    TaskLocal(Arc<str>),
    Span(tracing::Span),
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AppState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable_id(id))
        .map_or_else(|| state.next_request_id(), str::to_owned);
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let ip = state.access.client_ip(peer, req.headers());
    req.extensions_mut().insert(Client { ip, key: None });
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = method == Method::OPTIONS;
    // Monitoring traffic (health checks, metrics polls and scrapes) logs at
    // debug and does nothing that logs on its own: no request id to carry.
    // Lines logged while the request runs name it: in production through a
    // task-local the JSON formatter reads (cheaper than a span), in
    // development through a span, which its format shows.
    let quiet = matches!(
        path.as_str(),
        "/health" | "/api/v2/system/health" | "/ready" | "/api/v2/system/ready" | "/metrics" | "/api/v2/stream/metrics"
    );
    let carry = if quiet {
        Carry::Nothing
    } else if state.config.environment == Environment::Production {
        Carry::TaskLocal(Arc::from(request_id.as_str()))
    } else {
        Carry::Span(tracing::info_span!("request", request_id = request_id.as_str()))
    };

    let in_flight = state.in_flight.fetch_add(1, Relaxed) + 1;
    let _counted = InFlight(&state);
    let load = in_flight + state.metrics.active_streams().max(0) as u64;
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let mut resp = if target_len > MAX_URI_BYTES {
        refuse(StatusCode::URI_TOO_LONG, format!("the request target is longer than {MAX_URI_BYTES} bytes"))
    } else if header_bytes > MAX_HEADER_BYTES {
        refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
    } else if load > state.config.max_concurrent_requests as u64 {
        let mut r = refuse(StatusCode::SERVICE_UNAVAILABLE, "the server is at its limit of concurrent requests".into());
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        match read_body(&state, req).await {
            // CORS answers preflights before routing (no route has OPTIONS).
            Ok(_) if preflight => state.cors.preflight(origin.as_ref()),
            Ok(req) => match carry {
                Carry::Nothing => next.run(req).await,
                Carry::TaskLocal(id) => crate::request_id::scope(id, next.run(req)).await,
                Carry::Span(span) => next.run(req).instrument(span).await,
            },
            Err(e) => e.into_response(),
        }
    };
    // Set by `guard` on every routed answer; refusals above have none.
    let route = resp.extensions_mut().remove::<MatchedPath>();
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        resp = error_json(resp, &request_id).await;
    }
    let mut resp = super::caching::finish(resp, if_none_match.as_ref());
    let status = resp.status();
    let h = resp.headers_mut();
    // Room for these six at once: growing the map rehashes it.
    h.reserve(6);
    h.insert(REQUEST_ID, HeaderValue::from_str(&request_id).expect("ids are plain ASCII"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !preflight {
        state.cors.decorate(origin.as_ref(), h);
    }

    let latency = started.elapsed();
    if is_api_work(&path) {
        state.metrics.record_request(latency);
    }
    state.metrics.record_http(route.as_ref().map(MatchedPath::as_str), status.as_u16(), latency);
    // The access line names the request id itself rather than through the
    // span: cheaper to format, and it is the one line every request writes.
    // Rounded to the microsecond: the float of a Duration prints noise.
    let latency_ms = (latency.as_micros() as f64) / 1000.0;
    // Strings as `&str`: recorded as they are, not through `Display`.
    let status = status.as_u16();
    let (request_id, method, path) = (request_id.as_str(), method.as_str(), path.as_str());
    if quiet {
        tracing::debug!(request_id, method, path, status, latency_ms, client = %ip, "request");
    } else if status >= 500 {
        tracing::warn!(request_id, method, path, status, latency_ms, client = %ip, "request");
    } else {
        tracing::info!(request_id, method, path, status, latency_ms, client = %ip, "request");
    }
    resp
}

/// An error for an overrun found before routing.
fn refuse(status: StatusCode, detail: String) -> Response<Body> {
    let mut resp = status.into_response();
    let error = status.canonical_reason().unwrap_or("Error").to_owned();
    resp.extensions_mut().insert(ErrorBody { error, detail });
    resp
}

/// Gives an error response the API's JSON error shape. Our own errors carry
/// an [`ErrorBody`]; axum's rejections (bad path encoding, bad query, wrong
/// method) and timeouts carry plain text or nothing, which becomes the detail.
async fn error_json(resp: Response<Body>, request_id: &str) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let is_json =
        parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let known = parts.extensions.remove::<ErrorBody>();
    if known.is_none() && is_json {
        return Response::from_parts(parts, body);
    }
    let reason = parts.status.canonical_reason().unwrap_or("Error");
    let ErrorBody { error, detail } = match known {
        Some(b) => b,
        None => {
            let text = to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let detail = if text.is_empty() && parts.status == StatusCode::GATEWAY_TIMEOUT {
                "the request took longer than REQUEST_TIMEOUT".to_owned()
            } else {
                text
            };
            ErrorBody { error: reason.to_owned(), detail }
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
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(serde_json::to_vec(&json).expect("json values serialise")))
}

/// The 404 for paths no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound { error: "Not found", detail: "no such endpoint; GET / lists them".into() }
}
