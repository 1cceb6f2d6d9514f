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

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use futures_util::future::join_all;
use serde::Deserialize;

use super::caching;
use super::edge::{Video, parse_lang, parse_player};
use super::hls::source_playlist;
use super::reply::{FORMAT_HEADER, HLS_TYPE, format_header, found};
use super::state::{AppState, Client, Rendered, Text};
use crate::cache::{CachedInfo, now_unix};
use crate::extract::{Format, Subtitles};
use crate::hls::{EXPIRY_STEP_SECS, PartGrant, PartKind};
use crate::http::error::ApiError;
use crate::manifest::hls::LiveVariant;
use crate::manifest::{self, Index, IndexFailure, Renditions, TextTrack, Track};
use crate::platform::VideoRef;
use crate::relay::compose::Muxed;
use crate::select::{AudioLang, Player, Quality, rank_audio};
use crate::service::Purpose;
use crate::service::play::{PlayError, format_spec};
use crate::subtitles::pick;
use bytes::Bytes;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v2/stream/manifest/{platform}/{video_id}/master.m3u8", get(master)),
        ("/api/v2/stream/manifest/master.m3u8", get(master)),
        ("/api/v2/stream/manifest/{platform}/{video_id}/manifest.mpd", get(mpd)),
        ("/api/v2/stream/manifest/manifest.mpd", get(mpd)),
        ("/api/v2/stream/media/{token}/{name}", get(part)),
    ]
}

const DASH_TYPE: &str = "application/dash+xml";

/// How long manifest links stay valid. They name no origin URL, so they
/// may outlive one; a day covers a paused film.
const LINK_TTL_SECS: i64 = 24 * 3600;

