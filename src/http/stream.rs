//! Streams. `direct` redirects to one URL that plays by itself, `proxy`
//! serves the bytes (relayed, remuxed by ffmpeg, or as a rewritten HLS
//! playlist), the smart route picks one of the two, and the HLS route
//! serves the signed links of rewritten playlists.
//!
//! Every mode works from the one cached extraction. The bytes of single
//! files, merges and HLS segments come from the relay engine, which asks for
//! a new extraction itself when the origin refuses a URL; a refused playlist
//! drops the cache entry here and the request is retried once.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::edge::{Video, parse_lang, parse_player};
use super::hls::{PlaylistFailure, open_playlist};
use super::reply::{FORMAT_HEADER, format_header, found};
use super::state::{AppState, Client};
use crate::cache::CachedInfo;
use crate::config::StreamModeSetting;
use crate::http::error::ApiError;
use crate::output::filename::{Style, content_disposition};
use crate::output::{AudioFormat, Bitrate, Output, VideoCodec, parse_container};
use crate::platform::VideoRef;

use crate::relay::compose::{Clip, ComposeError, Merge};
use crate::relay::merge::{Container, Inputs, MergeSpec, Recipe, TextTrack};
use crate::relay::{ProxyError, Reply};
use crate::select::{Mode, Quality};
use crate::service::Purpose;
use crate::service::play::{self, Play, PlayRequest};
use crate::upstream::Via;

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

/// A stream request: what to play, checked at the edge, and how it was asked.
struct StreamRequest {
    play: PlayRequest,
    /// The name the file is saved under, and whether as an attachment.
    save_as: Option<(Style, bool)>,
    method: Method,
    headers: HeaderMap,
    /// Who asks: for the extraction budget.
    client: Client,
    /// `start=`/`end=`: a part of the film, composed (proxy route only).
    clip: Option<Clip>,
}

impl StreamRequest {
    fn new(
        video: VideoRef,
        q: &StreamQuery,
        method: Method,
        headers: HeaderMap,
        client: Client,
    ) -> Result<Self, ApiError> {
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
        Ok(StreamRequest { play, save_as, method, headers, client, clip })
    }
}

/// `start=` and `end=`, in seconds: both finite, not negative, `end` after
/// `start`, within a week.
fn parse_clip(start: Option<&str>, end: Option<&str>) -> Result<Option<Clip>, ApiError> {
    let seconds = |name: &str, v: &str| {
        v.trim().parse::<f64>().ok().filter(|t| t.is_finite() && (0.0..=604_800.0).contains(t)).ok_or_else(|| {
            ApiError::bad_request("Invalid clip", format!("{name} is a number of seconds (0 to 604800)"))
        })
    };
    let (start, end) = match (start.filter(|s| !s.is_empty()), end.filter(|s| !s.is_empty())) {
        (None, None) => return Ok(None),
        (start, end) => (
            start.map(|v| seconds("start", v)).transpose()?.unwrap_or(0.0),
            end.map(|v| seconds("end", v)).transpose()?.unwrap_or(f64::INFINITY),
        ),
    };
    if end <= start {
        return Err(ApiError::bad_request("Invalid clip", "end is after start"));
    }
    Ok(Some(Clip { start, end }))
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
    serve(&state, &StreamRequest::new(video, &q, method, headers, client)?, Mode::Direct).await
}

async fn proxy(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let resp = serve(&state, &StreamRequest::new(video, &q, method, headers, client)?, Mode::Proxy).await?;
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
    let mut req = StreamRequest::new(video, &q, method, headers, client)?;
    let mode = match forced {
        Some(m) => m,
        None if country.is_some_and(|c| state.proxy_countries.contains(&c)) => Mode::Proxy,
        // A clip is cut by the server.
        None if req.clip.is_some() => Mode::Proxy,
        None => {
            req.play.redirect_only_for = Some(req.client.ip);
            match state.config.default_stream_mode {
                StreamModeSetting::Direct => Mode::Direct,
                StreamModeSetting::Proxy => Mode::Proxy,
            }
        }
    };
    Ok(keepable(serve(&state, &req, mode).await?, true))
}

/// Why one attempt at serving failed.
enum Attempt {
    /// The origin refused the cached URL: re-extract and try once more.
    Expired,
    Failed(ApiError),
}

impl<E: Into<ApiError>> From<E> for Attempt {
    fn from(e: E) -> Self {
        Attempt::Failed(e.into())
    }
}

/// Serves `play` through the proxy, named `save_as` (cobalt's tunnels).
pub(super) async fn serve_proxied(
    state: &AppState,
    play: PlayRequest,
    save_as: Option<(Style, bool)>,
    method: Method,
    headers: HeaderMap,
    client: Client,
) -> Result<Response, ApiError> {
    serve(state, &StreamRequest { play, save_as, method, headers, client, clip: None }, Mode::Proxy).await
}

