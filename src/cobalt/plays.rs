//! cobalt's plays: what a cobalt request gets for a looked-up video (a
//! `tunnel`, a `redirect`, a `picker` or `local-processing`), the signed
//! tunnel links, and what a tunnel serves (reelay's own proxy route
//! underneath, saved under cobalt's file name). `http::cobalt` carries the
//! requests and answers.

use http::{HeaderMap, Method};

use super::{
    Answer, Checked, Code, Context, DownloadMode, LocalAudio, LocalOutput, LocalProcessing, PickerItem, TunnelGrant,
    mime_of,
};
use crate::cache::{CachedInfo, now_unix};
use crate::extract::{Format, VideoInfo};
use crate::output::filename::Style;
use crate::output::{Bitrate, Output, VideoCodec, parse_container};
use crate::platform::{Platform, PlaylistRef, VideoRef};
use crate::relay::merge::Recipe;
use crate::select::{AudioLang, Mode, Player};
use crate::service::Purpose;
use crate::service::answer::{Answer as Served, Keep, Text};
use crate::service::error::ApiError;
use crate::service::media::Media;
use crate::service::play::{self, Play, PlayError, PlayRequest};
use crate::service::stream::{self, Clip, StreamRequest};

/// How long a tunnel link works: long enough to start a download after
/// the answer (cobalt's own last 90 s); a started download runs to its end.
const TUNNEL_TTL_SECS: i64 = 3600;

/// Why a looked-up video gets no file.
pub enum Refused {
    /// reelay's refusal, which `http::cobalt` maps onto cobalt's codes.
    Api(ApiError),
    /// cobalt's own code, with its context.
    Code(Code, Option<Context>),
}

impl<E: Into<ApiError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Refused::Api(e.into())
    }
}

/// A post with several videos (an X post, a carousel): a picker, one
/// tunnel per item, each item looked up on its own link when fetched.
pub async fn picker(
    media: &Media,
    who: impl FnOnce() -> String,
    video: &VideoRef,
    req: &Checked,
    base: &str,
) -> Result<Answer, Refused> {
    let name = video.platform_name();
    let post = video.source_url();
    let Ok(url) = url::Url::parse(&post) else { return Err(Refused::Code(Code::LinkInvalid, None)) };
    let list = media.service.lookup_playlist(&PlaylistRef::Generic { url }, who).await?;
    let empty = || Refused::Code(Code::FetchEmpty, Some(service(name)));
    let mut items = Vec::new();
    for entry in &list.entries {
        // Each item's own link; an X post's items share the post's, and
        // are named `…/video/{n}` (as the platform and yt-dlp name them).
        let own = entry.url.clone().filter(|u| *u != post && u.starts_with("http"));
        let link = match (own, video.platform()) {
            (Some(u), _) => u,
            (None, Some(Platform::Twitter)) => format!("{post}/video/{}", entry.index),
            (None, _) => return Err(empty()),
        };
        let Ok(item) = VideoRef::item(&link) else { return Err(empty()) };
        let grant = tunnel_grant(&item, req, req.quality_name.clone(), req.dub.as_ref(), None, None);
        items.push(PickerItem {
            kind: "video",
            url: format!("{base}/cobalt/tunnel/{}", media.signer.sign(&grant)),
            thumb: entry.thumbnail.clone(),
        });
    }
    if items.is_empty() {
        return Err(empty());
    }
    Ok(Answer::Picker { picker: items })
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
        r: req.clip.map(|c| (c.start, c.end.is_finite().then_some(c.end))),
    }
}

/// A refusal's context: the platform it came from.
pub fn service(name: &str) -> Context {
    Context { service: Some(name.to_owned()), limit: None }
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
pub async fn respond(
    media: &Media,
    video: &VideoRef,
    cached: &std::sync::Arc<CachedInfo>,
    req: &Checked,
    base: &str,
) -> Result<Answer, Refused> {
    if cached.info.is_live {
        // A file of a live stream cannot be made before it ends.
        return Err(Refused::Code(Code::ContentLive, Some(service(video.platform_name()))));
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
    let plan = play::plan(&media.service, &play_req, cached, info, Mode::Proxy)?;
    let served = match &plan {
        Play::Relay { served, .. } | Play::Merge { served, .. } => *served,
        // HLS-only sources (Twitch VODs) are not made into files yet.
        _ => return Err(Refused::Code(Code::FetchEmpty, Some(service(video.platform_name())))),
    };
    let filename = play::file_name(video, info, &served, req.style);
    let grant = |f: Option<String>, x: Option<String>| {
        tunnel_grant(video, req, play_req.quality_name.clone(), play_req.lang.as_ref(), f, x)
    };
    let link = |g: TunnelGrant| format!("{base}/cobalt/tunnel/{}", media.signer.sign(&g));
    if req.clip.is_some() {
        // A clip is composed by the server from DASH video and audio: a
        // tunnel, whatever `localProcessing` says.
        let composable = match &plan {
            Play::Merge { spec, subtitles: None, .. } => {
                matches!(stream::composable(media, spec, req.clip).await, Ok(Some(_)))
            }
            _ => false,
        };
        if !composable {
            return Err(Refused::Api(stream::unclippable("this video is served as one stream")));
        }
        return Ok(Answer::Tunnel { url: link(grant(None, None)), filename });
    }
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
fn plays_anywhere(f: &Format, mode: DownloadMode) -> bool {
    if f.is_sabr() {
        return false;
    }
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
pub async fn tunnel(
    media: &Media,
    client: String,
    token: &str,
    method: Method,
    headers: HeaderMap,
) -> Result<Served, ApiError> {
    let g: TunnelGrant = media.signer.verify(token, now_unix())?;
    let video = VideoRef::from_cache_key(&g.v).ok_or_else(|| ApiError::Forbidden("the link names no video".into()))?;
    if g.f.is_some() || g.x.is_some() {
        return part(media, || client, &video, &g, &method, &headers).await;
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
    let clip = g.r.map(|(start, end)| Clip { start, end: end.unwrap_or(f64::INFINITY) });
    let req = StreamRequest { play, save_as: Some((style, true)), method, headers, client, clip };
    stream::serve(media, &req, Mode::Proxy).await
}

/// One format's own bytes, or a subtitle track as WebVTT.
async fn part(
    media: &Media,
    who: impl FnOnce() -> String,
    video: &VideoRef,
    g: &TunnelGrant,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Served, ApiError> {
    let cached = media.lookup(video, Purpose::Stream, who).await?;
    if let Some(lang) = &g.x {
        let track = crate::subtitles::pick(&cached.info, Some(lang), None)?;
        let vtt = media.subtitles.webvtt(media.relay.upstream(), &cached.key, &cached.info, track).await?;
        return Ok(Served::text("text/vtt; charset=utf-8", Text::new(vtt), Keep::Unsaid));
    }
    let id = g.f.as_deref().unwrap_or_default();
    let f = cached.info.formats.iter().find(|f| f.format_id == id).ok_or_else(|| ApiError::NotFound {
        error: "Format gone",
        detail: format!("format {id} is no longer offered; ask again"),
    })?;
    let spec = play::format_spec(&media.service, video, &cached, f);
    Ok(Served::relay(media.relay.serve(spec, method, headers).await?))
}
