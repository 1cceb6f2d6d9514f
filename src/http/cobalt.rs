//! cobalt's API under `/cobalt/` (its instance URL for reelay is
//! `https://host/cobalt`): `GET` the instance info, `POST` a link and get a
//! `tunnel`, `redirect`, `picker`, `local-processing` or `error` in cobalt's
//! shapes, and `GET /cobalt/tunnel/{token}` for the file a tunnel names —
//! reelay's own proxy route underneath (the relay, the merge, a transcode),
//! saved under cobalt's file name.
//!
//! The request schema, the codes and the shapes are `crate::cobalt`'s;
//! this module reads the headers, checks the key, looks the video up and
//! maps reelay's refusals onto cobalt's codes.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::access::{KeyCheck, key_id};
use super::error::ApiError;
use super::state::{AppState, Client};
use crate::cache::{CachedInfo, now_unix};
use crate::cobalt::{
    Answer, Checked, CobaltRequest, Code, Context, DownloadMode, Git, Instance, InstanceInfo, LocalAudio, LocalOutput,
    LocalProcessing, PickerItem, TunnelGrant, mime_of,
};
use crate::extract::VideoInfo;
use crate::output::filename::Style;
use crate::output::{Bitrate, Output, VideoCodec, parse_container};
use crate::platform::{InputError, Platform, PlaylistRef, VideoRef};
use crate::relay::merge::Recipe;
use crate::select::{AudioLang, Mode, Player};
use crate::service::Purpose;
use crate::service::play::{self, Play, PlayError, PlayRequest};

/// How long a tunnel link works: long enough to start a download after
/// the answer (cobalt's own last 90 s); a started download runs to its end.
const TUNNEL_TTL_SECS: i64 = 3600;

/// The instance info and the processing route (under `REQUEST_TIMEOUT`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/cobalt", get(instance).post(process)), ("/cobalt/", get(instance).post(process))]
}

/// The tunnels: streams, with no deadline.
pub fn tunnel_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/cobalt/tunnel/{token}", get(tunnel))]
}

/// `GET /cobalt/`: cobalt answers it to anyone, unlimited.
pub fn is_instance_info(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(path, "/cobalt" | "/cobalt/")
}

/// The 429 of cobalt's rate limit, with the window in its context.
pub fn rate_exceeded(window_secs: u64, retry_after: u64) -> Response {
    let mut resp = answer(StatusCode::TOO_MANY_REQUESTS, &Answer::error(Code::RateExceeded, Some(limit(window_secs))));
    resp.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
    resp
}

fn limit(secs: u64) -> Context {
    Context { limit: Some(secs), service: None }
}

fn answer(status: StatusCode, body: &Answer) -> Response {
    let mut resp = (status, serde_json::to_vec(body).expect("plain JSON")).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// An error answer: cobalt answers them all 400.
fn fail(code: Code, context: Option<Context>) -> Response {
    answer(StatusCode::BAD_REQUEST, &Answer::error(code, context))
}

/// The address clients reach this server at: `PUBLIC_URL`, else the
/// request's `Host` (and a trusted proxy's `X-Forwarded-Proto`/`-Host`).
fn public_base(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let text =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim());
    let trusted = state.access.is_trusted(peer.ip());
    let proto = trusted.then(|| text("x-forwarded-proto")).flatten().filter(|p| matches!(*p, "http" | "https"));
    let host = trusted
        .then(|| text("x-forwarded-host"))
        .flatten()
        .or_else(|| text("host"))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .map_or_else(|| peer.to_string(), str::to_owned);
    format!("{}://{host}", proto.unwrap_or("http"))
}

