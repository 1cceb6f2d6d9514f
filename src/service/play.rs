//! Playing a video: what a stream request becomes, without HTTP. The
//! request is checked at the edge; [`plan`] turns it and the cached info
//! into a [`Play`], which the HTTP layer carries out (a `302`, the relay, a
//! merge, a rewritten playlist). The relay objects of a video's formats and
//! merges are keyed here, by what their bytes are (the video's cache key
//! with its sign-in scope, the format, the merge plan), never by URL.

use std::net::IpAddr;
use std::sync::Arc;

use super::{FormatSource, VideoService};
use crate::cache::CachedInfo;
use crate::egress::Route;
use crate::extract::{Format, VideoInfo};
use crate::live::VariantKey;
use crate::platform::VideoRef;
use crate::relay::merge::MergeSpec;
use crate::relay::{Source as BytesSource, Spec};
use crate::select::{AudioLang, Mode, Player, Quality, SelectError, StreamPlan, hls_instead, select};

/// A stream request, checked at the edge.
#[derive(Debug, Clone)]
pub struct PlayRequest {
    pub video: VideoRef,
    pub quality: Quality,
    /// As the client spelled it, for messages and links.
    pub quality_name: String,
    /// Direct mode: refuse (409) rather than fall back to a lower quality.
    pub strict: bool,
    /// Smart mode: redirect only if the URL is not bound to another address.
    pub redirect_only_for: Option<IpAddr>,
    /// What the player can play.
    pub player: Player,
    /// `lang=`: the audio language; by default the original.
    pub lang: Option<AudioLang>,
}

/// What a stream request becomes.
pub enum Play<'a> {
    /// A `302` to a URL that plays by itself.
    Redirect(&'a Format),
    /// A `302` to reelay's own HLS manifest (AVPro and separate audio).
    Manifest(String),
    /// One file through the relay.
    Relay { spec: Spec, format_id: &'a str },
    /// Separate video and audio merged by ffmpeg; `label` is `video+audio`.
    Merge { spec: MergeSpec, label: String },
    /// The source's own HLS playlist, to rewrite; fetched the way the
    /// extraction left.
    Hls { format: &'a Format, route: &'a Route },
    /// A live stream's variant, from its shared session; `source` finds
    /// the session's playlist (and a new one when the origin refuses it).
    Live { key: VariantKey, source: Arc<dyn BytesSource> },
}

/// Why a request cannot be played as asked.
#[derive(Debug)]
pub enum PlayError {
    /// No format the player profile can play (404).
    NoFormatForPlayer(Player),
    /// No format fits (404).
    Select(SelectError),
    /// Strict direct mode, and the quality needs the proxy (409): what to ask instead.
    NeedsProxy(String),
    /// The video has no audio in the language asked for (404): the ones it has.
    NoLanguage(String),
}

impl From<SelectError> for PlayError {
    fn from(e: SelectError) -> Self {
        PlayError::Select(e)
    }
}

/// The video's info as the request sees it: formats its player profile
/// cannot play, and audio in another language than `lang=`, left out;
/// `None` when nothing is.
pub fn playable(req: &PlayRequest, cached: &CachedInfo) -> Result<Option<VideoInfo>, PlayError> {
    if req.player == Player::Unity && cached.info.is_live {
        // Unity's VideoPlayer plays no live HLS, and a live has nothing else.
        return Err(PlayError::NeedsProxy(format!(
            "Unity's VideoPlayer does not play live streams (HLS); a player that does can take {}",
            req.video.stream_path("proxy", &req.quality_name)
        )));
    }
    playable_info(req.player, req.lang.as_ref(), &cached.info)
}

/// [`playable`] for any request that names a player and a language.
pub fn playable_info(
    player: Player,
    lang: Option<&AudioLang>,
    info: &VideoInfo,
) -> Result<Option<VideoInfo>, PlayError> {
    let filtered = player.filter(info);
    let filtered = match lang {
        Some(lang) => Some(lang.filter(filtered.as_ref().unwrap_or(info)).map_err(PlayError::NoLanguage)?),
        None => filtered,
    };
    let formats = filtered.as_ref().map_or(info.formats.len(), |i| i.formats.len());
    if formats == 0 {
        return Err(PlayError::NoFormatForPlayer(player));
    }
    Ok(filtered)
}

/// What `req` becomes in `mode`, from `info` (the cached info, or what
/// [`playable`] left of it).
pub fn plan<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    info: &'a VideoInfo,
    mode: Mode,
) -> Result<Play<'a>, PlayError> {
    if req.player == Player::Avpro
        && let Ok(StreamPlan::Merge { .. }) = select(info, req.quality, Mode::Proxy)
        && (mode == Mode::Proxy || !req.strict)
    {
        // AVPro plays separate video and audio through a manifest: seekable, no ffmpeg.
        let direct = if mode == Mode::Direct { "&mode=direct" } else { "" };
        let lang = req.lang.as_ref().map(|l| format!("&lang={l}")).unwrap_or_default();
        let path = req.video.manifest_path("master.m3u8", &req.quality_name);
        return Ok(Play::Manifest(format!("{path}&player=avpro{direct}{lang}")));
    }
    if req.player == Player::Avpro
        && mode == Mode::Proxy
        && let Ok(StreamPlan::Single(file)) = select(info, req.quality, Mode::Proxy)
    {
        // AVPro always gets HLS: the source's own (as good as the file),
        // else the file as a one-segment HLS (reelay's manifest route).
        if let Some(hls) = hls_instead(info, req.quality, file) {
            return Ok(hls_play(service, req, cached, info, hls));
        }
        let lang = req.lang.as_ref().map(|l| format!("&lang={l}")).unwrap_or_default();
        let path = req.video.manifest_path("master.m3u8", &req.quality_name);
        return Ok(Play::Manifest(format!("{path}&player=avpro{lang}")));
    }
    if mode == Mode::Direct
        && let Some(format) = redirect(info, req)?
    {
        return Ok(Play::Redirect(format));
    }
    Ok(match select(info, req.quality, Mode::Proxy)? {
        StreamPlan::Single(f) => {
            Play::Relay { spec: format_spec(service, &req.video, cached, f), format_id: &f.format_id }
        }
        StreamPlan::Hls(f) => hls_play(service, req, cached, info, f),
        StreamPlan::Merge { video, audio } => Play::Merge {
            spec: MergeSpec {
                key: format!("{}|merge:{}+{}", cached.key, video.format_id, audio.format_id),
                video: format_spec(service, &req.video, cached, video),
                audio: format_spec(service, &req.video, cached, audio),
            },
            label: format!("{}+{}", video.format_id, audio.format_id),
        },
    })
}

