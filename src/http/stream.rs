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
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::videos::Video;
use crate::app::{AppState, Client};
use crate::cache::{CachedInfo, now_unix};
use crate::config::StreamModeSetting;
use crate::egress::Route;
use crate::error::ApiError;
use crate::extract::{Format, Headers, VideoInfo};
use crate::platform::VideoRef;
use crate::relay::merge::MergeSpec;
use crate::relay::upstream::{Via, read_limited};
use crate::relay::{Fetched, Fixed, Locator, ProxyError, Reply, Spec};
use crate::select::{Mode, Player, Quality, StreamPlan, select};
use crate::service::{FormatSource, Purpose};
use crate::stream::{Grant, hls};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v2/stream/direct/{platform}/{video_id}", get(direct)),
        ("/api/v2/stream/direct", get(direct)),
        ("/api/v2/stream/proxy/{platform}/{video_id}", get(proxy)),
        ("/api/v2/stream/proxy", get(proxy)),
        ("/api/v2/stream/{platform}/{video_id}", get(smart)),
        ("/api/v2/stream", get(smart)),
        ("/api/v2/stream/hls/{token}/{name}", get(hls_link)),
    ]
}

/// Header naming the format (or `video+audio` formats) a stream comes from.
pub(super) const FORMAT_HEADER: HeaderName = HeaderName::from_static("x-reelay-format");

/// How long the signed links of a rewritten playlist stay valid.
const LINK_TTL_SECS: i64 = 6 * 3600;

/// The largest playlist the server will rewrite.
const MAX_PLAYLIST_BYTES: usize = 4 * 1024 * 1024;

const HLS_TYPE: &str = "application/vnd.apple.mpegurl";

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
            player: super::manifest::parse_player(q.player.as_deref())?,
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

/// A `302` to `location`, never cached (stream URLs expire).
pub(super) fn found(location: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location).map_err(|_| ApiError::BadGateway {
        error: "Unusable stream URL",
        detail: "the extractor returned a URL that is not valid in a header".into(),
    })?;
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The address a stream URL is bound to (googlevideo's `ip=`), if any.
fn bound_ip(url: &str) -> Option<IpAddr> {
    let url = url::Url::parse(url).ok()?;
    let ip = url.query_pairs().find(|(k, _)| k == "ip")?.1;
    ip.parse().ok()
}

pub(super) fn format_header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("unknown"))
}

/// A 302 to reelay's HLS manifest of the video, for AVPro.
fn to_manifest(req: &StreamRequest, mode: Mode) -> Result<Response, ApiError> {
    let direct = if mode == Mode::Direct { "&mode=direct" } else { "" };
    found(&format!("{}&player=avpro{direct}", req.video.manifest_path("master.m3u8", &req.quality_name)))
}

async fn serve_proxy(
    state: &AppState,
    req: &StreamRequest,
    cached: &Arc<CachedInfo>,
    info: &VideoInfo,
) -> Result<Response, Attempt> {
    match select(info, req.quality, Mode::Proxy)? {
        StreamPlan::Single(f) => {
            let reply = state.relay.serve(format_spec(state, &req.video, cached, f), &req.method, &req.headers).await?;
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
                video: format_spec(state, &req.video, cached, video),
                audio: format_spec(state, &req.video, cached, audio),
            };
            let reply = state.relay.serve_merge(spec, &req.method, &req.headers).await?;
            Ok(with_format(reply, &format!("{}+{}", video.format_id, audio.format_id)))
        }
    }
}

/// The relay object of one format: its bytes, keyed by the video (with its
/// sign-in scope) and the format, found through the cached extraction.
pub(super) fn format_spec(state: &AppState, video: &VideoRef, cached: &Arc<CachedInfo>, f: &Format) -> Spec {
    Spec {
        key: format!("{}|{}", cached.key, f.format_id),
        source: Arc::new(FormatSource::new(state.service.clone(), video.clone(), cached.clone(), &f.format_id)),
        chunk_size: f.chunk_size,
    }
}

fn with_format(reply: Reply, format_id: &str) -> Response {
    let mut resp = reply.map(Body::new);
    resp.headers_mut().insert(FORMAT_HEADER, format_header(format_id));
    resp
}

fn upstream_error(e: ProxyError) -> Attempt {
    let detail = e.to_string();
    match e {
        ProxyError::Expired(_) => Attempt::Expired,
        ProxyError::Refused(_) => ApiError::Forbidden(detail).into(),
        ProxyError::Status(_) => ApiError::BadGateway { error: "Upstream error", detail }.into(),
        ProxyError::Connect(_) => ApiError::BadGateway { error: "Upstream unreachable", detail }.into(),
    }
}

/// An origin failure where no re-extraction will follow; `refused` says
/// what the origin refused (403/410).
pub(super) fn upstream_api_error(e: ProxyError, refused: &str) -> ApiError {
    match upstream_error(e) {
        Attempt::Failed(e) => e,
        Attempt::Expired => {
            ApiError::BadGateway { error: "Upstream error", detail: format!("the origin refused {refused}") }
        }
    }
}

