//! Input read at the edge, before anything else runs: the video a request
//! names and the player profile it asks for; refused input is a 400.

use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use serde::Deserialize;

use super::error::ApiError;
use crate::platform::VideoRef;
use crate::select::{AudioLang, Player};

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

/// `player=`, or a 400 that lists the profiles.
pub fn parse_player(value: Option<&str>) -> Result<Player, ApiError> {
    value.unwrap_or("").parse().map_err(|e: String| ApiError::bad_request("Invalid player", e))
}

/// `lang=`, or a 400 that says what it takes.
pub fn parse_lang(value: Option<&str>) -> Result<Option<AudioLang>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|e: String| ApiError::bad_request("Invalid lang", e)),
    }
}
