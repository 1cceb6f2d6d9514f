//! `GET /`, health, the streaming metrics and Prometheus.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::{json_response, success, timestamp};
use crate::app::AppState;
use crate::config::UpdateChannel;
use crate::extract::update::UpdateStatus;
use crate::health::{Memory, format_uptime};
use crate::metrics::Readings;
use crate::platform::Platform;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(root)),
        ("/health", get(health)),
        ("/api/v2/system/health", get(health)),
        ("/api/v2/stream/metrics", get(metrics)),
        ("/metrics", get(prometheus)),
        ("/openapi.json", get(openapi_json)),
    ]
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /`.
#[derive(Serialize, ToSchema)]
pub struct Root {
    service: &'static str,
    version: &'static str,
    status: &'static str,
    /// `METHOD /path` of every route, from the OpenAPI document.
    endpoints: Vec<String>,
    supported_platforms: Vec<&'static str>,
    documentation: &'static str,
    timestamp: String,
}

/// The endpoint list, made once.
static ENDPOINTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let doc = super::docs::openapi();
    doc.paths
        .paths
        .iter()
        .map(|(path, item)| format!("{} {path}", if item.post.is_some() { "POST" } else { "GET" }))
        .collect()
});

/// Browsers (which ask for `text/html`) are sent to the page; API clients
/// get the JSON.
async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")));
    let vary = (header::VARY, HeaderValue::from_static("Accept"));
    if wants_html {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static("/ui")), vary]).into_response();
    }
    let body = Root {
        service: "reelay",
        version: VERSION,
        status: "running",
        endpoints: ENDPOINTS.clone(),
        supported_platforms: Platform::NAMES.to_vec(),
        documentation: "/docs/",
        timestamp: timestamp(),
    };
    let mut resp = json_response(StatusCode::OK, serde_json::to_vec(&body).expect("serialises").into());
    resp.headers_mut().insert(vary.0, vary.1);
    resp
}

#[derive(Serialize, ToSchema)]
pub struct Services<'a> {
    /// `healthy`, `disabled` (memory backend) or `unhealthy: why`.
    redis: &'a str,
    /// `available` or `unavailable: why`.
    #[serde(rename = "yt-dlp")]
    ytdlp: &'a str,
}

/// `GET /health`: 200 when healthy, 503 when degraded.
#[derive(Serialize, ToSchema)]
pub struct Health<'a> {
    /// `healthy` or `degraded`.
    status: &'static str,
    timestamp: String,
    version: &'static str,
    services: Services<'a>,
    /// Like `1h30m45s`.
    uptime: String,
    memory: &'a Memory,
    /// What `yt-dlp --version` says (the release in use, after updates).
    ytdlp_version: Option<&'a str>,
    /// The JavaScript runtime yt-dlp found, like `deno 2.9.8`; `null`
    /// means YouTube formats may be missing.
    ytdlp_js_runtime: Option<&'a str>,
    /// yt-dlp-ejs' version (YouTube's challenge solver), or `null`.
    ytdlp_ejs: Option<&'a str>,
    /// The browser-impersonation library, like `curl_cffi 0.17.0`, or `null`.
    ytdlp_impersonate: Option<&'a str>,
    /// `YTDLP_UPDATE`'s last check; absent when updates are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    ytdlp_update: Option<UpdateStatus>,
}

async fn health(State(state): State<AppState>) -> Response {
    let r = state.health.readings();
    let healthy = r.healthy();
    let body = Health {
        status: if healthy { "healthy" } else { "degraded" },
        timestamp: timestamp(),
        version: VERSION,
        services: Services { redis: &r.redis, ytdlp: &r.ytdlp },
        uptime: format_uptime(state.health.started.elapsed()),
        memory: &r.memory,
        ytdlp_version: r.ytdlp_version.as_deref(),
        ytdlp_js_runtime: r.ytdlp_caps.js_runtime.as_deref(),
        ytdlp_ejs: r.ytdlp_caps.ejs.as_deref(),
        ytdlp_impersonate: r.ytdlp_caps.impersonate.as_deref(),
        ytdlp_update: (state.config.ytdlp_update != UpdateChannel::Off)
            .then(|| state.health.update.read().expect("update lock").clone()),
    };
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, serde_json::to_vec(&body).expect("serialises").into())
}

async fn metrics(State(state): State<AppState>) -> Response {
    let data = serde_json::to_vec(&state.metrics.snapshot()).expect("serialises");
    success("Streaming metrics retrieved successfully", data.into())
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let readings = Readings {
        redis_up: state.redis.as_ref().map(|r| r.is_healthy()),
        rss_bytes: state.health.readings().rss_bytes,
        store_memory_bytes: state.relay.memory_used(),
        tasks: tokio::runtime::Handle::current().metrics().num_alive_tasks() as u64,
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
    };
    let body = state.metrics.render_prometheus(&readings);
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    resp
}

/// The OpenAPI document, serialised on first request: building it at start-up
/// would cost every instance time and memory for a page few open.
async fn openapi_json() -> Response {
    static DOC: LazyLock<bytes::Bytes> =
        LazyLock::new(|| serde_json::to_vec(&super::docs::openapi()).expect("the document serialises").into());
    json_response(StatusCode::OK, DOC.clone())
}