/// `GET /cobalt/`.
async fn instance(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let started = state.health.started_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let info = InstanceInfo {
        cobalt: Instance {
            version: crate::cobalt::API_VERSION,
            url: format!("{}/cobalt/", public_base(&state, peer, &headers)),
            start_time: started.to_string(),
            services: Platform::NAMES.iter().copied().filter(|n| *n != "x").collect(),
        },
        git: Git { commit: option_env!("REELAY_GIT_COMMIT").unwrap_or("unknown"), branch: "main", remote: "reelay" },
    };
    let mut resp = (StatusCode::OK, serde_json::to_vec(&info).expect("plain JSON")).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// cobalt's check of `Accept` and `Content-Type`.
fn is_json(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        matches!(v.to_ascii_lowercase().as_str(), "application/json" | "application/json; charset=utf-8")
    })
}

/// `POST /cobalt/`.
async fn process(
    State(state): State<AppState>,
    Extension(mut client): Extension<Client>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_json(&headers, header::ACCEPT) {
        return fail(Code::HeaderAccept, None);
    }
    if !is_json(&headers, header::CONTENT_TYPE) {
        return fail(Code::HeaderContentType, None);
    }
    let key = super::access::presented_key(&headers, None);
    match state.access.check_key(key.as_deref()) {
        KeyCheck::Missing => return fail(Code::AuthKeyMissing, None),
        KeyCheck::Wrong => return fail(Code::AuthKeyNotFound, None),
        KeyCheck::Valid => client.key = Some(key_id(key.as_deref().unwrap_or_default())),
        KeyCheck::Open => {}
    }
    let req = match CobaltRequest::parse(&body) {
        Ok(req) => req,
        Err(e) => return fail(e.code(), None),
    };
    let video = match VideoRef::from_url(&req.url) {
        Ok(v) => v,
        Err(InputError::InvalidId { platform, .. }) => {
            return fail(Code::LinkUnsupported, Some(service(platform.as_str())));
        }
        Err(_) => return fail(Code::LinkInvalid, None),
    };
    let name = video.platform_name();
    let base = public_base(&state, peer, &headers);
    let cached = match state.lookup(&video, Purpose::Stream, &client).await {
        Ok(cached) => cached,
        Err(ApiError::NotFound { detail, .. }) if detail.contains("is a playlist") => {
            return picker(&state, &video, &req, &client, &base).await;
        }
        Err(e) => return refusal(&state, &e, name),
    };
    match respond(&state, &video, &cached, &req, &base) {
        Ok(a) => answer(StatusCode::OK, &a),
        Err(Refused::Api(e)) => refusal(&state, &e, name),
        Err(Refused::Code(code)) => fail(code, Some(service(name))),
    }
}

/// Why a looked-up video gets no file.
enum Refused {
    Api(ApiError),
    Code(Code),
}

impl<E: Into<ApiError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Refused::Api(e.into())
    }
}

/// A post with several videos (an X post, a carousel): a picker, one
/// tunnel per item, each item looked up on its own link when fetched.
async fn picker(state: &AppState, video: &VideoRef, req: &Checked, client: &Client, base: &str) -> Response {
    let name = video.platform_name();
    let post = video.source_url();
    let Ok(url) = url::Url::parse(&post) else { return fail(Code::LinkInvalid, None) };
    let list = match state.lookup_playlist(&PlaylistRef::Generic { url }, client).await {
        Ok(list) => list,
        Err(e) => return refusal(state, &e, name),
    };
    let mut items = Vec::new();
    for entry in &list.entries {
        // Each item's own link; an X post's items share the post's, and
        // are named `…/video/{n}` (as the platform and yt-dlp name them).
        let own = entry.url.clone().filter(|u| *u != post && u.starts_with("http"));
        let link = match (own, video.platform()) {
            (Some(u), _) => u,
            (None, Some(Platform::Twitter)) => format!("{post}/video/{}", entry.index),
            (None, _) => return fail(Code::FetchEmpty, Some(service(name))),
        };
        let Ok(item) = VideoRef::item(&link) else { return fail(Code::FetchEmpty, Some(service(name))) };
        let grant = tunnel_grant(&item, req, req.quality_name.clone(), req.dub.as_ref(), None, None);
        items.push(PickerItem {
            kind: "video",
            url: format!("{base}/cobalt/tunnel/{}", state.signer.sign(&grant)),
            thumb: entry.thumbnail.clone(),
        });
    }
    if items.is_empty() {
        return fail(Code::FetchEmpty, Some(service(name)));
    }
    answer(StatusCode::OK, &Answer::Picker { picker: items })
}

