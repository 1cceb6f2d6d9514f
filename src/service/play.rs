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
use crate::extract::{Format, Subtitles, VideoInfo};
use crate::live::VariantKey;
use crate::output::filename::{Parts, Style};
use crate::output::{AudioPlan, Output, VideoCodec, is_platform_gif, merge_container};
use crate::platform::VideoRef;
use crate::relay::merge::{AudioCodec, Container};
use crate::relay::merge::{Inputs, MergeSpec, Recipe};
use crate::relay::{Source as BytesSource, Spec};
use crate::select::{
    AudioLang, Mode, Player, Quality, SelectError, StreamPlan, best_video, hls_instead, rank_audio, select,
};

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
    /// What the bytes are made into: audio format, bitrate, mute, tags.
    pub output: Output,
    /// `codec=`: video of this family where the video has any.
    pub codec: Option<VideoCodec>,
    /// A subtitle language to write into the file with the video (cobalt's
    /// `subtitleLang`); ignored where the video has no such track.
    pub subtitles: Option<String>,
}

/// What a stream request becomes.
pub enum Play<'a> {
    /// A `302` to a URL that plays by itself.
    Redirect(&'a Format),
    /// A `302` to reelay's own HLS manifest (AVPro and separate audio, a
    /// live stream over SABR).
    Manifest(String),
    /// One file through the relay.
    Relay { spec: Spec, format_id: &'a str, served: Served<'a> },
    /// What ffmpeg makes: separate video and audio merged, a video muted,
    /// audio transcoded; `label` names its formats (`video+audio`).
    /// `subtitles`: the track to fetch as WebVTT into `spec.text` (the key
    /// names it already) before the merge is served.
    Merge { spec: MergeSpec, label: String, served: Served<'a>, subtitles: Option<&'a Subtitles> },
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
    /// The output asked for cannot be made from this source (409): why.
    Unproducible(String),
}

/// What a proxied file is, for the name it is saved under.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub video: Option<&'a Format>,
    pub audio: Option<&'a Format>,
    /// The file's extension, without the dot.
    pub extension: &'a str,
    pub mute: bool,
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
    let filtered = playable_info(req.player, req.lang.as_ref(), &cached.info)?;
    Ok(match req.codec {
        Some(codec) => prefer_codec(filtered.as_ref().unwrap_or(&cached.info), codec).or(filtered),
        None => filtered,
    })
}

/// `info` with only `codec`'s videos (and every audio-only format), or
/// `None` when it has no video of that family: a preference, never a 404.
fn prefer_codec(info: &VideoInfo, codec: VideoCodec) -> Option<VideoInfo> {
    if !info.formats.iter().any(|f| f.has_video && codec.matches(f)) {
        return None;
    }
    let mut kept = info.clone();
    kept.formats.retain(|f| !f.has_video || codec.matches(f));
    Some(kept)
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
    let play = plan_bytes(service, req, cached, info, mode)?;
    let track = req.subtitles.as_deref().and_then(|lang| crate::subtitles::pick(info, Some(lang), None).ok());
    Ok(match track {
        Some(track) => with_subtitles(play, req, cached, track),
        None => play,
    })
}

/// `play` with `track` written into its file: a merge or a muted video
/// takes it as a third input (its key names it); a single file with video
/// becomes a remux of it with the track. Audio, HLS and redirects are left
/// as they are (they have no file to write it into).
fn with_subtitles<'a>(play: Play<'a>, req: &PlayRequest, cached: &Arc<CachedInfo>, track: &'a Subtitles) -> Play<'a> {
    let name = format!("+subs:{}{}", track.lang, if track.auto { ":auto" } else { "" });
    match play {
        Play::Merge { mut spec, label, served, .. } if matches!(spec.recipe, Recipe::Merge(_) | Recipe::Mute) => {
            spec.key.push_str(&name);
            Play::Merge { spec, label, served, subtitles: Some(track) }
        }
        Play::Relay { spec, format_id, served } if served.video.is_some() => {
            let (recipe, extension) = if served.audio.is_some() {
                let container = req.output.container.unwrap_or_default();
                (Recipe::Merge(container), container.extension())
            } else {
                (Recipe::Mute, "mp4")
            };
            let ext = extension.to_owned();
            Play::Merge {
                spec: MergeSpec {
                    key: format!("{}|remux:{format_id}.{ext}{name}", cached.key),
                    inputs: Inputs::One(spec),
                    recipe,
                    text: None,
                },
                label: format_id.to_owned(),
                served: Served { extension, ..served },
                subtitles: Some(track),
            }
        }
        other => other,
    }
}