/// The expiry of links written now: a day on, rounded up to the hour
/// (`hls::link_expiry`: the same links on every instance within the hour).
fn link_expiry() -> i64 {
    crate::hls::link_expiry(now_unix(), LINK_TTL_SECS)
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
struct ManifestRequest {
    video: VideoRef,
    quality: Quality,
    direct: bool,
    player: Player,
    lang: Option<AudioLang>,
    /// HLS whose segments carry both video and audio.
    muxed: bool,
}

impl ManifestRequest {
    fn new(video: VideoRef, q: &ManifestQuery) -> Result<Self, ApiError> {
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
}

enum Kind {
    Hls,
    Dash,
}

async fn master(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    manifest_response(&state, &client, ManifestRequest::new(video, &q)?, Kind::Hls).await
}

async fn mpd(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    manifest_response(&state, &client, ManifestRequest::new(video, &q)?, Kind::Dash).await
}

async fn manifest_response(
    state: &AppState,
    client: &Client,
    req: ManifestRequest,
    kind: Kind,
) -> Result<Response, ApiError> {
    let content_type = match kind {
        Kind::Hls => HLS_TYPE,
        Kind::Dash => DASH_TYPE,
    };
    // Rendered once per request, then kept briefly: a hot manifest costs
    // one cache hit and a copy of its bytes. Through the proxy its links
    // name the video and the format, never an origin URL, so a rendered one
    // stays right whatever becomes of the info, and is found without
    // looking the video up; a direct one is the extraction's own.
    let key = format!(
        "{}|{}|{:?}|{}|{:?}|{:?}|{}",
        req.video.cache_key(),
        content_type,
        req.quality,
        req.direct,
        req.player,
        req.lang,
        req.muxed
    );
    if !req.direct
        && let Some(t) = rendered_hit(state, &key).await
    {
        return Ok(listing(content_type, t));
    }
    let cached = state.lookup(&req.video, Purpose::Stream, client).await?;
    let key = if req.direct { format!("{key}@{}", cached.fetched_at) } else { key };
    let master = rendered(state, &key, || async {
        Ok(renditions(state, &req, &cached).await?.map(|r| match kind {
            Kind::Hls if req.muxed && r.audio.is_some() && !r.video.is_empty() => {
                let links = Links::new(&req.video, link_expiry());
                let audio = &r.audio.as_ref().expect("checked").id;
                let uris: Vec<String> =
                    r.video.iter().map(|v| links.muxed(state, &format!("{}+{audio}", v.id), None)).collect();
                manifest::hls::muxed_master(&r, &uris)
            }
            Kind::Hls => manifest::hls::master(&r),
            Kind::Dash => manifest::dash::mpd(&r),
        }))
    })
    .await?;
    if let Some(t) = master {
        return Ok(if req.direct { text(content_type, t.body) } else { listing(content_type, t) });
    }
    if cached.info.is_live && !req.direct && matches!(kind, Kind::Hls) {
        return live_master(state, &req, &cached);
    }
    // No separate DASH files: the source's own HLS, if it has one.
    let hls = cached.info.formats.iter().filter(|f| f.is_hls() && req.player.plays(f));
    let best = hls.max_by_key(|f| (f.height.unwrap_or(0) <= cap(req.quality), f.height.unwrap_or(0)));
    match (kind, best) {
        (Kind::Hls, Some(f)) if req.direct => found(&f.url),
        (Kind::Hls, Some(f)) => source_playlist(state, &req.video, f, &cached.info.route).await,
        (Kind::Dash, Some(_)) => Err(ApiError::Conflict(format!(
            "this video comes as HLS only; its manifest is {}",
            req.video.manifest_path("master.m3u8", "best")
        ))),
        // AVPro always gets HLS: a progressive file as a one-segment playlist.
        (Kind::Hls, None) if req.player == Player::Avpro => wrapped(state, &req, &cached),
        (_, None) => Err(ApiError::Conflict(format!(
            "this video has no separate DASH video and audio files to build a manifest from; play {}",
            req.video.stream_path("proxy", "best")
        ))),
    }
}

/// A live stream's master: each HLS variant the player plays, up to the
/// quality asked, as a link to its shared session.
fn live_master(state: &AppState, req: &ManifestRequest, cached: &CachedInfo) -> Result<Response, ApiError> {
    let variants: Vec<LiveVariant> = cached
        .info
        .formats
        .iter()
        .filter(|f| f.is_hls() && req.player.plays(f) && f.height.unwrap_or(0) <= cap(req.quality))
        .map(|f| LiveVariant {
            uri: super::live::variant_link(state, cached, f),
            bandwidth: f.tbr.map_or(0, |k| (k * 1000.0) as u64),
            codecs: {
                let c: Vec<String> = [codec_string(&f.vcodec), codec_string(&f.acodec)].into_iter().flatten().collect();
                (!c.is_empty()).then(|| c.join(","))
            },
            resolution: f.width.zip(f.height),
            frame_rate: f.fps,
        })
        .collect();
    if variants.is_empty() {
        return Err(ApiError::NotFound {
            error: "No format",
            detail: format!("this live stream has no HLS variant up to {:?}", req.quality),
        });
    }
    let mut resp = text(HLS_TYPE, manifest::hls::live_master(&variants));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// A progressive file (video and sound in one) as an HLS media playlist of
/// one segment, the whole file (with `EXT-X-ENDLIST`, so AVPro seeks in it).
fn wrapped(state: &AppState, req: &ManifestRequest, cached: &Arc<CachedInfo>) -> Result<Response, ApiError> {
    let file = match crate::select::select(&cached.info, req.quality, crate::select::Mode::Proxy) {
        Ok(crate::select::StreamPlan::Single(f)) if req.player.plays(f) => f,
        _ => {
            return Err(ApiError::Conflict(format!(
                "this video has no file AVPro plays as it is; play {}",
                req.video.stream_path("proxy", "best")
            )));
        }
    };
    let links = Links::new(&req.video, link_expiry());
    let uri = if req.direct { file.url.clone() } else { links.part(state, file, PartKind::Bytes, false) };
    let playlist = manifest::hls::whole_file_media(cached.info.duration.unwrap_or(0.0), &uri);
    let mut resp = if req.direct { text(HLS_TYPE, playlist) } else { listing(HLS_TYPE, Text::new(playlist)) };
    resp.headers_mut().insert(FORMAT_HEADER, format_header(&file.format_id));
    Ok(resp)
}

fn cap(q: Quality) -> u32 {
    match q {
        Quality::Max(h) => h,
        _ => u32::MAX,
    }
}

/// The DASH files of the video a manifest can list: MP4 video without sound
/// within the quality (or the lowest above it), and the best M4A audio,
/// each with its layout. `None` when there are none.
async fn renditions(
    state: &AppState,
    req: &ManifestRequest,
    cached: &Arc<CachedInfo>,
) -> Result<Option<Renditions>, ApiError> {
    // The language refusal maps to its 404 where the stream routes' does.
    let filtered = match &req.lang {
        Some(lang) => Some(lang.filter(&cached.info).map_err(PlayError::NoLanguage)?),
        None => None,
    };
    let info = filtered.as_ref().unwrap_or(&cached.info);
    let dash = |f: &&Format| !f.is_hls() && !f.is_manifest() && req.player.plays(f);
    let mut video: Vec<&Format> = match req.quality {
        Quality::Audio => Vec::new(),
        _ => info.formats.iter().filter(dash).filter(|f| f.has_video && !f.has_audio && f.ext == "mp4").collect(),
    };
    video.sort_by(|a, b| b.height.cmp(&a.height).then(b.tbr.unwrap_or(0.0).total_cmp(&a.tbr.unwrap_or(0.0))));
    let within: Vec<&Format> = video.iter().copied().filter(|f| f.height.unwrap_or(0) <= cap(req.quality)).collect();
    let mut video = if within.is_empty() { video.last().copied().into_iter().collect() } else { within };
    if req.quality == Quality::Worst {
        video = video.last().copied().into_iter().collect();
    }
    let all_audio: Vec<&Format> =
        info.formats.iter().filter(dash).filter(|f| f.has_audio && !f.has_video && f.ext == "m4a").collect();
    let audio = all_audio.iter().copied().max_by(|a, b| rank_audio(a, b));
    // The best track of each other language, in the order the info lists them.
    let mut other_audio: Vec<&Format> = Vec::new();
    for lang in info.audio_languages() {
        let best = all_audio
            .iter()
            .copied()
            .filter(|f| f.language.as_deref() == Some(lang.code.as_str()))
            .max_by(|a, b| rank_audio(a, b));
        if let Some(f) = best
            && audio.is_some_and(|a| a.language != f.language)
        {
            other_audio.push(f);
        }
    }
    if video.is_empty() && audio.is_none() {
        return Ok(None);
    }
    let links = Links::new(&req.video, link_expiry());
    let default_audio = audio.map(|a| a.format_id.clone());
    let listed = video.iter().copied().chain(audio).chain(other_audio.iter().copied());
    let tracks = join_all(listed.map(|f| track(state, req, cached, f, &links))).await;
    let mut audio_track = None;
    let mut other_tracks = Vec::new();
    let mut video_tracks = Vec::new();
    let mut failure = None;
    for t in tracks {
        match t {
            Ok(t) if t.audio && Some(&t.id) == default_audio.as_ref() => audio_track = Some(t),
            Ok(t) if t.audio => other_tracks.push(t),
            Ok(t) => video_tracks.push(t),
            Err(e) => match &*e {
                IndexFailure::NotDash(why) => tracing::debug!(key = %cached.key, why, "a format has no DASH index"),
                IndexFailure::Relay(_) => failure = Some(ApiError::from(e)),
            },
        }
    }
    let audio_only = req.quality == Quality::Audio;
    if (video_tracks.is_empty() && !audio_only) || (audio_only && audio_track.is_none()) {
        return match failure {
            Some(e) => Err(e),
            None => Ok(None),
        };
    }
    if audio.is_some() && audio_track.is_none() {
        // Silent video is no answer to a request for the video.
        return Err(failure.unwrap_or(ApiError::BadGateway {
            error: "Upstream error",
            detail: "the audio file is not laid out for streaming".into(),
        }));
    }
    let subtitles = cached.info.subtitles.iter().map(|s| text_track(state, s, &links)).collect();
    Ok(Some(Renditions { video: video_tracks, audio: audio_track, other_audio: other_tracks, subtitles }))
}

/// A subtitle track of the video, as the manifests list it.
fn text_track(state: &AppState, s: &Subtitles, links: &Links) -> TextTrack {
    let base = s.name.clone().unwrap_or_else(|| s.lang.clone());
    TextTrack {
        lang: s.lang.clone(),
        name: if s.auto && !base.to_ascii_lowercase().contains("auto") { format!("{base} (auto)") } else { base },
        auto: s.auto,
        playlist_uri: links.text(state, s, PartKind::SubtitlePlaylist),
        file_uri: links.text(state, s, PartKind::Subtitles),
    }
}

/// The subtitle track a part grant names: its language, and whether it is
/// the automatic captions.
fn text_track_of(grant: &PartGrant) -> (&str, bool) {
    match grant.f.strip_prefix("auto:") {
        Some(lang) => (lang, true),
        None => (grant.f.as_str(), false),
    }
}

/// One format as a track: its layout, and the links to it.
async fn track(
    state: &AppState,
    req: &ManifestRequest,
    cached: &Arc<CachedInfo>,
    f: &Format,
    links: &Links,
) -> Result<Track, Arc<IndexFailure>> {
    let index = state.indexes.get(&state.relay, || format_spec(&state.service, &req.video, cached, f)).await?;
    let audio = !f.has_video;
    Ok(Track {
        id: f.format_id.clone(),
        file_uri: if req.direct { f.url.clone() } else { links.part(state, f, PartKind::Bytes, false) },
        playlist_uri: links.part(state, f, PartKind::Playlist, req.direct),
        codecs: codec_string(if audio { &f.acodec } else { &f.vcodec }),
        width: f.width,
        height: f.height,
        fps: f.fps,
        audio,
        language: f.language_named().filter(|_| audio),
        index,
    })
}

fn codec_string(c: &Option<String>) -> Option<String> {
    c.as_deref().filter(|c| !c.is_empty() && *c != "none").map(str::to_owned)
}

/// What every signed link of one manifest shares, worked out once.
struct Links {
    /// The video's cache key, in each grant.
    video_key: String,
    /// The `?v=` that load balancers route by.
    route: String,
    expires: i64,
}

impl Links {
    fn new(video: &VideoRef, expires: i64) -> Self {
        Links { video_key: video.cache_key(), route: video.route_query(), expires }
    }

    /// A signed link to a part of the manifest: `…/{format_id}.m3u8` for a
    /// media playlist, `.mp4`/`.m4a` for the file (players and ffmpeg look
    /// at the extension).
    fn part(&self, state: &AppState, f: &Format, k: PartKind, d: bool) -> String {
        let grant = PartGrant { v: self.video_key.clone(), f: f.format_id.clone(), e: self.expires, k, d, i: None };
        let id: String = f.format_id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect();
        let ext = match k {
            PartKind::Playlist => "m3u8",
            PartKind::Bytes if f.has_video => "mp4",
            PartKind::Bytes => "m4a",
            PartKind::SubtitlePlaylist | PartKind::Subtitles | PartKind::MuxedPlaylist | PartKind::MuxedSegment => {
                "bin"
            }
        };
        let name = if id.is_empty() { "media" } else { &id };
        format!("/api/v2/stream/media/{}/{name}.{ext}?v={}", state.signer.sign(&grant), self.route)
    }

    /// A signed link to muxed HLS of `plan` (`{video}+{audio}`): its media
    /// playlist, or (with `segment`) one of its MPEG-TS segments.
    fn muxed(&self, state: &AppState, plan: &str, segment: Option<u32>) -> String {
        let k = if segment.is_some() { PartKind::MuxedSegment } else { PartKind::MuxedPlaylist };
        let grant =
            PartGrant { v: self.video_key.clone(), f: plan.to_owned(), e: self.expires, k, d: false, i: segment };
        let name = match segment {
            Some(n) => format!("seg{n}.ts"),
            None => format!("{}.m3u8", plan.split('+').next().unwrap_or("video")),
        };
        let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
        format!("/api/v2/stream/media/{}/{name}?v={}", state.signer.sign(&grant), self.route)
    }

    /// A signed link to a subtitle track: its playlist (`…/en.m3u8`) or its
    /// WebVTT (`…/en.vtt`).
    fn text(&self, state: &AppState, s: &Subtitles, k: PartKind) -> String {
        let f = if s.auto { format!("auto:{}", s.lang) } else { s.lang.clone() };
        let grant = PartGrant { v: self.video_key.clone(), f, e: self.expires, k, d: false, i: None };
        let lang: String = s.lang.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let ext = if k == PartKind::SubtitlePlaylist { "m3u8" } else { "vtt" };
        format!("/api/v2/stream/media/{}/{lang}.{ext}?v={}", state.signer.sign(&grant), self.route)
    }
}

/// A signed part: a media playlist, or the file's bytes (`Range` works).
async fn part(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let grant: PartGrant = state.signer.verify(&token, now_unix()).map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let video =
        VideoRef::from_cache_key(&grant.v).ok_or_else(|| ApiError::Forbidden("the link names no video".into()))?;
    // A media playlist through the proxy names no origin URL: a rendered one
    // is served without looking the video up (see `manifest_response`).
    let media_key = format!("media|{token}");
    if matches!(grant.k, PartKind::Playlist | PartKind::MuxedPlaylist)
        && !grant.d
        && let Some(playlist) = rendered_hit(&state, &media_key).await
    {
        return Ok(linked(HLS_TYPE, playlist, grant.e));
    }
    let cached = state.lookup(&video, Purpose::Stream, &client).await?;
    if matches!(grant.k, PartKind::SubtitlePlaylist | PartKind::Subtitles) {
        return subtitle_part(&state, &video, &cached, &grant).await;
    }
    if matches!(grant.k, PartKind::MuxedPlaylist | PartKind::MuxedSegment) {
        return muxed_part(&state, &video, &cached, &grant, &media_key).await;
    }
    let f = cached.info.formats.iter().find(|f| f.format_id == grant.f).ok_or_else(|| ApiError::NotFound {
        error: "Format gone",
        detail: format!("format {} is no longer offered; load the manifest again", grant.f),
    })?;
    match grant.k {
        PartKind::Playlist => {
            let key = if grant.d { format!("{media_key}@{}", cached.fetched_at) } else { media_key };
            let playlist = rendered(&state, &key, || async {
                let index: Arc<Index> =
                    state.indexes.get(&state.relay, || format_spec(&state.service, &video, &cached, f)).await?;
                let file_uri = match grant.d {
                    true => f.url.clone(),
                    false => Links::new(&video, grant.e).part(&state, f, PartKind::Bytes, false),
                };
                Ok(Some(manifest::hls::media(&index, &file_uri)))
            })
            .await?;
            let playlist = playlist.unwrap_or_else(|| Text::new(Bytes::new()));
            Ok(if grant.d { text(HLS_TYPE, playlist.body) } else { linked(HLS_TYPE, playlist, grant.e) })
        }
        PartKind::SubtitlePlaylist | PartKind::Subtitles => subtitle_part(&state, &video, &cached, &grant).await,
        PartKind::MuxedPlaylist | PartKind::MuxedSegment => {
            muxed_part(&state, &video, &cached, &grant, &media_key).await
        }
        PartKind::Bytes => {
            let reply = state.relay.serve(format_spec(&state.service, &video, &cached, f), &method, &headers).await?;
            let mut resp = reply.map(Body::new);
            let ok = resp.status().is_success();
            let h = resp.headers_mut();
            if ok {
                let kind = if f.has_video { "video/mp4" } else { "audio/mp4" };
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            }
            h.insert(FORMAT_HEADER, format_header(&f.format_id));
            caching::immutable_until(h, grant.e);
            Ok(resp)
        }
    }
}

/// Muxed HLS: a variant's media playlist (one segment per subsegment of the
/// video file), or one MPEG-TS segment, remuxed from the time range it
/// covers once for every viewer and kept (`AppState::muxed`).
async fn muxed_part(
    state: &AppState,
    video: &VideoRef,
    cached: &Arc<CachedInfo>,
    grant: &PartGrant,
    media_key: &str,
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound {
        error: "Format gone",
        detail: format!("{} is no longer offered; load the manifest again", grant.f),
    };
    let (v, a) = grant.f.split_once('+').ok_or_else(gone)?;
    let find = |id: &str| cached.info.formats.iter().find(|f| f.format_id == id);
    let (vf, af) = (find(v).ok_or_else(gone)?, find(a).ok_or_else(gone)?);
    let spec = |f: &Format| format_spec(&state.service, video, cached, f);
    let Some(n) = grant.i else {
        // Rendered once per link for a while, like the other media playlists:
        // a crowd reloading it costs a cache hit, not one signature per segment.
        let playlist = rendered(state, media_key, || async {
            let index: Arc<Index> = state.indexes.get(&state.relay, || spec(vf)).await?;
            let links = Links::new(video, grant.e);
            Ok(Some(manifest::hls::muxed_media(&index, |n| links.muxed(state, &grant.f, Some(n as u32)))))
        })
        .await?;
        return Ok(linked(HLS_TYPE, playlist.unwrap_or_else(|| Text::new(Bytes::new())), grant.e));
    };
    let index: Arc<Index> = state.indexes.get(&state.relay, || spec(vf)).await?;
    if index.segments.get(n as usize).is_none() {
        return Err(gone());
    }
    let audio: Arc<Index> = state.indexes.get(&state.relay, || spec(af)).await?;
    let muxed = Muxed { video: (spec(vf), index), audio: (spec(af), audio), n: n as usize };
    let key = format!("{}|mux:{}|{n}", cached.key, grant.f);
    let relay = state.relay.clone();
    let bytes = state
        .muxed
        .try_get_with(key, async move { relay.muxed_segment(muxed).await })
        .await
        .map_err(|e| ApiError::from(Arc::unwrap_or_clone(e)))?;
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    // Named by what it is made of, so every instance names it the same.
    let n = n.to_le_bytes();
    h.insert(header::ETAG, caching::etag_naming(&[grant.v.as_bytes(), grant.f.as_bytes(), &n]));
    caching::immutable_until(h, grant.e);
    h.insert(FORMAT_HEADER, format_header(&grant.f));
    Ok(resp)
}

/// A subtitle track of a manifest: its one-segment playlist, or its WebVTT.
async fn subtitle_part(
    state: &AppState,
    video: &VideoRef,
    cached: &Arc<CachedInfo>,
    grant: &PartGrant,
) -> Result<Response, ApiError> {
    let (lang, auto) = text_track_of(grant);
    let track = pick(&cached.info, Some(lang), Some(auto))?;
    if grant.k == PartKind::SubtitlePlaylist {
        let links = Links::new(video, grant.e);
        let file = links.text(state, track, PartKind::Subtitles);
        let playlist = manifest::hls::whole_file_media(cached.info.duration.unwrap_or(0.0), &file);
        return Ok(linked(HLS_TYPE, Text::new(playlist), grant.e));
    }
    let vtt = state.subtitles.webvtt(state.relay.upstream(), &cached.key, &cached.info, track).await?;
    Ok(linked("text/vtt; charset=utf-8", Text::new(vtt), grant.e))
}

/// The text under `key` in the rendered cache, if it is there.
async fn rendered_hit(state: &AppState, key: &str) -> Option<Text> {
    state.rendered.get(key).await.and_then(|r| r.0.clone())
}

/// The text under `key` in the rendered cache, or `render`'s, kept briefly
/// (`None`: nothing to render). Concurrent misses render once.
async fn rendered<F, Fut>(state: &AppState, key: &str, render: F) -> Result<Option<Text>, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, ApiError>>,
{
    let load = || async { render().await.map(|text| Rendered(text.map(Text::new))) };
    let (found, _) = state.rendered.get_or_fetch(key, |_| true, load).await.map_err(Arc::unwrap_or_clone)?;
    Ok(found.0.clone())
}

/// Text no shared cache keeps: what names the origin's own URLs (direct
/// mode), which expire on the origin's clock.
fn text(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A manifest at a stable route, whose links were written now: public while
/// they keep half their life (an expiry rendered up to 30 s ago may be an
/// hour earlier than one written now, hence the step).
fn listing(content_type: &'static str, t: Text) -> Response {
    let mut resp = tagged(content_type, t);
    caching::listing(resp.headers_mut(), link_expiry() - EXPIRY_STEP_SECS, LINK_TTL_SECS);
    resp
}

/// The text a signed link expiring at `expires` names: it cannot change.
fn linked(content_type: &'static str, t: Text, expires: i64) -> Response {
    let mut resp = tagged(content_type, t);
    caching::immutable_until(resp.headers_mut(), expires);
    resp
}

fn tagged(content_type: &'static str, t: Text) -> Response {
    let mut resp = Response::new(Body::from(t.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ETAG, t.etag);
    resp
}
