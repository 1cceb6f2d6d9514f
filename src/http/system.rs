//! `GET /`, health and the streaming metrics.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::{json_response, success, timestamp};
use crate::app::AppState;
use crate::health::{Memory, format_uptime};
use crate::platform::Platform;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/api/v2/system/health", get(health))
        .route("/api/v2/stream/metrics", get(metrics))
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every route, for `GET /`.
const ENDPOINTS: [&str; 13] = [
    "GET /health",
    "GET /api/v2/system/health",
    "GET /api/v2/videos/{platform}/{video_id}",
    "GET /api/v2/videos?url=",
    "GET /api/v2/stream/direct/{platform}/{video_id}?quality=",
    "GET /api/v2/stream/direct?url=&quality=",
    "GET /api/v2/stream/proxy/{platform}/{video_id}?quality=",
    "GET /api/v2/stream/proxy?url=&quality=",
    "GET /api/v2/stream/{platform}/{video_id}?quality=&mode=",
    "GET /api/v2/stream?url=&quality=&mode=",
    "GET /api/v2/stream/hls/{token}/{name}",
    "GET /api/v2/stream/metrics",
    "GET /",
];

async fn root() -> Response {
    #[derive(Serialize)]
    struct Root {
        service: &'static str,
        version: &'static str,
        status: &'static str,
        endpoints: [&'static str; 13],
        supported_platforms: [&'static str; 6],
        timestamp: String,
    }
    let body = Root {
        service: "reelay",
        version: VERSION,
        status: "running",
        endpoints: ENDPOINTS,
        supported_platforms: Platform::NAMES,
        timestamp: timestamp(),
    };
    json_response(StatusCode::OK, serde_json::to_vec(&body).expect("serialises").into())
}

async fn health(State(state): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct Services<'a> {
        redis: &'a str,
        #[serde(rename = "yt-dlp")]
        ytdlp: &'a str,
    }
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'static str,
        timestamp: String,
        version: &'static str,
        services: Services<'a>,
        uptime: String,
        memory: &'a Memory,
    }
    let r = state.health.readings();
    let healthy = r.healthy();
    let body = Health {
        status: if healthy { "healthy" } else { "degraded" },
        timestamp: timestamp(),
        version: VERSION,
        services: Services { redis: &r.redis, ytdlp: &r.ytdlp },
        uptime: format_uptime(state.health.started.elapsed()),
        memory: &r.memory,
    };
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, serde_json::to_vec(&body).expect("serialises").into())
}

async fn metrics(State(state): State<AppState>) -> Response {
    let data = serde_json::to_vec(&state.metrics.snapshot()).expect("serialises");
    success("Streaming metrics retrieved successfully", &data)
}
