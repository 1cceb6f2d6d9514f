//! Video metadata and thumbnails, by platform and id or by URL.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use super::edge::Video;
use super::reply::{success, write};
use super::state::{AppState, Client};
use crate::http::error::ApiError;
use crate::metrics::StreamGuard;
use crate::service::Purpose;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v2/videos/{platform}/{video_id}", get(info)),
        ("/api/v2/videos", get(info)),
        ("/api/v2/thumbnail/{platform}/{video_id}", get(thumbnail)),
        ("/api/v2/thumbnail", get(thumbnail)),
    ]
}

async fn info(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
) -> Result<Response, ApiError> {
    let cached = state.media.lookup(&video, Purpose::Info, || client.id()).await?;
    let mut resp = success("Video information retrieved successfully", cached.api_json.clone());
    let h = resp.headers_mut();
    // Weak: the envelope's timestamp changes, what it says does not.
    if let Ok(tag) = HeaderValue::from_str(&format!("W/\"i-{}\"", cached.api_digest)) {
        h.insert(header::ETAG, tag);
    }
    super::caching::for_secs(h, super::caching::INFO_SECS, state.access.keys_required());
    Ok(resp)
}

/// The video's thumbnail through the server (`service::media::Media::thumbnail`).
async fn thumbnail(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    Video(video): Video,
) -> Result<Response, ApiError> {
    let cached = state.media.lookup(&video, Purpose::Info, || client.id()).await?;
    let idle = std::time::Duration::from_secs(state.config.stream_idle_timeout);
    let guard = StreamGuard::new(state.metrics.clone());
    Ok(write(state.media.thumbnail(&cached, &method, guard, idle).await?))
}
