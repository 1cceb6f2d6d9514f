//! Streams. `direct` redirects to one URL that plays by itself, `proxy`
//! serves the bytes (relayed, remuxed by ffmpeg, or as a rewritten HLS
//! playlist), the smart route picks one of the two, and the HLS route
//! serves the signed links of rewritten playlists.
//!
//! Every mode works from the one cached extraction. The bytes of single
//! files, merges and HLS segments come from the relay engine, which asks for
//! a new extraction itself when the origin refuses a URL; a refused playlist
//! drops the cache entry here and the request is retried once.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::edge::{Video, parse_player};
use super::hls::playlist;
use super::reply::{FORMAT_HEADER, format_header, found};
use super::state::{AppState, Client};
use crate::cache::CachedInfo;
use crate::config::StreamModeSetting;
use crate::extract::{Format, VideoInfo};
use crate::http::error::ApiError;
use crate::platform::VideoRef;
use crate::relay::merge::MergeSpec;
use crate::relay::{ProxyError, Reply};
use crate::select::{Mode, Player, Quality, StreamPlan, select};
use crate::service::Purpose;
use crate::service::play::format_spec;
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
}

/// A stream request, checked at the edge.
struct StreamRequest {
    video: VideoRef,
    quality: Quality,
    /// As the client spelled it, for messages.
    quality_name: String,
    strict: bool,
    method: Method,
    headers: HeaderMap,
    /// Who asks: for the extraction budget.
    client: Client,
    /// Smart mode: redirect only if the URL is not bound to another address.
    redirect_only_for: Option<IpAddr>,
    /// What the player can play.
    player: Player,
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
        Ok(StreamRequest {
            video,
            quality,
            quality_name,
            strict: q.strict.unwrap_or(false),
            method,
            headers,
            client,
            redirect_only_for: None,
            player: parse_player(q.player.as_deref())?,
        })
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
    serve(&state, &StreamRequest::new(video, &q, method, headers, client)?, Mode::Proxy).await
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
        None => {
            req.redirect_only_for = Some(req.client.ip);
            match state.config.default_stream_mode {
                StreamModeSetting::Direct => Mode::Direct,
                StreamModeSetting::Proxy => Mode::Proxy,
            }
        }
    };
    serve(&state, &req, mode).await
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

async fn serve(state: &AppState, req: &StreamRequest, mode: Mode) -> Result<Response, ApiError> {
    let mut refreshed = false;
    loop {
        let cached = state.lookup(&req.video, Purpose::Stream, &req.client).await?;
        let filtered = req.player.filter(&cached.info);
        let info = filtered.as_ref().unwrap_or(&cached.info);
        if info.formats.is_empty() {
            return Err(ApiError::NotFound {
                error: "No playable format",
                detail: format!("this video has no format the {:?} player profile can play", req.player).to_lowercase(),
            });
        }
        if req.player == Player::Avpro
            && let Ok(StreamPlan::Merge { .. }) = select(info, req.quality, Mode::Proxy)
            && (mode == Mode::Proxy || !req.strict)
        {
            // AVPro plays separate video and audio through a manifest: seekable, no ffmpeg.
            return to_manifest(req, mode);
        }
        let attempt = match mode {
            Mode::Direct => match redirect(info, req)? {
                Some(found) => return Ok(found),
                None => serve_proxy(state, req, &cached, info).await,
            },
            Mode::Proxy => serve_proxy(state, req, &cached, info).await,
        };
        match attempt {
            Ok(resp) => return Ok(resp),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Expired) if !refreshed => {
                tracing::info!(key = %req.video.cache_key(), "origin refused a cached stream URL; extracting again");
                state.service.invalidate(&req.video).await;
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

fn height(f: &Format) -> u32 {
    f.height.unwrap_or(0)
}

/// The 302, or `None` when the URL is bound to another address than the
/// client's and must be proxied instead.
fn redirect(info: &VideoInfo, req: &StreamRequest) -> Result<Option<Response>, ApiError> {
    let format = select(info, req.quality, Mode::Direct)?.primary();
    if req.strict
        && let Ok(StreamPlan::Merge { video, .. }) = select(info, req.quality, Mode::Proxy)
        && height(video) > height(format)
    {
        return Err(ApiError::Conflict(format!(
            "{}p needs separate video and audio merged, which only the proxy can serve; use {} (or drop strict=true for the best single URL, {}p)",
            height(video),
            req.video.stream_path("proxy", &req.quality_name),
            height(format)
        )));
    }
    if let Some(client) = req.redirect_only_for
        && bound_ip(&format.url).is_some_and(|bound| bound != client)
    {
        return Ok(None);
    }
    let mut resp = found(&format.url)?;
    resp.headers_mut().insert(FORMAT_HEADER, format_header(&format.format_id));
    Ok(Some(resp))
}

/// The address a stream URL is bound to (googlevideo's `ip=`), if any.
fn bound_ip(url: &str) -> Option<IpAddr> {
    let url = url::Url::parse(url).ok()?;
    let ip = url.query_pairs().find(|(k, _)| k == "ip")?.1;
    ip.parse().ok()
}

/// A 302 to reelay's HLS manifest of the video, for AVPro.
fn to_manifest(req: &StreamRequest, mode: Mode) -> Result<Response, ApiError> {
    let direct = if mode == Mode::Direct { "&mode=direct" } else { "" };
    found(&format!("{}&player=avpro{direct}", req.video.manifest_path("master.m3u8", &req.quality_name)))
}

/// The origin refused the playlist: `Expired` when a new extraction may help.
fn upstream_error(e: ProxyError) -> Attempt {
    match e {
        ProxyError::Expired(_) => Attempt::Expired,
        other => Attempt::Failed(ApiError::from_upstream(other, "the playlist")),
    }
}

async fn serve_proxy(
    state: &AppState,
    req: &StreamRequest,
    cached: &Arc<CachedInfo>,
    info: &VideoInfo,
) -> Result<Response, Attempt> {
    match select(info, req.quality, Mode::Proxy)? {
        StreamPlan::Single(f) => {
            let reply = state
                .relay
                .serve(format_spec(&state.service, &req.video, cached, f), &req.method, &req.headers)
                .await?;
            Ok(with_format(reply, &f.format_id))
        }
        StreamPlan::Hls(f) => {
            let upstream = state
                .relay
                .upstream()
                .open(&Method::GET, &f.url, &Via { headers: &f.http_headers, route: &info.route }, &HeaderMap::new())
                .await
                .map_err(upstream_error)?;
            let mut resp = playlist(state, upstream, &req.video.cache_key(), &f.format_id).await?;
            resp.headers_mut().insert(FORMAT_HEADER, format_header(&f.format_id));
            Ok(resp)
        }
        StreamPlan::Merge { video, audio } => {
            let spec = MergeSpec {
                key: format!("{}|merge:{}+{}", cached.key, video.format_id, audio.format_id),
                video: format_spec(&state.service, &req.video, cached, video),
                audio: format_spec(&state.service, &req.video, cached, audio),
            };
            let reply = state.relay.serve_merge(spec, &req.method, &req.headers).await?;
            Ok(with_format(reply, &format!("{}+{}", video.format_id, audio.format_id)))
        }
    }
}

fn with_format(reply: Reply, format_id: &str) -> Response {
    let mut resp = reply.map(Body::new);
    resp.headers_mut().insert(FORMAT_HEADER, format_header(format_id));
    resp
}
