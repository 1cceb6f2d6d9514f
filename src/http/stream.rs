//! The stream routes: `direct` redirects to one URL that plays by itself,
//! `proxy` serves the bytes, and the smart route picks one of the two. Each
//! parses its query into a `service::stream::StreamRequest`, and
//! `service::stream::serve` does the rest.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::edge::{Video, parse_lang, parse_player};
use super::reply::write;
use super::state::{AppState, Client};
use crate::config::StreamModeSetting;
use crate::http::error::ApiError;
use crate::output::filename::Style;
use crate::output::{AudioFormat, Bitrate, Output, VideoCodec, parse_container};
use crate::platform::VideoRef;
use crate::select::{Mode, Quality};
use crate::service::play::PlayRequest;
use crate::service::stream::{self, Clip, StreamRequest};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v2/stream/direct/{platform}/{video_id}", get(direct)),
        ("/api/v2/stream/direct", get(direct)),
        ("/api/v2/stream/proxy/{platform}/{video_id}", get(proxy)),
        ("/api/v2/stream/proxy", get(proxy)),
        ("/api/v2/stream/{platform}/{video_id}", get(smart)),
        ("/api/v2/stream", get(smart)),
    ]
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    quality: Option<String>,
    /// The reference's spelling of `quality=audio`.
    audio_only: Option<bool>,
    /// Smart route: `proxy` or `direct` forces the mode.
    mode: Option<String>,
    /// Direct mode: refuse (409) rather than fall back to a lower quality.
    strict: Option<bool>,
    /// Smart route: the client's country, when no header says it.
    country: Option<String>,
    /// A player profile: `browser`, `unity`, `avpro`.
    player: Option<String>,
    /// The audio language: `original` or a code (`de`).
    lang: Option<String>,
    /// With `quality=audio`: `best` (as served), `m4a`, `mp3`, `ogg`, `opus`, `wav`.
    format: Option<String>,
    /// Kilobits per second of an encoded audio output (8–320).
    bitrate: Option<String>,
    /// `none`: the video without its audio.
    audio: Option<String>,
    /// `false`: write no title or artist into produced files.
    metadata: Option<bool>,
    /// A file name style (`classic`, `basic`, `pretty`, `nerdy`): names the file.
    filename: Option<String>,
    /// `1`/`true`: `Content-Disposition: attachment`, saved rather than played.
    download: Option<String>,
    /// The video codec family preferred: `h264`, `vp9`, `av1`, `h265`.
    codec: Option<String>,
    /// What a merge is written as: `mp4` (the default), `mkv`, `webm`;
    /// `gif`: the video as an animated GIF.
    container: Option<String>,
    /// A subtitle language written into the file with the video.
    subtitles: Option<String>,
    /// A clip's first second (`start=5400`, decimals allowed).
    start: Option<String>,
    /// A clip's last second; without it, to the end.
    end: Option<String>,
}

/// A stream request, checked at the edge.
fn request(
    video: VideoRef,
    q: &StreamQuery,
    method: Method,
    headers: HeaderMap,
    client: &Client,
) -> Result<StreamRequest, ApiError> {
    let quality_name = match q.audio_only {
        Some(true) => "audio".to_owned(),
        _ => q.quality.clone().unwrap_or_else(|| "best".to_owned()),
    };
    let quality = quality_name.parse().map_err(|e: String| ApiError::bad_request("Invalid quality", e))?;
    let play = PlayRequest {
        video,
        quality,
        quality_name,
        strict: q.strict.unwrap_or(false),
        redirect_only_for: None,
        player: parse_player(q.player.as_deref())?,
        lang: parse_lang(q.lang.as_deref())?,
        output: parse_output(q, quality)?,
        codec: q
            .codec
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(str::parse::<VideoCodec>)
            .transpose()
            .map_err(|e| ApiError::bad_request("Invalid codec", e))?,
        subtitles: parse_subtitles(q.subtitles.as_deref())?,
    };
    let download = match q.download.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(ApiError::bad_request("Invalid download", "download is 1 or 0")),
    };
    let style = q
        .filename
        .as_deref()
        .map(str::parse::<Style>)
        .transpose()
        .map_err(|e| ApiError::bad_request("Invalid filename", e))?;
    let save_as = match (style, download) {
        (None, false) => None,
        (style, attachment) => Some((style.unwrap_or_default(), attachment)),
    };
    let clip = parse_clip(q.start.as_deref(), q.end.as_deref())?;
    Ok(StreamRequest { play, save_as, method, headers, client: client.id(), clip })
}

/// `start=` and `end=`, in seconds: both finite, not negative, `end` after
/// `start`, within a week.
fn parse_clip(start: Option<&str>, end: Option<&str>) -> Result<Option<Clip>, ApiError> {
    let seconds = |name: &str, v: Option<&str>| match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("Invalid clip", format!("{name} is a number of seconds (0 to 604800)"))),
    };
    stream::clip(seconds("start", start)?, seconds("end", end)?).map_err(|e| ApiError::bad_request("Invalid clip", e))
}

