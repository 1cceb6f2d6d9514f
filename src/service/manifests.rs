//! The manifests reelay writes for a video of separate DASH video and
//! audio files (an HLS master with its media playlists, a DASH MPD, muxed
//! HLS for players that need sound in every segment), and what their signed
//! links answer: a media playlist, a file's bytes, a muxed MPEG-TS segment,
//! a subtitle track. Renditions, tracks and links are chosen here; the
//! text is `manifest`'s, the bytes the relay's.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{HeaderMap, Method};

use super::Purpose;
use super::answer::{Answer, Body, Keep, Text, etag_naming};
use super::error::ApiError;
use super::live_links::{self, cap, codec_string};
use super::media::Media;
use super::play::{PlayError, format_spec};
use super::rewritten::{HLS_TYPE, source_playlist};
use crate::cache::{CachedInfo, now_unix};
use crate::extract::{Format, Subtitles};
use crate::hls::{EXPIRY_STEP_SECS, PartGrant, PartKind};
use crate::manifest::{self, Index, IndexFailure, Renditions, TextTrack, Track};
use crate::platform::VideoRef;
use crate::relay::compose::Muxed;
use crate::select::{AudioLang, Player, Quality, rank_audio};
use crate::subtitles::pick;

const DASH_TYPE: &str = "application/dash+xml";

/// How long manifest links stay valid. They name no origin URL, so they
/// may outlive one; a day covers a paused film.
const LINK_TTL_SECS: i64 = 24 * 3600;

/// The expiry of links written now: a day on, rounded up to the hour
/// (`hls::link_expiry`: the same links on every instance within the hour).
fn link_expiry() -> i64 {
    crate::hls::link_expiry(now_unix(), LINK_TTL_SECS)
}

/// A manifest request, checked at the edge.
pub struct ManifestRequest {
    pub video: VideoRef,
    /// The highest video rendition listed.
    pub quality: Quality,
    /// The origin's URLs rather than links through the server.
    pub direct: bool,
    pub player: Player,
    /// The audio language; `None`: the original.
    pub lang: Option<AudioLang>,
    /// HLS whose segments carry both video and audio.
    pub muxed: bool,
}

/// Which manifest.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An HLS master playlist.
    Hls,
    /// A DASH MPD.
    Dash,
}

/// The video's manifest of `kind`, for a client (`who`: its identity, for
/// the extraction budget).
pub async fn manifest(
    media: &Media,
    who: impl FnOnce() -> String,
    req: ManifestRequest,
    kind: Kind,
) -> Result<Answer, ApiError> {
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
        && let Some(t) = media.rendered_hit(&key).await
    {
        return Ok(listing(content_type, t));
    }
    // Boxed: see `render`.
    Box::pin(render(media, who, req, kind, key, content_type)).await
}