/// The signed request a tunnel carries.
fn tunnel_grant(
    video: &VideoRef,
    req: &Checked,
    quality_name: String,
    lang: Option<&AudioLang>,
    f: Option<String>,
    x: Option<String>,
) -> TunnelGrant {
    TunnelGrant {
        v: video.cache_key(),
        e: now_unix() + TUNNEL_TTL_SECS,
        q: quality_name,
        s: req.style.as_str().to_owned(),
        l: lang.map(ToString::to_string),
        a: req.output.audio_format.map(|a| a.as_str().to_owned()),
        b: req.output.bitrate.map(Bitrate::kbps),
        m: req.output.mute,
        t: req.output.no_tags,
        c: Some(req.codec.to_owned()),
        k: req.output.container.map(|c| c.extension().to_owned()),
        f,
        x,
        u: req.subtitles.clone(),
        g: req.output.gif,
    }
}

fn service(name: &str) -> Context {
    Context { service: Some(name.to_owned()), limit: None }
}

/// reelay's refusal as cobalt's code.
fn refusal(state: &AppState, e: &ApiError, platform: &str) -> Response {
    let svc = || Some(service(platform));
    match e {
        ApiError::NotFound { detail, .. } if detail.to_ascii_lowercase().contains("private video") => {
            fail(Code::ContentPrivate, svc())
        }
        ApiError::NotFound { error, .. } if *error == "Video unavailable" => fail(Code::ContentUnavailable, svc()),
        ApiError::NotFound { error, .. } if error.contains("format") || error.contains("Language") => {
            fail(Code::FetchEmpty, svc())
        }
        ApiError::NotFound { .. } => fail(Code::ContentUnavailable, svc()),
        ApiError::SignInRequired(d) if d.to_ascii_lowercase().contains("private") => fail(Code::ContentPrivate, svc()),
        ApiError::SignInRequired(_) => fail(Code::ContentAge, svc()),
        ApiError::GeoBlocked(_) => fail(Code::ContentRegion, svc()),
        ApiError::Blocked { .. } if platform == "youtube" => fail(Code::YoutubeLogin, svc()),
        ApiError::Blocked { .. } => fail(Code::FetchRate, svc()),
        ApiError::TooManyRequests { retry_after, .. } => {
            let mut resp = answer(
                StatusCode::TOO_MANY_REQUESTS,
                &Answer::error(Code::RateExceeded, Some(limit(state.config.rate_limit_window))),
            );
            resp.headers_mut().insert(header::RETRY_AFTER, (*retry_after).into());
            resp
        }
        ApiError::Conflict(_) => fail(Code::FetchEmpty, svc()),
        ApiError::BadRequest { .. } | ApiError::Forbidden(_) => fail(Code::LinkInvalid, None),
        ApiError::Internal(_) => fail(Code::Generic, None),
        _ => fail(Code::FetchFail, svc()),
    }
}

/// The stream request a cobalt request becomes.
fn play_request(video: &VideoRef, req: &Checked, lang: Option<AudioLang>) -> PlayRequest {
    PlayRequest {
        video: video.clone(),
        quality: req.quality,
        quality_name: req.quality_name.clone(),
        strict: false,
        redirect_only_for: None,
        player: Player::Browser,
        lang,
        output: req.output,
        codec: req.codec.parse().ok(),
        subtitles: req.subtitles.clone(),
    }
}

