//! Video metadata, by platform and id or by URL; and the `Video` extractor
//! the stream routes share.

use axum::Extension;
use axum::extract::{FromRequestParts, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::success;
use crate::app::{AppState, Client};
use crate::error::ApiError;
use crate::extract::Headers;
use crate::metrics::StreamGuard;
use crate::platform::VideoRef;
use crate::relay::pipe::pipe;
use crate::relay::upstream::Via;
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
    let cached = state.lookup(&video, Purpose::Info, &client).await?;
    Ok(success("Video information retrieved successfully", cached.api_json.clone()))
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
        .map_err(|e| super::stream::upstream_api_error(e, "the URL"))?;
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

/// The video a request names: `/{platform}/{video_id}` in the path, or
/// `?url=` on the routes without path parameters. Refused input is a 400
/// before anything else runs.
pub struct Video(pub VideoRef);

#[derive(Deserialize)]
struct UrlParam {
    url: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Video {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("Invalid path", e.body_text()))?;
        let mut values = params.iter().map(|(_, v)| v);
        if let (Some(platform), Some(id)) = (values.next(), values.next()) {
            return Ok(Video(VideoRef::from_path(platform, id)?));
        }
        let Query(param) = Query::<UrlParam>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request("Invalid query", e.body_text()))?;
        match param.url {
            Some(url) => Ok(Video(VideoRef::from_url(&url)?)),
            None => Err(ApiError::bad_request("Missing url", "pass ?url=<video link>, or use /{platform}/{video_id}")),
        }
    }
}