/// A manifest not kept rendered (or direct): the video looked up, then
/// rendered and kept.
///
/// Called boxed, as is [`part_looked_up`]: what follows a cache miss (a
/// lookup, which may extract; rendering; a relay) makes a future of tens of
/// KB. Inline in the hot path's future it was copied whole at every move of
/// a hot request's future (16 moves, ~43 KB of `memcpy` per hot media
/// playlist, more than all of its other work); boxed, it is allocated only
/// on a miss.
async fn render(
    media: &Media,
    who: impl FnOnce() -> String,
    req: ManifestRequest,
    kind: Kind,
    key: String,
    content_type: &'static str,
) -> Result<Answer, ApiError> {
    let cached = media.lookup(&req.video, Purpose::Stream, who).await?;
    if cached.info.is_live && cached.info.formats.iter().any(Format::is_sabr) {
        // A live stream over SABR: reelay's own live HLS, one shared
        // session per format (the DASH files' indexes are no live's).
        return match kind {
            Kind::Hls => live_links::master(media, &cached, req.player, req.quality),
            Kind::Dash => Err(ApiError::Conflict(format!(
                "this live stream is served as HLS only; its manifest is {}",
                req.video.manifest_path("master.m3u8", "best")
            ))),
        };
    }
    // SABR formats' URLs take no GET: their manifest links through reelay
    // in either mode.
    let mut req = req;
    req.direct &= !cached.info.formats.iter().any(Format::is_sabr);
    let key = if req.direct { format!("{key}@{}", cached.fetched_at) } else { key };
    let master = media
        .rendered(&key, None, || async {
            Ok(renditions(media, &req, &cached).await?.map(|r| match kind {
                Kind::Hls if req.muxed && r.audio.is_some() && !r.video.is_empty() => {
                    let links = Links::new(&req.video, link_expiry());
                    let audio = &r.audio.as_ref().expect("checked").id;
                    let uris: Vec<String> =
                        r.video.iter().map(|v| links.muxed(media, &format!("{}+{audio}", v.id), None)).collect();
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
        return live_links::master(media, &cached, req.player, req.quality);
    }
    // No separate DASH files: the source's own HLS, if it has one.
    let hls = cached.info.formats.iter().filter(|f| f.is_hls() && req.player.plays(f));
    let best = hls.max_by_key(|f| (f.height.unwrap_or(0) <= cap(req.quality), f.height.unwrap_or(0)));
    match (kind, best) {
        (Kind::Hls, Some(f)) if req.direct => Ok(Answer::found(&f.url).of_format(&f.format_id)),
        (Kind::Hls, Some(f)) => source_playlist(media, &req.video, f, &cached.info.route).await,
        (Kind::Dash, Some(_)) => Err(ApiError::Conflict(format!(
            "this video comes as HLS only; its manifest is {}",
            req.video.manifest_path("master.m3u8", "best")
        ))),
        // AVPro always gets HLS: a progressive file as a one-segment playlist.
        (Kind::Hls, None) if req.player == Player::Avpro => wrapped(media, &req, &cached),
        (_, None) => Err(ApiError::Conflict(format!(
            "this video has no separate DASH video and audio files to build a manifest from; play {}",
            req.video.stream_path("proxy", "best")
        ))),
    }
}

/// A progressive file (video and sound in one) as an HLS media playlist of
/// one segment, the whole file (with `EXT-X-ENDLIST`, so AVPro seeks in it).
fn wrapped(media: &Media, req: &ManifestRequest, cached: &Arc<CachedInfo>) -> Result<Answer, ApiError> {
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
    let uri = if req.direct { file.url.clone() } else { links.part(media, file, PartKind::Bytes, false) };
    let playlist = manifest::hls::whole_file_media(cached.info.duration.unwrap_or(0.0), &uri);
    let answer = if req.direct { text(HLS_TYPE, playlist) } else { listing(HLS_TYPE, Text::new(playlist)) };
    Ok(answer.of_format(&file.format_id))
}

/// The DASH files of the video a manifest can list: MP4 video without sound
/// within the quality (or the lowest above it), and the best M4A audio,
/// each with its layout. `None` when there are none.
async fn renditions(
    media: &Media,
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
    let tracks = join_all(listed.map(|f| track(media, req, cached, f, &links))).await;
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
    let subtitles = cached.info.subtitles.iter().map(|s| text_track(media, s, &links)).collect();
    Ok(Some(Renditions { video: video_tracks, audio: audio_track, other_audio: other_tracks, subtitles }))
}

/// A subtitle track of the video, as the manifests list it.
fn text_track(media: &Media, s: &Subtitles, links: &Links) -> TextTrack {
    let base = s.name.clone().unwrap_or_else(|| s.lang.clone());
    TextTrack {
        lang: s.lang.clone(),
        name: if s.auto && !base.to_ascii_lowercase().contains("auto") { format!("{base} (auto)") } else { base },
        auto: s.auto,
        playlist_uri: links.text(media, s, PartKind::SubtitlePlaylist),
        file_uri: links.text(media, s, PartKind::Subtitles),
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
    media: &Media,
    req: &ManifestRequest,
    cached: &Arc<CachedInfo>,
    f: &Format,
    links: &Links,
) -> Result<Track, Arc<IndexFailure>> {
    let index = media.indexes.get(&media.relay, || format_spec(&media.service, &req.video, cached, f)).await?;
    let audio = !f.has_video;
    Ok(Track {
        id: f.format_id.clone(),
        file_uri: if req.direct { f.url.clone() } else { links.part(media, f, PartKind::Bytes, false) },
        playlist_uri: links.part(media, f, PartKind::Playlist, req.direct),
        codecs: codec_string(if audio { &f.acodec } else { &f.vcodec }),
        width: f.width,
        height: f.height,
        fps: f.fps,
        audio,
        language: f.language_named().filter(|_| audio),
        index,
    })
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
    fn part(&self, media: &Media, f: &Format, k: PartKind, d: bool) -> String {
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
        format!("/api/v2/stream/media/{}/{name}.{ext}?v={}", media.signer.sign(&grant), self.route)
    }

    /// A signed link to muxed HLS of `plan` (`{video}+{audio}`): its media
    /// playlist, or (with `segment`) one of its MPEG-TS segments.
    fn muxed(&self, media: &Media, plan: &str, segment: Option<u32>) -> String {
        let k = if segment.is_some() { PartKind::MuxedSegment } else { PartKind::MuxedPlaylist };
        let grant =
            PartGrant { v: self.video_key.clone(), f: plan.to_owned(), e: self.expires, k, d: false, i: segment };
        let name = match segment {
            Some(n) => format!("seg{n}.ts"),
            None => format!("{}.m3u8", plan.split('+').next().unwrap_or("video")),
        };
        let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
        format!("/api/v2/stream/media/{}/{name}?v={}", media.signer.sign(&grant), self.route)
    }

    /// A signed link to a subtitle track: its playlist (`…/en.m3u8`) or its
    /// WebVTT (`…/en.vtt`).
    fn text(&self, media: &Media, s: &Subtitles, k: PartKind) -> String {
        let f = if s.auto { format!("auto:{}", s.lang) } else { s.lang.clone() };
        let grant = PartGrant { v: self.video_key.clone(), f, e: self.expires, k, d: false, i: None };
        let lang: String = s.lang.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let ext = if k == PartKind::SubtitlePlaylist { "m3u8" } else { "vtt" };
        format!("/api/v2/stream/media/{}/{lang}.{ext}?v={}", media.signer.sign(&grant), self.route)
    }
}

/// A signed part of a manifest: a media playlist, the file's bytes (`Range`
/// works), a muxed segment or a subtitle track.
pub async fn part(
    media: &Media,
    who: impl FnOnce() -> String,
    token: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Answer, ApiError> {
    // A media playlist through the proxy names no origin URL: one rendered
    // for this very link is served without looking the video up (see
    // `manifest`), and without checking the link again: the same token was
    // checked when it was rendered; only its expiry can have changed.
    let media_key = format!("media|{token}");
    let now = now_unix();
    if let Some((playlist, expires)) = media.linked_hit(&media_key).await
        && expires > now
    {
        return Ok(linked(HLS_TYPE, playlist, expires));
    }
    // Boxed: see `render`.
    Box::pin(part_looked_up(media, who, token, method, headers, media_key, now)).await
}

/// A part not kept rendered: its link checked, the video looked up.
async fn part_looked_up(
    media: &Media,
    who: impl FnOnce() -> String,
    token: &str,
    method: &Method,
    headers: &HeaderMap,
    media_key: String,
    now: i64,
) -> Result<Answer, ApiError> {
    let grant: PartGrant = media.signer.verify(token, now)?;
    let video =
        VideoRef::from_cache_key(&grant.v).ok_or_else(|| ApiError::Forbidden("the link names no video".into()))?;
    let cached = media.lookup(&video, Purpose::Stream, who).await?;
    if matches!(grant.k, PartKind::SubtitlePlaylist | PartKind::Subtitles) {
        return subtitle_part(media, &video, &cached, &grant).await;
    }
    if matches!(grant.k, PartKind::MuxedPlaylist | PartKind::MuxedSegment) {
        return muxed_part(media, &video, &cached, &grant, &media_key).await;
    }
    let f = cached.info.formats.iter().find(|f| f.format_id == grant.f).ok_or_else(|| ApiError::NotFound {
        error: "Format gone",
        detail: format!("format {} is no longer offered; load the manifest again", grant.f),
    })?;
    match grant.k {
        PartKind::Playlist => {
            let key = if grant.d { format!("{media_key}@{}", cached.fetched_at) } else { media_key };
            let playlist = media
                .rendered(&key, (!grant.d).then_some(grant.e), || async {
                    let index: Arc<Index> =
                        media.indexes.get(&media.relay, || format_spec(&media.service, &video, &cached, f)).await?;
                    let file_uri = match grant.d {
                        true => f.url.clone(),
                        false => Links::new(&video, grant.e).part(media, f, PartKind::Bytes, false),
                    };
                    Ok(Some(manifest::hls::media(&index, &file_uri)))
                })
                .await?;
            let playlist = playlist.unwrap_or_else(|| Text::new(Bytes::new()));
            Ok(if grant.d { text(HLS_TYPE, playlist.body) } else { linked(HLS_TYPE, playlist, grant.e) })
        }
        PartKind::SubtitlePlaylist | PartKind::Subtitles => subtitle_part(media, &video, &cached, &grant).await,
        PartKind::MuxedPlaylist | PartKind::MuxedSegment => {
            muxed_part(media, &video, &cached, &grant, &media_key).await
        }
        PartKind::Bytes => {
            let reply = media.relay.serve(format_spec(&media.service, &video, &cached, f), method, headers).await?;
            let kind = if f.has_video { "video/mp4" } else { "audio/mp4" };
            Ok(Answer { content_type: Some(kind), keep: Keep::Until(grant.e), ..Answer::relay(reply) }
                .of_format(&f.format_id))
        }
    }
}

/// Muxed HLS: a variant's media playlist (one segment per subsegment of the
/// video file), or one MPEG-TS segment, remuxed from the time range it
/// covers once for every viewer and kept (`Media::muxed`).
async fn muxed_part(
    media: &Media,
    video: &VideoRef,
    cached: &Arc<CachedInfo>,
    grant: &PartGrant,
    media_key: &str,
) -> Result<Answer, ApiError> {
    let gone = || ApiError::NotFound {
        error: "Format gone",
        detail: format!("{} is no longer offered; load the manifest again", grant.f),
    };
    let (v, a) = grant.f.split_once('+').ok_or_else(gone)?;
    let find = |id: &str| cached.info.formats.iter().find(|f| f.format_id == id);
    let (vf, af) = (find(v).ok_or_else(gone)?, find(a).ok_or_else(gone)?);
    let spec = |f: &Format| format_spec(&media.service, video, cached, f);
    let Some(n) = grant.i else {
        // Rendered once per link for a while, like the other media playlists:
        // a crowd reloading it costs a cache hit, not one signature per segment.
        let playlist = media
            .rendered(media_key, Some(grant.e), || async {
                let index: Arc<Index> = media.indexes.get(&media.relay, || spec(vf)).await?;
                let links = Links::new(video, grant.e);
                Ok(Some(manifest::hls::muxed_media(&index, |n| links.muxed(media, &grant.f, Some(n as u32)))))
            })
            .await?;
        return Ok(linked(HLS_TYPE, playlist.unwrap_or_else(|| Text::new(Bytes::new())), grant.e));
    };
    let index: Arc<Index> = media.indexes.get(&media.relay, || spec(vf)).await?;
    if index.segments.get(n as usize).is_none() {
        return Err(gone());
    }
    let audio: Arc<Index> = media.indexes.get(&media.relay, || spec(af)).await?;
    let key = |n: u32| format!("{}|mux:{}|{n}", cached.key, grant.f);
    // A player going on from the segment before reads through the store's
    // blocks; one that seeks here reads just the fragments.
    let seek = n == 0 || !media.muxed.contains_key(&key(n - 1));
    let muxed = Muxed { video: (spec(vf), index), audio: (spec(af), audio), n: n as usize, seek };
    let key = key(n);
    let relay = media.relay.clone();
    let bytes = media
        .muxed
        .try_get_with(key, async move { relay.muxed_segment(muxed).await })
        .await
        .map_err(|e| ApiError::from(Arc::unwrap_or_clone(e)))?;
    // Named by what it is made of, so every instance names it the same.
    let n = n.to_le_bytes();
    let text = Text { body: bytes, etag: etag_naming(&[grant.v.as_bytes(), grant.f.as_bytes(), &n]) };
    Ok(Answer::text("video/mp2t", text, Keep::Until(grant.e)).of_format(&grant.f))
}

/// A subtitle track of a manifest: its one-segment playlist, or its WebVTT.
async fn subtitle_part(
    media: &Media,
    video: &VideoRef,
    cached: &Arc<CachedInfo>,
    grant: &PartGrant,
) -> Result<Answer, ApiError> {
    let (lang, auto) = text_track_of(grant);
    let track = pick(&cached.info, Some(lang), Some(auto))?;
    if grant.k == PartKind::SubtitlePlaylist {
        let links = Links::new(video, grant.e);
        let file = links.text(media, track, PartKind::Subtitles);
        let playlist = manifest::hls::whole_file_media(cached.info.duration.unwrap_or(0.0), &file);
        return Ok(linked(HLS_TYPE, Text::new(playlist), grant.e));
    }
    let vtt = media.subtitles.webvtt(media.relay.upstream(), &cached.key, &cached.info, track).await?;
    Ok(linked("text/vtt; charset=utf-8", Text::new(vtt), grant.e))
}

/// Text no shared cache keeps: what names the origin's own URLs (direct
/// mode), which expire on the origin's clock.
fn text(content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    Answer {
        body: Body::Untagged(body.into()),
        content_type: Some(content_type),
        keep: Keep::NoStore,
        format: None,
        disposition: None,
    }
}

/// A manifest at a stable route, whose links were written now: public while
/// they keep half their life (an expiry rendered up to 30 s ago may be an
/// hour earlier than one written now, hence the step).
fn listing(content_type: &'static str, t: Text) -> Answer {
    Answer::text(content_type, t, Keep::Listing { expires: link_expiry() - EXPIRY_STEP_SECS, lifetime: LINK_TTL_SECS })
}

/// The text a signed link expiring at `expires` names: it cannot change.
fn linked(content_type: &'static str, t: Text, expires: i64) -> Answer {
    Answer::text(content_type, t, Keep::Until(expires))
}