/// What to answer for a looked-up video.
fn respond(
    state: &AppState,
    video: &VideoRef,
    cached: &std::sync::Arc<CachedInfo>,
    req: &Checked,
    base: &str,
) -> Result<Answer, Refused> {
    if cached.info.is_live {
        // A file of a live stream cannot be made before it ends.
        return Err(Refused::Code(Code::ContentLive));
    }
    // cobalt makes X's GIFs (silent MP4s) real GIFs unless told not to.
    let gif = req.convert_gif
        && req.mode != DownloadMode::Audio
        && cached.info.formats.iter().any(crate::output::is_platform_gif);
    let as_gif;
    let req = if gif {
        as_gif = Checked { output: Output { gif, ..req.output }, ..req.clone() };
        &as_gif
    } else {
        req
    };
    let mut play_req = play_request(video, req, req.dub.clone());
    let filtered = match play::playable(&play_req, cached) {
        // cobalt plays the original when the dub asked for is not there.
        Err(PlayError::NoLanguage(_)) => {
            play_req.lang = None;
            play::playable(&play_req, cached)?
        }
        other => other?,
    };
    let info = filtered.as_ref().unwrap_or(&cached.info);
    let plan = play::plan(&state.service, &play_req, cached, info, Mode::Proxy)?;
    let served = match &plan {
        Play::Relay { served, .. } | Play::Merge { served, .. } => *served,
        // HLS-only sources (Twitch VODs) are not made into files yet.
        _ => return Err(Refused::Code(Code::FetchEmpty)),
    };
    let filename = play::file_name(video, info, &served, req.style);
    let grant = |f: Option<String>, x: Option<String>| {
        tunnel_grant(video, req, play_req.quality_name.clone(), play_req.lang.as_ref(), f, x)
    };
    let link = |g: TunnelGrant| format!("{base}/cobalt/tunnel/{}", state.signer.sign(&g));
    let ffmpeg = matches!(plan, Play::Merge { .. });
    let local = match req.local {
        LocalProcessing::Forced => true,
        LocalProcessing::Preferred => ffmpeg,
        LocalProcessing::Disabled => false,
    };
    if local {
        return Ok(local_processing(video, info, req, &plan, &filename, |f, x| link(grant(f, x))));
    }
    if let Play::Relay { format_id, .. } = &plan
        && !req.always_proxy
        && let Some(f) = info.formats.iter().find(|f| f.format_id == *format_id)
        && plays_anywhere(f, req.mode)
    {
        return Ok(Answer::Redirect { url: f.url.clone(), filename });
    }
    Ok(Answer::Tunnel { url: link(grant(None, None)), filename })
}

/// A file that plays from anywhere, as it is: a progressive file with what
/// the mode needs, whose URL is not bound to this server's address.
fn plays_anywhere(f: &crate::extract::Format, mode: DownloadMode) -> bool {
    let bound = url::Url::parse(&f.url).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "ip"));
    let complete = match mode {
        DownloadMode::Auto => f.has_video && f.has_audio,
        DownloadMode::Audio => f.has_audio && !f.has_video,
        DownloadMode::Mute => f.has_video && !f.has_audio,
    };
    complete && !bound && !f.is_manifest()
}