/// [`plan`] before subtitles are written in.
fn plan_bytes<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    info: &'a VideoInfo,
    mode: Mode,
) -> Result<Play<'a>, PlayError> {
    if info.is_live && info.formats.iter().any(Format::is_sabr) {
        // A live stream over SABR comes as separate video and audio: it
        // plays as reelay's own live HLS (one shared session per format),
        // whatever the route.
        let path = req.video.manifest_path("master.m3u8", &req.quality_name);
        return Ok(Play::Manifest(path));
    }
    if req.output.transforms() {
        // Only the proxy makes files; the smart route takes it for them.
        if mode == Mode::Direct && req.redirect_only_for.is_none() {
            return Err(PlayError::NeedsProxy(format!(
                "a muted or transcoded stream is made by the proxy; use {}",
                req.video.stream_path("proxy", &req.quality_name)
            )));
        }
        return produced(service, req, cached, info);
    }
    if req.player == Player::Avpro
        && let Ok(StreamPlan::Merge { .. }) = select(info, req.quality, Mode::Proxy)
        && (mode == Mode::Proxy || !req.strict)
    {
        // AVPro plays separate video and audio as muxed HLS (every segment
        // with sound; AVPro ignores separate audio renditions), made by
        // reelay whatever the mode: seekable from the first request.
        let lang = req.lang.as_ref().map(|l| format!("&lang={l}")).unwrap_or_default();
        let path = req.video.manifest_path("master.m3u8", &req.quality_name);
        return Ok(Play::Manifest(format!("{path}&player=avpro{lang}")));
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
        // AVPro is sent to the source's own HLS where it has one as good as
        // the file, as the proxy route does.
        let hls = (req.player == Player::Avpro && !format.is_hls()).then(|| hls_instead(info, req.quality, format));
        return Ok(Play::Redirect(hls.flatten().unwrap_or(format)));
    }
    Ok(match select(info, req.quality, Mode::Proxy)? {
        StreamPlan::Single(f) => relay_play(service, req, cached, f, false),
        StreamPlan::Hls(f) => hls_play(service, req, cached, info, f),
        StreamPlan::Merge { video, audio } => {
            let audio = if req.output.container == Some(Container::Webm) { webm_audio(info, audio) } else { audio };
            let container = merge_container(req.output.container, video, audio);
            // MP4 keeps the key merges always had, so stored merges stay found.
            let suffix =
                if container == Container::Mp4 { String::new() } else { format!(".{}", container.extension()) };
            Play::Merge {
                spec: MergeSpec {
                    key: format!("{}|merge:{}+{}{suffix}", cached.key, video.format_id, audio.format_id),
                    inputs: Inputs::Pair {
                        video: format_spec(service, &req.video, cached, video),
                        audio: format_spec(service, &req.video, cached, audio),
                    },
                    recipe: Recipe::Merge(container),
                    text: None,
                },
                label: format!("{}+{}", video.format_id, audio.format_id),
                served: Served {
                    video: Some(video),
                    audio: Some(audio),
                    extension: container.extension(),
                    mute: false,
                },
                subtitles: None,
            }
        }
    })
}

