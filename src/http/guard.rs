//! The edge checks, in order: IP allow/deny lists (403), API keys on
//! `/api/v2` (401 missing, 403 wrong), then the per-client rate limit (429
//! with `Retry-After`). Health, `/metrics` and the docs pass untouched, and
//! the signed HLS and manifest links need no key (their signature is the permission).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::{AppState, Client};
use crate::http::access::{KeyCheck, key_id, presented_key};
use crate::http::error::ApiError;
use crate::ratelimit::Decision;

/// Routes that are never limited, keyed or filtered: what orchestrators and
/// monitors poll, the docs, and the page's own files (the API calls the page
/// makes are checked like any other).
pub fn is_exempt(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/api/v2/system/health" | "/ready" | "/api/v2/system/ready" | "/metrics" | "/openapi.json"
    ) || path.starts_with("/docs")
        || path == "/ui"
        || path.starts_with("/ui/")
}

/// The per-route layer: the checks, and the matched route handed back on
/// the response for `observe`, which runs around the router and so never
/// sees the request after routing.
pub async fn guard(state: State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = check(state, req, next).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(route);
    }
    resp
}

async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_exempt(path) {
        return next.run(req).await;
    }
    let mut client = req.extensions().get::<Client>().cloned().expect("the observe middleware sets the client");
    if !state.access.ip_allowed(client.ip) {
        return ApiError::Forbidden("your address is not allowed to use this service".into()).into_response();
    }
    if state.access.keys_required()
        && path.starts_with("/api/v2/")
        && !path.starts_with("/api/v2/stream/hls/")
        && !path.starts_with("/api/v2/stream/media/")
        && !path.starts_with("/api/v2/stream/live/")
        // The status has its own rule (loopback, TRUSTED_PROXIES, ADMIN_KEYS).
        && path != "/api/v2/system/status"
    {
        let key = presented_key(req.headers(), req.uri().query());
        match state.access.check_key(key.as_deref()) {
            KeyCheck::Missing => {
                let mut resp =
                    ApiError::Unauthorized("send an API key in X-API-Key, Authorization: Bearer, or ?api_key=".into())
                        .into_response();
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return resp;
            }
            KeyCheck::Wrong => return ApiError::Forbidden("the API key is not valid".into()).into_response(),
            KeyCheck::Valid => {
                // Only a valid key names the client: made-up keys must not buy fresh budgets.
                client.key = Some(key_id(key.as_deref().unwrap_or_default()));
                req.extensions_mut().insert(client.clone());
            }
            KeyCheck::Open => {}
        }
    }
    let Some(limiter) = &state.request_limit else { return next.run(req).await };
    if super::cobalt::is_instance_info(req.method(), req.uri().path()) {
        // cobalt limits every route but its instance info.
        return next.run(req).await;
    }
    let decision = limiter.check(&client.id()).await;
    if !decision.allowed {
        state.metrics.record_rate_limited(false);
        let retry = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        if req.uri().path().starts_with("/cobalt") {
            let mut resp = super::cobalt::rate_exceeded(state.config.rate_limit_window, retry);
            add_headers(&mut resp, &decision);
            return resp;
        }
        let mut resp = ApiError::TooManyRequests {
            retry_after: retry,
            detail: format!(
                "limit of {} requests per {} s reached; retry in {retry} s",
                decision.limit, state.config.rate_limit_window
            ),
        }
        .into_response();
        add_headers(&mut resp, &decision);
        return resp;
    }
    let mut resp = next.run(req).await;
    add_headers(&mut resp, &decision);
    resp
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds).
fn add_headers(resp: &mut Response, d: &Decision) {
    const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
    let h = resp.headers_mut();
    h.insert(LIMIT, d.limit.into());
    h.insert(REMAINING, d.remaining.into());
    h.insert(RESET, (d.reset.as_secs_f64().ceil() as u64).into());
}
