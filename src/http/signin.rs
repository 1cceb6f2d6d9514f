//! `GET /api/v2/auth/status[/{platform}]`: which platforms extractions run
//! signed in for (`COOKIES_DIR`), read from the cookie files' own entries.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use bytes::Bytes;

use super::reply::success;
use super::state::AppState;
use crate::http::error::ApiError;
use crate::platform::Platform;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/auth/status", get(all)), ("/api/v2/auth/status/{platform}", get(one))]
}

const ALL: [Platform; 5] =
    [Platform::YouTube, Platform::Bilibili, Platform::Twitter, Platform::Instagram, Platform::Twitch];

async fn all(State(state): State<AppState>) -> Response {
    let mut statuses = Vec::with_capacity(ALL.len());
    for p in ALL {
        statuses.push(state.media.service.signin.reading(p).await.status.clone());
    }
    let body = serde_json::to_vec(&statuses).expect("plain structs always serialise");
    success("Authentication status retrieved successfully", Bytes::from(body))
}

async fn one(State(state): State<AppState>, Path(platform): Path<String>) -> Result<Response, ApiError> {
    let platform: Platform = platform.parse()?;
    let status = &state.media.service.signin.reading(platform).await.status;
    let body = serde_json::to_vec(status).expect("plain structs always serialise");
    Ok(success("Authentication status retrieved successfully", Bytes::from(body)))
}
