//! The route of origins' own HLS through the server: the sealed links of
//! rewritten playlists (`/api/v2/stream/hls/...`; the origin URL inside
//! them encrypted: no client learns it). `service::rewritten` answers them:
//! nested playlists rewritten again, segments, keys and init sections from
//! the relay, shared by every viewer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use super::error::ApiError;
use super::reply::write;
use super::state::AppState;
use crate::service::rewritten;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/stream/hls/{token}/{name}", get(hls_link))]
}

/// A signed link from a rewritten playlist (`service::rewritten::link`).
async fn hls_link(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(write(rewritten::link(&state.media, &token, &method, &headers).await?))
}