/// `local-processing`: the parts, each a tunnel, for the client to join.
fn local_processing(
    video: &VideoRef,
    info: &VideoInfo,
    req: &Checked,
    plan: &Play,
    filename: &str,
    link: impl Fn(Option<String>, Option<String>) -> String,
) -> Answer {
    let (kind, mut tunnel, audio) = match plan {
        Play::Merge { spec, label, .. } => {
            let ids: Vec<&str> = label.split(['+', '>']).collect();
            let first = || vec![link(Some(ids[0].to_owned()), None)];
            match &spec.recipe {
                // A single file remuxed to hold the subtitles: the file (and the track, below).
                Recipe::Merge(_) | Recipe::Mute if ids.len() == 1 => ("remux", first(), None),
                Recipe::Merge(_) => {
                    ("merge", ids.iter().take(2).map(|id| link(Some((*id).to_owned()), None)).collect(), None)
                }
                Recipe::Mute => ("mute", first(), None),
                Recipe::Gif => ("gif", first(), None),
                Recipe::Audio { codec, .. } => {
                    let bitrate = req.output.bitrate.unwrap_or(Bitrate::DEFAULT).to_string();
                    let audio = LocalAudio { copy: false, format: codec.extension().to_owned(), bitrate };
                    ("audio", first(), Some(audio))
                }
            }
        }
        _ => ("proxy", vec![link(None, None)], None),
    };
    let subtitles = req.subtitles.as_deref().filter(|l| info.subtitles.iter().any(|s| s.lang.eq_ignore_ascii_case(l)));
    if let Some(lang) = subtitles {
        tunnel.push(link(None, Some(lang.to_owned())));
    }
    let metadata = (!req.output.no_tags).then(|| {
        let mut m = serde_json::Map::new();
        m.insert("title".into(), info.title.clone().into());
        if let Some(u) = &info.uploader {
            m.insert("artist".into(), u.clone().into());
        }
        m
    });
    Answer::LocalProcessing {
        kind,
        service: video.platform_name().to_owned(),
        tunnel,
        output: LocalOutput {
            kind: mime_of(filename).to_owned(),
            filename: filename.to_owned(),
            metadata,
            subtitles: subtitles.map(|_| true),
        },
        audio,
    }
}

/// `GET /cobalt/tunnel/{token}`: the file a `POST` answered, as an
/// attachment under its name; or one part of a `local-processing` answer.
async fn tunnel(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let g: TunnelGrant = state.signer.verify(&token, now_unix()).map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let video = VideoRef::from_cache_key(&g.v).ok_or_else(|| ApiError::Forbidden("the link names no video".into()))?;
    if g.f.is_some() || g.x.is_some() {
        return part(&state, &video, &g, &client, &method, &headers).await;
    }
    let bad = |e: String| ApiError::Forbidden(format!("the link is not one this server made: {e}"));
    let play = PlayRequest {
        video,
        quality: g.q.parse().map_err(bad)?,
        quality_name: g.q.clone(),
        strict: false,
        redirect_only_for: None,
        player: Player::Browser,
        lang: g.l.as_deref().map(str::parse).transpose().map_err(bad)?,
        output: Output {
            audio_format: g.a.as_deref().map(str::parse).transpose().map_err(bad)?,
            bitrate: g.b.map(|b| b.to_string().parse()).transpose().map_err(bad)?,
            mute: g.m,
            no_tags: g.t,
            container: g.k.as_deref().map(parse_container).transpose().map_err(bad)?.flatten(),
            gif: g.g,
        },
        codec: g.c.as_deref().map(str::parse::<VideoCodec>).transpose().map_err(bad)?,
        subtitles: g.u.clone(),
    };
    let style: Style = g.s.parse().map_err(bad)?;
    super::stream::serve_proxied(&state, play, Some((style, true)), method, headers, client).await
}

/// One format's own bytes, or a subtitle track as WebVTT.
async fn part(
    state: &AppState,
    video: &VideoRef,
    g: &TunnelGrant,
    client: &Client,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let cached = state.lookup(video, Purpose::Stream, client).await?;
    if let Some(lang) = &g.x {
        let track = crate::subtitles::pick(&cached.info, Some(lang), None)?;
        let vtt = state.subtitles.webvtt(state.relay.upstream(), &cached.key, &cached.info, track).await?;
        let mut resp = Response::new(Body::from(vtt));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/vtt; charset=utf-8"));
        return Ok(resp);
    }
    let id = g.f.as_deref().unwrap_or_default();
    let f = cached.info.formats.iter().find(|f| f.format_id == id).ok_or_else(|| ApiError::NotFound {
        error: "Format gone",
        detail: format!("format {id} is no longer offered; ask again"),
    })?;
    let spec = play::format_spec(&state.service, video, &cached, f);
    Ok(state.relay.serve(spec, method, headers).await?.map(Body::new))
}