/// For a WebM merge: Opus or Vorbis audio in the same language as
/// `chosen`, when the video has one (WebM holds no AAC).
fn webm_audio<'a>(info: &'a VideoInfo, chosen: &'a Format) -> &'a Format {
    let fits = |f: &&Format| {
        f.has_audio
            && !f.has_video
            && !f.is_manifest()
            && f.language_preference == chosen.language_preference
            && matches!(f.acodec.as_deref(), Some("opus" | "vorbis"))
    };
    info.formats.iter().filter(fits).max_by(|a, b| rank_audio(a, b)).unwrap_or(chosen)
}

/// One format's own bytes through the relay.
fn relay_play<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    f: &'a Format,
    mute: bool,
) -> Play<'a> {
    let served =
        Served { video: f.has_video.then_some(f), audio: (f.has_audio && !mute).then_some(f), extension: &f.ext, mute };
    Play::Relay { spec: format_spec(service, &req.video, cached, f), format_id: &f.format_id, served }
}

/// A muted video or audio in another format: the source's bytes where they
/// already are that, else what ffmpeg makes of them, once for everyone
/// (keyed by the source format and the recipe).
fn produced<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    info: &'a VideoInfo,
) -> Result<Play<'a>, PlayError> {
    let hls = |f: &Format| {
        PlayError::Unproducible(format!(
            "format {} is an HLS or DASH stream{}; muted and transcoded files are made from single files",
            f.format_id,
            if info.is_live { " of a live" } else { "" }
        ))
    };
    if req.output.gif {
        return gif(service, req, cached, info);
    }
    if req.output.mute {
        let video = best_video(info, req.quality)
            .ok_or_else(|| PlayError::Select(SelectError::NoFormat("this video has no video track".into())))?;
        if video.is_manifest() || video.is_hls() {
            return Err(hls(video));
        }
        if !video.has_audio {
            return Ok(relay_play(service, req, cached, video, true));
        }
        let served = Served { video: Some(video), audio: None, extension: "mp4", mute: true };
        let id = &video.format_id;
        return Ok(made_of_one(service, req, cached, format!("mute:{id}"), Recipe::Mute, format!("{id}+none"), served));
    }
    let best = select(info, Quality::Audio, Mode::Proxy)?.primary();
    // Of the audio in the language chosen, the file that needs the least
    // work: already what was asked, else one ffmpeg only remuxes (Opus for
    // `format=opus`), else the best.
    let same_lang = |f: &&Format| {
        f.has_audio
            && !f.has_video
            && !f.is_manifest()
            && !f.is_hls()
            && f.language_preference == best.language_preference
    };
    let mut pool: Vec<&Format> = info.formats.iter().filter(same_lang).collect();
    pool.sort_by(|a, b| rank_audio(b, a));
    let plan_of = |f: &Format| req.output.audio_plan(f);
    let source = pool
        .iter()
        .find(|f| plan_of(f) == AudioPlan::Source)
        .or_else(|| pool.iter().find(|f| matches!(plan_of(f), AudioPlan::Produce(c) if c.copies())))
        .copied()
        .unwrap_or(best);
    if source.is_manifest() || source.is_hls() {
        return Err(hls(source));
    }
    let codec = match plan_of(source) {
        AudioPlan::Source => return Ok(relay_play(service, req, cached, source, false)),
        AudioPlan::Produce(codec) => codec,
    };
    let tags = if req.output.no_tags { Vec::new() } else { tags_of(info) };
    let what = format!("audio:{}>{}{}", source.format_id, codec_key(codec), if tags.is_empty() { "" } else { "+tags" });
    let served = Served { video: None, audio: Some(source), extension: codec.extension(), mute: false };
    let label = format!("{}>{}", source.format_id, codec.extension());
    Ok(made_of_one(service, req, cached, what, Recipe::Audio { codec, tags }, label, served))
}

/// The longest video made into a GIF that is not a platform's GIF: a GIF
/// of a film would be gigabytes, and ffmpeg's palette holds every frame.
pub const GIF_MAX_SECS: f64 = 60.0;