/// Reads a playlist and answers it rewritten: each URI becomes a signed
/// link to `/api/v2/stream/hls/...` that fetches with the format's headers.
async fn playlist(state: &AppState, upstream: Fetched, video_key: &str, format_id: &str) -> Result<Response, ApiError> {
    let base = upstream.url;
    let body = read_limited(upstream.response.into_body(), MAX_PLAYLIST_BYTES)
        .await
        .map_err(|detail| ApiError::BadGateway { error: "Upstream error", detail })?;
    let text = String::from_utf8_lossy(&body);
    let expires = now_unix() + LINK_TTL_SECS;
    let route = VideoRef::from_cache_key(video_key).map(|v| route_query(&v)).unwrap_or_default();
    let rewritten = hls::rewrite(&text, &base, |u, nested| {
        let grant = Grant { u: u.to_string(), v: video_key.to_owned(), f: format_id.to_owned(), e: expires, p: nested };
        format!("/api/v2/stream/hls/{}/{}?v={route}", state.signer.sign(&grant), link_name(u))
    });
    let mut resp = Response::new(Body::from(rewritten));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(HLS_TYPE));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The `?v=` of a signed link: it names the video for load balancers that
/// route by it (deploy/nginx.conf); it is not part of the grant.
pub(super) fn route_query(video: &VideoRef) -> String {
    match video {
        // `{platform}/{id}` is safe in a query as it is, and must read the same as the paths.
        VideoRef::Known { .. } => video.route_key(),
        VideoRef::Generic { .. } => url::form_urlencoded::byte_serialize(video.route_key().as_bytes()).collect(),
    }
}

/// A source's own HLS playlist, rewritten to signed links (the manifest
/// route of a video that is HLS already).
pub(super) async fn source_playlist(
    state: &AppState,
    video: &VideoRef,
    f: &Format,
    route: &Route,
) -> Result<Response, ApiError> {
    let upstream = state
        .relay
        .upstream()
        .open(&Method::GET, &f.url, &Via { headers: &f.http_headers, route }, &HeaderMap::new())
        .await
        .map_err(|e| upstream_api_error(e, "the playlist"))?;
    let mut resp = playlist(state, upstream, &video.cache_key(), &f.format_id).await?;
    resp.headers_mut().insert(FORMAT_HEADER, format_header(&f.format_id));
    Ok(resp)
}

/// The last path segment of an upstream URL, kept readable in signed links
/// (players and logs like to see `seg3.ts`); it is not part of the grant.
fn link_name(u: &url::Url) -> String {
    let last = u.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let name: String =
        last.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(64).collect();
    if name.is_empty() { "media".to_owned() } else { name }
}

/// A signed link from a rewritten playlist: a nested playlist (rewritten
/// again), or a segment, key or init section (from the relay, keyed by the
/// video, the format and the segment's path, so every viewer shares it).
async fn hls_link(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let grant = state.signer.verify(&token, now_unix()).map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let (format_headers, route) = headers_for(&state, &grant).await;
    let via = Via { headers: &format_headers, route: &route };
    let url = url::Url::parse(&grant.u).map_err(|_| ApiError::Forbidden("the link names no URL".into()))?;
    if method == Method::GET && (grant.p || hls::is_playlist(None, &url)) {
        let upstream = state
            .relay
            .upstream()
            .open(&method, &grant.u, &via, &headers)
            .await
            .map_err(|e| upstream_api_error(e, "this part of the stream"))?;
        return playlist(&state, upstream, &grant.v, &grant.f).await;
    }
    let spec = Spec {
        key: format!("{}|{}|seg:{}", grant.v, grant.f, hls::segment_identity(&url)),
        source: Arc::new(Fixed(Locator {
            url: grant.u.clone(),
            headers: format_headers.clone(),
            route: route.clone(),
        })),
        chunk_size: None,
    };
    let reply = state.relay.serve(spec, &method, &headers).await.map_err(|e| refused_part(e.into()))?;
    let content_type = reply.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if method == Method::GET && hls::is_playlist(content_type, &url) {
        // A playlist the tags did not announce: fetched and rewritten.
        let upstream = state
            .relay
            .upstream()
            .open(&method, &grant.u, &via, &HeaderMap::new())
            .await
            .map_err(|e| upstream_api_error(e, "this part of the stream"))?;
        return playlist(&state, upstream, &grant.v, &grant.f).await;
    }
    Ok(reply.map(Body::new))
}

/// A segment's refusal says which part was refused.
fn refused_part(e: ApiError) -> ApiError {
    match e {
        ApiError::BadGateway { error, detail } if detail.contains("refused") => {
            ApiError::BadGateway { error, detail: "the origin refused this part of the stream".into() }
        }
        other => other,
    }
}

/// The upstream headers of the granted format, and the route its video
/// left by, from the cached extraction.
async fn headers_for(state: &AppState, grant: &Grant) -> (Headers, Route) {
    let Some(video) = VideoRef::from_cache_key(&grant.v) else { return Default::default() };
    match state.service.info(&video, Purpose::Info, None).await {
        Ok((cached, _)) => {
            let headers = cached.info.formats.iter().find(|f| f.format_id == grant.f).map(|f| f.http_headers.clone());
            (headers.unwrap_or_default(), cached.info.route.clone())
        }
        Err(e) => {
            tracing::warn!(error = %e, "no headers for a signed HLS link; fetching without them");
            Default::default()
        }
    }
}