async fn serve(state: &AppState, req: &StreamRequest, mode: Mode) -> Result<Response, ApiError> {
    if req.clip.is_some() && mode == Mode::Direct {
        return Err(ApiError::Conflict(
            "a clip (start=, end=) is cut by the server: ask the proxy route, /api/v2/stream/proxy/…".into(),
        ));
    }
    let mut refreshed = false;
    loop {
        let cached = match state.lookup(&req.play.video, Purpose::Stream, &req.client).await {
            Ok(cached) => cached,
            // A live stream whose players reload it while it cannot be
            // looked up (it ended; its renewal fails): the newest window
            // (ended once its poller gives up), rather than an error.
            Err(e) => match state.live.latest(&req.play.video.cache_key()) {
                Some(copy) => return Ok(super::live::reply(copy, None)),
                None => return Err(e),
            },
        };
        let filtered = play::playable(&req.play, &cached)?;
        let info = filtered.as_ref().unwrap_or(&cached.info);
        let plan = play::plan(&state.service, &req.play, &cached, info, mode)?;
        let name = req.save_as.and_then(|(style, attachment)| {
            let served = match &plan {
                Play::Relay { served, .. } | Play::Merge { served, .. } => served,
                _ => return None,
            };
            Some(content_disposition(&play::file_name(&req.play.video, info, served, style), attachment))
        });
        match carry_out(state, req, &cached, plan).await.map(|resp| with_name(resp, name.as_deref())) {
            Ok(resp) => return Ok(resp),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Expired) if !refreshed => {
                tracing::info!(key = %req.play.video.cache_key(), "origin refused a cached stream URL; extracting again");
                state.service.invalidate(&req.play.video).await;
                refreshed = true;
            }
            Err(Attempt::Expired) => {
                return Err(ApiError::BadGateway {
                    error: "Upstream error",
                    detail: "the origin refused the stream URL, also after extracting the video again".into(),
                });
            }
        }
    }
}

/// The origin refused the playlist: `Expired` when a new extraction may help.
fn upstream_error(e: ProxyError) -> Attempt {
    match e {
        ProxyError::Expired(_) => Attempt::Expired,
        other => Attempt::Failed(ApiError::from_upstream(other, "the playlist")),
    }
}

/// Answers a [`Play`]: the redirect, or the bytes from the relay.
async fn carry_out(
    state: &AppState,
    req: &StreamRequest,
    cached: &CachedInfo,
    play: Play<'_>,
) -> Result<Response, Attempt> {
    if req.clip.is_some() && !matches!(play, Play::Merge { .. }) {
        return Err(unclippable("this video is served as one stream").into());
    }
    match play {
        Play::Redirect(format) => {
            let mut resp = found(&format.url)?;
            resp.headers_mut().insert(FORMAT_HEADER, format_header(&format.format_id));
            Ok(resp)
        }
        Play::Manifest(path) => Ok(found(&path)?),
        Play::Relay { spec, format_id, .. } => {
            let reply = state.relay.serve(spec, &req.method, &req.headers).await?;
            Ok(with_format(reply, format_id))
        }
        Play::Hls { format: f, route } => {
            let via = Via { headers: &f.http_headers, route };
            let key = req.play.video.cache_key();
            let opened = open_playlist(state, &f.url, &via, &HeaderMap::new(), &key, &f.format_id).await;
            let mut resp = opened.map_err(|failure| match failure {
                PlaylistFailure::Upstream(e) => upstream_error(e),
                PlaylistFailure::Body(e) => Attempt::Failed(e),
            })?;
            resp.headers_mut().insert(FORMAT_HEADER, format_header(&f.format_id));
            Ok(resp)
        }
        Play::Live { key, source } => Ok(super::live::playlist(state, &key, move || source).await?),
        Play::Merge { mut spec, label, subtitles, .. } => {
            if let Some(track) = subtitles {
                let vtt = state
                    .subtitles
                    .webvtt(state.relay.upstream(), &cached.key, &cached.info, track)
                    .await
                    .map_err(ApiError::from)?;
                spec.text = Some(TextTrack { lang: track.lang.clone(), vtt });
            }
            if let Some(merge) = composable(state, &spec, req.clip).await {
                match state.relay.serve_composed(merge, &req.method, &req.headers).await {
                    Ok(reply) => return Ok(with_format(reply, &label)),
                    Err(ComposeError::Relay(e)) => return Err(e.into()),
                    Err(e) if req.clip.is_some() => return Err(unclippable(&e.to_string()).into()),
                    Err(e) => tracing::info!(key = %spec.key, error = %e, "merge not composable; ffmpeg merges it"),
                }
            }
            if req.clip.is_some() {
                return Err(unclippable("its parts are not DASH MP4 files with an index").into());
            }
            let reply = state.relay.serve_merge(spec, &req.method, &req.headers).await?;
            Ok(with_format(reply, &label))
        }
    }
}

/// A plain MP4 merge of two DASH files that both have an index: composed
/// in process from their fragments, no ffmpeg (`relay::compose`). Anything
/// else (other containers, subtitles, progressive or WebM inputs) is
/// ffmpeg's.
async fn composable(state: &AppState, spec: &MergeSpec, clip: Option<Clip>) -> Option<Merge> {
    let Inputs::Pair { video, audio } = &spec.inputs else { return None };
    if spec.recipe != Recipe::Merge(Container::Mp4) || spec.text.is_some() {
        return None;
    }
    let (v, a) = tokio::join!(
        state.indexes.get(&state.relay, || video.clone()),
        state.indexes.get(&state.relay, || audio.clone())
    );
    Some(Merge { key: spec.key.clone(), video: (video.clone(), v.ok()?), audio: (audio.clone(), a.ok()?), clip })
}

/// Why a clip cannot be cut of this video.
fn unclippable(why: &str) -> ApiError {
    ApiError::Unprocessable {
        error: "Cannot clip",
        detail: format!(
            "a clip is cut from separate DASH video and audio with their index (YouTube above 360p, Bilibili): {why}"
        ),
    }
}

/// Adds `Content-Disposition` to a successful answer.
fn with_name(mut resp: Response, disposition: Option<&str>) -> Response {
    if let Some(d) = disposition
        && resp.status().is_success()
        && let Ok(v) = axum::http::HeaderValue::from_str(d)
    {
        resp.headers_mut().insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    resp
}

fn with_format(reply: Reply, format_id: &str) -> Response {
    let mut resp = reply.map(Body::new);
    resp.headers_mut().insert(FORMAT_HEADER, format_header(format_id));
    resp
}
