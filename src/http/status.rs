//! The operators' status page (`/ui/status`) and its JSON
//! (`/api/v2/system/status`), refreshed by the page every few seconds.
//!
//! It shows what people watch, so it is not public: a request made from
//! loopback or from an address in `TRUSTED_PROXIES` itself (the peer, with
//! no forwarding header: a reverse proxy's forwarded clients are not let in
//! by the proxy's address, nor by an address a client wrote into
//! `X-Forwarded-For`) sees it; any other needs one of `ADMIN_KEYS`
//! (`Authorization: Bearer`, `X-Admin-Key` or `?admin_key=`). The report
//! comes from the board's last sample: serving it takes no lock the byte
//! path takes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::error::ApiError;
use super::state::AppState;

const PAGE: &str = include_str!("ui/status.html");
const SCRIPT: &str = include_str!("ui/status.js");
const STYLE: &str = include_str!("ui/status.css");

/// Its own files only; the data from this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/system/status", get(report))]
}

/// The page and its script (outside the OpenAPI document, like `/ui`).
pub fn page_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ui/status", get(page))
        .route("/ui/status.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/ui/status.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
}

/// Whether the request may see the status: straight from loopback or a
/// trusted address freely, anything else (forwarded) with an admin key.
fn admit(state: &AppState, peer: SocketAddr, headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
    let ip = peer.ip().to_canonical();
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|h| headers.contains_key(*h));
    if !forwarded && (ip.is_loopback() || state.access.is_trusted(ip)) {
        return Ok(());
    }
    let keys: Vec<&str> =
        state.config.admin_keys.as_deref().unwrap_or("").split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
    let presented = headers
        .get("x-admin-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_owned())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|k| k.trim().to_owned())
        })
        .or_else(|| {
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "admin_key")
                .map(|(_, v)| v.into_owned())
        });
    match presented {
        Some(k) if keys.iter().any(|want| crate::http::access::same_key(want, &k)) => Ok(()),
        Some(_) => Err(ApiError::Forbidden("that admin key is not valid".into())),
        None => Err(ApiError::Forbidden(
            "the status page is for operators: open it from this machine or TRUSTED_PROXIES (not through a proxy), or with one of ADMIN_KEYS"
                .into(),
        )),
    }
}

async fn report(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    admit(&state, peer, &headers, &uri)?;
    let mut resp = axum::Json(state.board.report()).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    admit(&state, peer, &headers, &uri)?;
    let mut resp = PAGE.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    Ok(resp)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