/// `format=`, `bitrate=`, `audio=`, `metadata=`, checked.
fn parse_output(q: &StreamQuery, quality: Quality) -> Result<Output, ApiError> {
    let audio_format = q
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(str::parse::<AudioFormat>)
        .transpose()
        .map_err(|e| ApiError::bad_request("Invalid format", e))?;
    let bitrate = q
        .bitrate
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(str::parse::<Bitrate>)
        .transpose()
        .map_err(|e| ApiError::bad_request("Invalid bitrate", e))?;
    let mute = match q.audio.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "default") => false,
        Some("none" | "mute") => true,
        Some(_) => return Err(ApiError::bad_request("Invalid audio", "audio is none (the video alone) or default")),
    };
    if (audio_format.is_some() || bitrate.is_some()) && quality != Quality::Audio {
        return Err(ApiError::bad_request("Invalid format", "format= and bitrate= go with quality=audio"));
    }
    if mute && quality == Quality::Audio {
        return Err(ApiError::bad_request(
            "Invalid audio",
            "audio=none asks for the video alone; not with quality=audio",
        ));
    }
    let container_name = q.container.as_deref().unwrap_or("");
    let gif = container_name.eq_ignore_ascii_case("gif");
    if gif && (quality == Quality::Audio || mute) {
        return Err(ApiError::bad_request(
            "Invalid container",
            "container=gif makes a GIF of the video; not with audio",
        ));
    }
    let container = if gif { Ok(None) } else { parse_container(container_name) }
        .map_err(|e| ApiError::bad_request("Invalid container", format!("{e}, or gif")))?;
    Ok(Output { audio_format, bitrate, mute, no_tags: q.metadata == Some(false), container, gif })
}

/// `subtitles=`: a language code as the info's `subtitles` list it.
fn parse_subtitles(lang: Option<&str>) -> Result<Option<String>, ApiError> {
    match lang.map(str::trim) {
        None | Some("") => Ok(None),
        Some(l) if l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            Ok(Some(l.to_owned()))
        }
        Some(_) => Err(ApiError::bad_request(
            "Invalid subtitles",
            "subtitles is a language code from the info's subtitles (en, pt-BR)",
        )),
    }
}

async fn direct(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    Ok(write(stream::serve(&state.media, &request(video, &q, method, headers, &client)?, Mode::Direct).await?))
}

async fn proxy(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let req = request(video, &q, method, headers, &client)?;
    let resp = write(stream::serve(&state.media, &req, Mode::Proxy).await?);
    Ok(keepable(resp, state.access.keys_required()))
}

/// The bytes of a stable route (not a signed link): the format it names may
/// change with a new extraction, so shared caches keep them an hour;
/// `private` where a cache must not share them (API keys; the smart route,
/// whose answer depends on the client). Answers that said already (live and
/// HLS playlists, ffmpeg's merges) keep theirs.
fn keepable(mut resp: Response, private: bool) -> Response {
    let status = resp.status();
    let h = resp.headers_mut();
    if (status.is_success() || status == axum::http::StatusCode::NOT_MODIFIED)
        && !h.contains_key(axum::http::header::CACHE_CONTROL)
    {
        super::caching::for_secs(h, super::caching::STABLE_ROUTE_SECS, private);
    }
    resp
}

/// Chooses the mode: `mode=` forces it; else a country in `PROXY_COUNTRIES`
/// means proxy; else `DEFAULT_STREAM_MODE`, except that a URL bound to
/// another address than the client's (googlevideo's `ip=`) is proxied.
async fn smart(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let forced = match q.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("auto") => None,
        Some("proxy") => Some(Mode::Proxy),
        Some("direct") => Some(Mode::Direct),
        Some(_) => return Err(ApiError::bad_request("Invalid mode", "mode is proxy, direct or auto")),
    };
    let country = ["cf-ipcountry", "x-country-code"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .or_else(|| q.country.clone())
        .map(|c| c.trim().to_ascii_uppercase());
    let mut req = request(video, &q, method, headers, &client)?;
    let mode = match forced {
        Some(m) => m,
        None if country.is_some_and(|c| state.proxy_countries.contains(&c)) => Mode::Proxy,
        // A clip is cut by the server.
        None if req.clip.is_some() => Mode::Proxy,
        None => {
            req.play.redirect_only_for = Some(client.ip);
            match state.config.default_stream_mode {
                StreamModeSetting::Direct => Mode::Direct,
                StreamModeSetting::Proxy => Mode::Proxy,
            }
        }
    };
    Ok(keepable(write(stream::serve(&state.media, &req, mode).await?), true))
}
