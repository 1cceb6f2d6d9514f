//! The web page at `/ui`: paste a link, see the video's details and formats,
//! play it through the server, copy its links. Its files are compiled into
//! the binary; the page talks to nothing but this server (its
//! Content-Security-Policy says so to the browser).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::AppState;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");
/// hls.js, for HLS streams in browsers without native HLS (see ui/vendor/README.md).
const HLS_JS: &str = include_str!("ui/vendor/hls.min.js");

/// Scripts, styles and requests only to this server; media may come from
/// the source when the user picks direct playback; `blob:` is how hls.js
/// hands media to the player.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    media-src 'self' blob: http: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { page() }))
        .route("/ui/", get(|| async { page() }))
        .route("/ui/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8", "no-cache") }))
        .route("/ui/app.css", get(|| async { asset(APP_CSS, "text/css; charset=utf-8", "no-cache") }))
        .route(
            "/ui/vendor/hls.min.js",
            get(|| async { asset(HLS_JS, "text/javascript; charset=utf-8", "public, max-age=86400") }),
        )
}

fn page() -> Response {
    let mut resp = asset(INDEX, "text/html; charset=utf-8", "no-cache");
    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

fn asset(body: &'static str, content_type: &'static str, cache: &'static str) -> Response {
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}
