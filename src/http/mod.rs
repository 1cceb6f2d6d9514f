//! The HTTP layer: one module per route group, each with its `router()`, and
//! the middleware every request goes through.

mod batch;
pub mod conn;
mod docs;
mod guard;
mod manifest;
mod middleware;
mod playlists;
mod signin;
mod stream;
mod system;
mod ui;
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

/// Every API route, as registered: what `/openapi.json` must describe.
pub fn route_paths() -> Vec<&'static str> {
    all_routes().into_iter().map(|(path, ..)| path).collect()
}

fn all_routes() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    let timed = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, true));
    let untimed = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, false));
    // System routes answer from memory at once: no timer for them.
    untimed(system::routes())
        .chain(timed(videos::routes()))
        .chain(timed(batch::routes()))
        .chain(timed(playlists::routes()))
        .chain(untimed(signin::routes()))
        .chain(untimed(stream::routes()))
        .chain(untimed(manifest::routes()))
        .collect()
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
    // Swagger UI fetches /openapi.json, which is built on first request.
    app.merge(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
        .merge(ui::router())
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
/// Formatted once a second per thread, not once a response.
pub fn timestamp() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = chrono::Utc::now();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != now.timestamp() {
            *second = now.timestamp();
            *text = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
        text.clone()
    })
}

/// The success envelope around JSON that is already serialised. The data
/// is not copied: the body is the envelope's head, the cached bytes (shared),
/// and its tail, written out together.
pub fn success(message: &'static str, data: Bytes) -> Response {
    let mut head = BytesMut::with_capacity(message.len() + 48);
    head.put_slice(b"{\"success\":true,\"message\":\"");
    head.put_slice(message.as_bytes()); // plain ASCII, nothing to escape
    head.put_slice(b"\",\"data\":");
    let tail = Bytes::from(format!(",\"timestamp\":\"{}\"}}", timestamp()));
    let body = Parts { parts: [head.freeze(), data, tail], next: 0 };
    let mut resp = (StatusCode::OK, Body::new(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A body made of a few buffers, sent as they are, with an exact length.
struct Parts {
    parts: [Bytes; 3],
    next: usize,
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let i = self.next;
        self.next += 1;
        std::task::Poll::Ready(self.parts.get_mut(i).map(|b| Ok(http_body::Frame::data(std::mem::take(b)))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.parts.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.parts[self.next.min(3)..].iter().map(|b| b.len() as u64).sum())
    }
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
