//! Manifests: an HLS master (`master.m3u8`) and a DASH MPD (`manifest.mpd`)
//! built from a video's separate DASH files, and the signed links inside
//! them (`/api/v2/stream/media/...`): media playlists, and the files whose
//! byte ranges are the segments, served by the relay like any other bytes.
//!
//! The links carry the video and the format, never an origin URL, so they
//! keep working when the URL expires (the relay extracts again) and on
//! every instance that shares `URL_SIGNING_KEY`. A source that is HLS
//! already (Twitch, X) gets its own playlist, rewritten, from the master
//! route.
//!
//! This module parses the manifest routes' queries; `service::manifests`
//! chooses what to list and answers the links.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::edge::{Video, parse_lang, parse_player};
use super::error::ApiError;
use super::reply::write;
use super::state::{AppState, Client};
use crate::platform::VideoRef;
use crate::select::Player;
use crate::service::manifests::{self, Kind, ManifestRequest};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v2/stream/manifest/{platform}/{video_id}/master.m3u8", get(master)),
        ("/api/v2/stream/manifest/master.m3u8", get(master)),
        ("/api/v2/stream/manifest/{platform}/{video_id}/manifest.mpd", get(mpd)),
        ("/api/v2/stream/manifest/manifest.mpd", get(mpd)),
        ("/api/v2/stream/media/{token}/{name}", get(part)),
    ]
}

#[derive(Debug, Default, Deserialize)]
pub struct ManifestQuery {
    /// The highest video rendition listed (`best` lists every one).
    quality: Option<String>,
    /// `proxy` (the default): segments through the server; `direct`: the
    /// origin's URLs.
    mode: Option<String>,
    /// A player profile.
    player: Option<String>,
    /// The audio language: `original` (the default) or a code (`de`).
    lang: Option<String>,
    /// Muxed HLS (every segment MPEG-TS with video and audio): `true` by
    /// default for `player=avpro`.
    muxed: Option<bool>,
}

/// A manifest request, checked at the edge.
fn request(video: VideoRef, q: &ManifestQuery) -> Result<ManifestRequest, ApiError> {
    let quality = q
        .quality
        .as_deref()
        .unwrap_or("best")
        .parse()
        .map_err(|e: String| ApiError::bad_request("Invalid quality", e))?;
    let direct = match q.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("proxy") => false,
        Some("direct") => true,
        Some(_) => return Err(ApiError::bad_request("Invalid mode", "mode is proxy or direct")),
    };
    let player = parse_player(q.player.as_deref())?;
    if player == Player::Unity {
        return Err(ApiError::Conflict(format!(
            "Unity's VideoPlayer plays no HLS or DASH; give it {}&player=unity, a progressive MP4",
            video.stream_path("proxy", &q.quality.clone().unwrap_or_else(|| "best".into()))
        )));
    }
    let lang = parse_lang(q.lang.as_deref())?;
    // Muxed segments are reelay's own (no origin URL to name), so they
    // are muxed in direct mode too: AVPro gets sound on every route.
    let muxed = q.muxed.unwrap_or(player == Player::Avpro);
    Ok(ManifestRequest { video, quality, direct, player, lang, muxed })
}

async fn master(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    let answer = manifests::manifest(&state.media, || client.id(), request(video, &q)?, Kind::Hls).await?;
    Ok(write(answer))
}

async fn mpd(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    let answer = manifests::manifest(&state.media, || client.id(), request(video, &q)?, Kind::Dash).await?;
    Ok(write(answer))
}

/// A signed part: a media playlist, the file's bytes (`Range` works), a
/// muxed segment or a subtitle track.
async fn part(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(write(manifests::part(&state.media, || client.id(), &token, &method, &headers).await?))
}
