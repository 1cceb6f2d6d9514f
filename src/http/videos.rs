//! Video metadata and thumbnails, by platform and id or by URL.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use super::edge::Video;
use super::reply::success;
use super::state::{AppState, Client};
use crate::extract::Headers;
use crate::http::error::ApiError;
use crate::metrics::StreamGuard;
use crate::relay::pipe::pipe;
use crate::service::Purpose;
use crate::upstream::Via;

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
    let cached = state.lookup(&video, Purpose::Info, &client).await?;
    let mut resp = success("Video information retrieved successfully", cached.api_json.clone());
    let h = resp.headers_mut();
    // Weak: the envelope's timestamp changes, what it says does not.
    if let Ok(tag) = HeaderValue::from_str(&format!("W/\"i-{}\"", cached.api_digest)) {
        h.insert(header::ETAG, tag);
    }
    super::caching::for_secs(h, super::caching::INFO_SECS, state.access.keys_required());
    Ok(resp)
}

/// The video's thumbnail through the server, for clients that cannot reach
/// the image host; images change rarely, so clients may cache them a day.
async fn thumbnail(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    Video(video): Video,
) -> Result<Response, ApiError> {
    let cached = state.lookup(&video, Purpose::Info, &client).await?;
    let url = cached.info.thumbnail.as_deref().ok_or_else(|| ApiError::NotFound {
        error: "No thumbnail",
        detail: "the extractor found no thumbnail for this video".into(),
    })?;
    let upstream = state
        .relay
        .upstream()
        .open(&method, url, &Via { headers: &Headers::new(), route: &cached.info.route }, &HeaderMap::new())
        .await
        .map_err(|e| ApiError::from_upstream(e, "the URL"))?;
    let is_image =
        upstream.response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"image/"));
    if !is_image {
        return Err(ApiError::BadGateway {
            error: "Upstream error",
            detail: "the thumbnail URL did not answer an image".into(),
        });
    }
    let idle = std::time::Duration::from_secs(state.config.stream_idle_timeout);
    let mut resp = pipe(upstream, Some(StreamGuard::new(state.metrics.clone())), idle).map(axum::body::Body::new);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(resp)
}