/// A video as an animated GIF, once for everyone: a platform's GIF (X's
/// silent MP4) or a clip of at most [`GIF_MAX_SECS`].
fn gif<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    info: &'a VideoInfo,
) -> Result<Play<'a>, PlayError> {
    let video = info
        .formats
        .iter()
        .find(|f| is_platform_gif(f))
        .or_else(|| best_video(info, req.quality))
        .ok_or_else(|| PlayError::Select(SelectError::NoFormat("this video has no video track".into())))?;
    if video.is_manifest() || video.is_hls() {
        return Err(PlayError::Unproducible(format!(
            "format {} is an HLS or DASH stream; GIFs are made from single files",
            video.format_id
        )));
    }
    if !is_platform_gif(video) && info.duration.is_none_or(|d| d > GIF_MAX_SECS) {
        return Err(PlayError::Unproducible(format!(
            "GIFs are made of platforms' GIFs and of clips up to {GIF_MAX_SECS:.0} s; this video is longer or of unknown length"
        )));
    }
    let served = Served { video: Some(video), audio: None, extension: "gif", mute: true };
    let id = &video.format_id;
    Ok(made_of_one(service, req, cached, format!("gif:{id}"), Recipe::Gif, format!("{id}>gif"), served))
}

/// What ffmpeg makes of one file (the served video, else its audio), kept
/// under the video's key and `what`.
fn made_of_one<'a>(
    service: &Arc<VideoService>,
    req: &PlayRequest,
    cached: &Arc<CachedInfo>,
    what: String,
    recipe: Recipe,
    label: String,
    served: Served<'a>,
) -> Play<'a> {
    let source = served.video.or(served.audio).expect("a made file has a source");
    Play::Merge {
        spec: MergeSpec {
            key: format!("{}|{what}", cached.key),
            inputs: Inputs::One(format_spec(service, &req.video, cached, source)),
            recipe,
            text: None,
        },
        label,
        served,
        subtitles: None,
    }
}

/// The store key's name for an audio codec and its rate.
fn codec_key(codec: AudioCodec) -> String {
    match codec {
        AudioCodec::Mp3 { kbps } => format!("mp3@{kbps}"),
        AudioCodec::Vorbis { kbps } => format!("ogg@{kbps}"),
        AudioCodec::Opus { kbps } => format!("opus@{}", kbps.map_or("copy".into(), |k| k.to_string())),
        AudioCodec::Aac { kbps } => format!("m4a@{}", kbps.map_or("copy".into(), |k| k.to_string())),
        AudioCodec::Wav => "wav".into(),
    }
}

/// The title and artist written into a produced audio file.
fn tags_of(info: &VideoInfo) -> Vec<(String, String)> {
    let mut tags = vec![("title".to_owned(), info.title.clone())];
    if let Some(u) = &info.uploader {
        tags.push(("artist".into(), u.clone()));
    }
    if let Some(d) = info.upload_date.as_deref().filter(|d| d.len() >= 4) {
        tags.push(("date".into(), d[..4].to_owned()));
    }
    tags.retain(|(_, v)| !v.trim().is_empty());
    tags
}

/// The name `served` is saved under, in `style`.
pub fn file_name(video: &VideoRef, info: &VideoInfo, served: &Served, style: Style) -> String {
    let v = served.video;
    let codec = v.and_then(|f| f.vcodec.as_deref()).and_then(VideoCodec::of).map(|c| c.name().to_owned());
    let dub = served.audio.filter(|a| a.language_preference.is_some_and(|p| p < 10)).and_then(|a| a.language.clone());
    let parts = Parts {
        service: video.platform_name().to_owned(),
        id: info.id.clone(),
        title: info.title.clone(),
        author: info.uploader.clone(),
        resolution: v.and_then(|f| f.width.zip(f.height)).map(|(w, h)| format!("{w}x{h}")),
        quality: v.and_then(|f| f.height).map(|h| format!("{h}p")),
        codec,
        dub,
        mute: served.mute,
        audio_only: v.is_none(),
        extension: served.extension.to_owned(),
    };
    style.name(&parts)
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
    // A SABR format's URL takes the protocol's sessions, which the relay
    // runs: it is never handed to a client.
    if format.is_sabr() {
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
