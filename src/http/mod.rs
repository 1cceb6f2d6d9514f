//! The HTTP layer: one module per route group, each with its `router()`, and
//! the middleware every request goes through.

mod docs;
mod guard;
mod middleware;
mod stream;
mod system;
mod videos;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bytes::{BufMut, Bytes, BytesMut};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;

pub use docs::openapi;

/// Every API route, as registered: what `/openapi.json` must describe.
pub fn route_paths() -> Vec<&'static str> {
    all_routes().into_iter().map(|(path, ..)| path).collect()
}

fn all_routes() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    let timed = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, true));
    let streaming = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, false));
    timed(system::routes()).chain(timed(videos::routes())).chain(streaming(stream::routes())).collect()
}

/// The whole application. Layers, outermost first: `observe` (request id,
/// limits, errors, logs, metrics), CORS, `guard` (lists, keys, rate limit);
/// non-stream routes also get `REQUEST_TIMEOUT`.
pub fn router(state: AppState) -> Router {
    let timeout = TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, state.config.request_timeout());
    let mut app = Router::new();
    for (path, route, timed) in all_routes() {
        app = app.route(path, if timed { route.layer(timeout) } else { route });
    }
    app.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(cors(&state.config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

/// `CORS_ORIGINS`: `*` or a comma list of origins.
fn cors(origins: &str) -> CorsLayer {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.split(',').filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    let h = |s: &'static str| HeaderName::from_static(s);
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([header::RANGE, header::AUTHORIZATION, header::CONTENT_TYPE, h("x-api-key"), h("x-request-id")])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::RETRY_AFTER,
            h("x-request-id"),
            h("x-reelay-format"),
            h("ratelimit-limit"),
            h("ratelimit-remaining"),
            h("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(3600))
}

/// An RFC 3339 UTC timestamp to the second, as the reference prints them.
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The success envelope around JSON that is already serialised, so cache
/// hits copy bytes instead of serialising the video again.
pub fn success(message: &str, data: &[u8]) -> Response {
    let ts = timestamp();
    let mut buf = BytesMut::with_capacity(data.len() + message.len() + ts.len() + 64);
    buf.put_slice(b"{\"success\":true,\"message\":");
    buf.put_slice(&serde_json::to_vec(message).expect("a string serialises"));
    buf.put_slice(b",\"data\":");
    buf.put_slice(data);
    buf.put_slice(b",\"timestamp\":\"");
    buf.put_slice(ts.as_bytes());
    buf.put_slice(b"\"}");
    json_response(StatusCode::OK, buf.freeze())
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
