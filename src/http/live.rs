//! Live streams over HTTP: a live video's playlist at its stream link, its
//! variants' playlists and their parts at `/api/v2/stream/live/...`, all
//! from the shared sessions of [`crate::live`]. Links name the stream,
//! the variant and the part, signed; never the origin's URL.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use super::error::ApiError;
use super::reply::write;
use super::state::AppState;
use crate::service::live_links;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/stream/live/{token}/{name}", get(live_link))]
}

/// A signed live link: a variant's playlist, or a segment, map or key
/// (`service::live_links::part`).
async fn live_link(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(write(live_links::part(&state.media, &token, &method, &headers).await?))
}
