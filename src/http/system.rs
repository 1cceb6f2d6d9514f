//! Health, the streaming metrics and Prometheus.

use std::cell::RefCell;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use super::reply::{json_bytes, json_response, success, timestamp};
use super::state::AppState;
use crate::config::UpdateChannel;
use crate::metrics::Readings;
use crate::service::health::{Memory, format_uptime};
use crate::service::health::{Readings as HealthReadings, UpdateStatus};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/health", get(health)),
        ("/api/v2/system/health", get(health)),
        ("/ready", get(ready)),
        ("/api/v2/system/ready", get(ready)),
        ("/api/v2/stream/metrics", get(metrics)),
        ("/metrics", get(prometheus)),
    ]
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    /// SABR support (`protobug 1.0.0` in yt-dlp's SABR build), or `null`:
    /// then videos YouTube serves only through SABR cannot be played.
    ytdlp_sabr: Option<&'a str>,
    /// `YTDLP_UPDATE`'s last check; absent when updates are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    ytdlp_update: Option<UpdateStatus>,
}

async fn health(State(state): State<AppState>) -> Response {
    let r = state.health.readings();
    let healthy = r.healthy();
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let uptime = state.health.started.elapsed().as_secs();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let updates = state.config.ytdlp_update != UpdateChannel::Off;
    let render = || {
        json_bytes(&Health {
            status: if healthy { "healthy" } else { "degraded" },
            timestamp: timestamp(),
            version: VERSION,
            services: Services { redis: &r.redis, ytdlp: &r.ytdlp },
            uptime: format_uptime(std::time::Duration::from_secs(uptime)),
            memory: &r.memory,
            ytdlp_version: r.ytdlp_version.as_deref(),
            ytdlp_js_runtime: r.ytdlp_caps.js_runtime.as_deref(),
            ytdlp_ejs: r.ytdlp_caps.ejs.as_deref(),
            ytdlp_impersonate: r.ytdlp_caps.impersonate.as_deref(),
            ytdlp_sabr: r.ytdlp_caps.sabr.as_deref(),
            ytdlp_update: updates.then(|| state.health.update.read().expect("update lock").clone()),
        })
    };
    if updates {
        // The updater writes its status on its own clock: not kept.
        return json_response(status, render());
    }
    let body = LAST_HEALTH.with_borrow_mut(|last| match last {
        Some(l) if l.second == now && l.uptime == uptime && Arc::ptr_eq(&l.readings, &r) => l.body.clone(),
        _ => {
            let body = render();
            *last = Some(LastHealth { second: now, uptime, readings: r.clone(), body: body.clone() });
            body
        }
    });
    json_response(status, body)
}

/// A `/health` body as this thread last wrote it. It changes only with the
/// second (its timestamp and uptime) and the readings (replaced, not
/// edited, when the health task refreshes them), so a balancer's probes or
/// a benchmark's thousands a second share one rendering: the JSON was a
/// quarter of a `/health`'s instructions (BENCHMARKS.md, "Workers").
struct LastHealth {
    /// Wall-clock seconds since the epoch when it was written.
    second: u64,
    /// Seconds since start when it was written.
    uptime: u64,
    /// The readings it shows.
    readings: Arc<HealthReadings>,
    body: Bytes,
}

thread_local! {
    static LAST_HEALTH: RefCell<Option<LastHealth>> = const { RefCell::new(None) };
}

/// `GET /ready`: 200 once every service has answered (a balancer's
/// readiness probe), 503 with what it waits for before that or when one
/// is down.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    ready: bool,
    /// Each service not answering yet, as `name: state` (`yt-dlp: checking`).
    waiting_for: Vec<String>,
}

async fn ready(State(state): State<AppState>) -> Response {
    let waiting_for = state.health.readings().waiting_for();
    let ready = waiting_for.is_empty();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, json_bytes(&Ready { ready, waiting_for }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    success("Streaming metrics retrieved successfully", json_bytes(&state.metrics.snapshot()))
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let readings = Readings {
        redis_up: state.redis.as_ref().map(|r| r.is_healthy()),
        rss_bytes: state.health.readings().rss_bytes,
        store_memory_bytes: state.media.relay.memory_used(),
        tasks: state.runtimes.iter().map(|r| r.metrics().num_alive_tasks() as u64).sum(),
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