fn height(f: &Format) -> u32 {
    f.height.unwrap_or(0)
}

/// The format to redirect to, or `None` when its URL is bound to another
/// address than the client's and must be proxied instead.
fn redirect<'a>(info: &'a VideoInfo, req: &PlayRequest) -> Result<Option<&'a Format>, PlayError> {
    let format = select(info, req.quality, Mode::Direct)?.primary();
    if req.strict
        && let Ok(StreamPlan::Merge { video, .. }) = select(info, req.quality, Mode::Proxy)
        && height(video) > height(format)
    {
        return Err(PlayError::NeedsProxy(format!(
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
    Ok(Some(format))
}

/// The address a stream URL is bound to (googlevideo's `ip=`), if any.
fn bound_ip(url: &str) -> Option<IpAddr> {
    let url = url::Url::parse(url).ok()?;
    let ip = url.query_pairs().find(|(k, _)| k == "ip")?.1;
    ip.parse().ok()
}

/// An HLS format played through the proxy: a live one from its shared
/// session, another rewritten.
fn hls_play<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    info: &'a VideoInfo,
    f: &'a Format,
) -> Play<'a> {
    if info.is_live {
        return Play::Live {
            key: VariantKey { stream: cached.key.clone(), variant: f.format_id.clone() },
            source: Arc::new(FormatSource::new(service.clone(), req.video.clone(), cached.clone(), &f.format_id)),
        };
    }
    Play::Hls { format: f, route: &info.route }
}

/// The relay object of one format: its bytes, keyed by the video (with its
/// sign-in scope) and the format, found through the cached extraction.
pub fn format_spec(service: &Arc<VideoService>, video: &VideoRef, cached: &Arc<CachedInfo>, f: &Format) -> Spec {
    Spec {
        key: format!("{}|{}", cached.key, f.format_id),
        source: Arc::new(FormatSource::new(service.clone(), video.clone(), cached.clone(), &f.format_id)),
        chunk_size: f.chunk_size,
        transient: false,
    }
}
