//! Video metadata, by platform and id or by URL; and the `Video` extractor
//! the stream routes share.

use axum::Extension;
use axum::extract::{FromRequestParts, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::success;
use crate::app::{AppState, Client};
use crate::error::ApiError;
use crate::platform::VideoRef;
use crate::service::Purpose;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/videos/{platform}/{video_id}", get(info)), ("/api/v2/videos", get(info))]
}

async fn info(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
) -> Result<Response, ApiError> {
    let cached = state.lookup(&video, Purpose::Info, &client).await?;
    Ok(success("Video information retrieved successfully", cached.api_json.clone()))
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
