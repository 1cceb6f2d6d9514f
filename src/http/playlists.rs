//! Playlists (`--flat-playlist`): by platform and id, or by `?url=`, one
//! page at a time from one cached listing.

use axum::Extension;
use axum::extract::{Query, RawPathParams, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use serde::Deserialize;

use super::reply::success;
use super::state::{AppState, Client};
use crate::http::error::ApiError;
use crate::platform::PlaylistRef;

/// Entries per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most entries one page holds.
pub const MAX_LIMIT: usize = 1000;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/playlists/{platform}/{playlist_id}", get(playlist)), ("/api/v2/playlists", get(playlist))]
}

#[derive(Deserialize)]
struct Params {
    url: Option<String>,
    /// A YouTube channel's tab (`videos`, `shorts`, `streams`), on the path form.
    tab: Option<String>,
    start: Option<String>,
    limit: Option<String>,
}

async fn playlist(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    path: RawPathParams,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let mut values = path.iter().map(|(_, v)| v);
    let list = match (values.next(), values.next(), &params.url) {
        (Some(platform), Some(id), _) => {
            let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
            PlaylistRef::from_path(platform, &id, params.tab.as_deref())?
        }
        (_, _, Some(_)) if params.tab.is_some() => {
            return Err(ApiError::bad_request(
                "Invalid playlist URL",
                "a link names its tab in its path (/@handle/shorts)",
            ));
        }
        (_, _, Some(url)) => PlaylistRef::from_url(url)?,
        _ => {
            return Err(ApiError::bad_request(
                "Missing url",
                "pass ?url=<playlist link>, or use /{platform}/{playlist_id}",
            ));
        }
    };
    let start = number(params.start.as_deref(), "start", 1, None)?;
    let limit = number(params.limit.as_deref(), "limit", DEFAULT_LIMIT, Some(MAX_LIMIT))?;
    let playlist =
        state.media.service.lookup_playlist(&list, || client.id()).await.map_err(|e| match ApiError::from(e) {
            ApiError::NotFound { detail, .. } => ApiError::NotFound { error: "Playlist unavailable", detail },
            other => other,
        })?;
    let page = serde_json::to_vec(&playlist.page(start, limit)).expect("plain structs always serialise");
    Ok(success("Playlist retrieved successfully", Bytes::from(page)))
}

/// A paging parameter: a whole number from 1 (up to `max`), `default` when absent.
fn number(raw: Option<&str>, name: &str, default: usize, max: Option<usize>) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(n) if n >= 1 && max.is_none_or(|max| n <= max) => Ok(n),
        _ => Err(ApiError::bad_request(
            "Invalid paging",
            match max {
                Some(max) => format!("{name} is a whole number from 1 to {max}"),
                None => format!("{name} is a whole number from 1"),
            },
        )),
    }
}
