//! A stream request served: `direct` redirects to one URL that plays by
//! itself, `proxy` serves the bytes (relayed, composed from DASH fragments,
//! merged by ffmpeg, or a rewritten HLS playlist), and a clip is composed
//! from the fragments it covers.
//!
//! Every mode works from the one cached extraction. The bytes of single
//! files, merges and HLS segments come from the relay engine, which asks for
//! a new extraction itself when the origin refuses a URL; a refused playlist
//! drops the cache entry here and the request is retried once.

use http::{HeaderMap, Method};

use super::Purpose;
use super::answer::Answer;
use super::error::ApiError;
use super::live_links;
use super::media::Media;
use super::play::{self, Play, PlayRequest};
use super::rewritten::{PlaylistFailure, open_playlist};
use crate::cache::CachedInfo;
use crate::output::filename::{Style, content_disposition};
use crate::relay::compose::{ComposeError, Merge};
use crate::relay::merge::{Container, Inputs, MergeSpec, Recipe, TextTrack};
use crate::relay::{ProxyError, RelayError};
use crate::select::Mode;
use crate::upstream::Via;

/// A part of the film (`start=`, `end=` in seconds), composed from the
/// fragments that cover it.
pub use crate::relay::compose::Clip;

/// A stream request, checked at the edge.
pub struct StreamRequest {
    pub play: PlayRequest,
    /// The name the file is saved under, and whether as an attachment.
    pub save_as: Option<(Style, bool)>,
    pub method: Method,
    pub headers: HeaderMap,
    /// Who asks (its rate-limit identity): for the extraction budget.
    pub client: String,
    /// `start=`/`end=`: a part of the film, composed (proxy route only).
    pub clip: Option<Clip>,
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

/// Serves a stream request in `mode`: a redirect, the relay's bytes, a
/// rewritten playlist, a live window, a composed or ffmpeg merge. A URL the
/// origin refuses is extracted again once.
pub async fn serve(media: &Media, req: &StreamRequest, mode: Mode) -> Result<Answer, ApiError> {
    if req.clip.is_some() && mode == Mode::Direct {
        return Err(ApiError::Conflict(
            "a clip (start=, end=) is cut by the server: ask the proxy route, /api/v2/stream/proxy/…".into(),
        ));
    }
    let mut refreshed = false;
    loop {
        let cached = match media.lookup(&req.play.video, Purpose::Stream, || req.client.clone()).await {
            Ok(cached) => cached,
            // A live stream whose players reload it while it cannot be
            // looked up (it ended; its renewal fails): the newest window
            // (ended once its poller gives up), rather than an error.
            Err(e) => match media.live.latest(&req.play.video.cache_key()) {
                Some(copy) => return Ok(live_links::reply(copy, None)),
                None => return Err(e),
            },
        };
        let filtered = play::playable(&req.play, &cached)?;
        let info = filtered.as_ref().unwrap_or(&cached.info);
        let plan = play::plan(&media.service, &req.play, &cached, info, mode)?;
        let name = req.save_as.and_then(|(style, attachment)| {
            let served = match &plan {
                Play::Relay { served, .. } | Play::Merge { served, .. } => served,
                _ => return None,
            };
            Some(content_disposition(&play::file_name(&req.play.video, info, served, style), attachment))
        });
        match carry_out(media, req, &cached, plan).await {
            Ok(answer) => return Ok(Answer { disposition: name, ..answer }),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Expired) if !refreshed => {
                tracing::info!(key = %req.play.video.cache_key(), "origin refused a cached stream URL; extracting again");
                media.service.invalidate(&req.play.video).await;
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
async fn carry_out(media: &Media, req: &StreamRequest, cached: &CachedInfo, play: Play<'_>) -> Result<Answer, Attempt> {
    if req.clip.is_some() && !matches!(play, Play::Merge { .. }) {
        return Err(unclippable("this video is served as one stream").into());
    }
    match play {
        Play::Redirect(format) => Ok(Answer::found(&format.url).of_format(&format.format_id)),
        Play::Manifest(path) => Ok(Answer::found(path)),
        Play::Relay { spec, format_id, .. } => {
            let reply = media.relay.serve(spec, &req.method, &req.headers).await?;
            Ok(Answer::relay(reply).of_format(format_id))
        }
        Play::Hls { format: f, route } => {
            let via = Via { headers: &f.http_headers, route };
            let key = req.play.video.cache_key();
            let opened = open_playlist(media, &f.url, &via, &HeaderMap::new(), &key, &f.format_id).await;
            opened.map_err(|failure| match failure {
                PlaylistFailure::Upstream(e) => upstream_error(e),
                PlaylistFailure::Body(e) => Attempt::Failed(e),
            })
        }
        Play::Live { key, source } => Ok(live_links::playlist(media, &key, move || source).await?),
        Play::Merge { mut spec, label, subtitles, .. } => {
            if let Some(track) = subtitles {
                let vtt = media
                    .subtitles
                    .webvtt(media.relay.upstream(), &cached.key, &cached.info, track)
                    .await
                    .map_err(ApiError::from)?;
                spec.text = Some(TextTrack { lang: track.lang.clone(), vtt });
            }
            if let Some(merge) = composable(media, &spec, req.clip).await? {
                match media.relay.serve_composed(merge, &req.method, &req.headers).await {
                    Ok(reply) => return Ok(Answer::relay(reply).of_format(label)),
                    Err(ComposeError::Relay(e)) => return Err(e.into()),
                    Err(e) if req.clip.is_some() => return Err(unclippable(&e.to_string()).into()),
                    Err(e) => tracing::info!(key = %spec.key, error = %e, "merge not composable; ffmpeg merges it"),
                }
            }
            if req.clip.is_some() {
                return Err(unclippable("its parts are not DASH MP4 files with an index").into());
            }
            let reply = media.relay.serve_merge(spec, &req.method, &req.headers).await?;
            Ok(Answer::relay(reply).of_format(label))
        }
    }
}

/// A plain MP4 merge of two DASH files that both have an index: composed
/// in process from their fragments, no ffmpeg (`relay::compose`). Anything
/// else (other containers, subtitles, progressive or WebM inputs) is
/// ffmpeg's.
pub async fn composable(media: &Media, spec: &MergeSpec, clip: Option<Clip>) -> Result<Option<Merge>, RelayError> {
    let Inputs::Pair { video, audio } = &spec.inputs else { return Ok(None) };
    if spec.recipe != Recipe::Merge(Container::Mp4) || spec.text.is_some() {
        return Ok(None);
    }
    let (v, a) = tokio::join!(
        media.indexes.get(&media.relay, || video.clone()),
        media.indexes.get(&media.relay, || audio.clone())
    );
    match (v, a) {
        (Ok(v), Ok(a)) => {
            Ok(Some(Merge { key: spec.key.clone(), video: (video.clone(), v), audio: (audio.clone(), a), clip }))
        }
        (Err(e), _) | (_, Err(e)) => unmergeable(&e).map_or(Ok(None), Err),
    }
}

/// Why an index read failed, when ffmpeg would fail the same way: the
/// source refused its URL also after a new extraction, a SABR session
/// could not go on (ffmpeg cannot speak SABR at all), the stream ended.
/// Anything else (not a DASH file, an origin that failed for a moment)
/// leaves the merge to ffmpeg.
fn unmergeable(e: &crate::manifest::IndexFailure) -> Option<RelayError> {
    use crate::manifest::IndexFailure;
    use crate::relay::RelayError as R;
    match e {
        IndexFailure::Relay(e @ (R::Expired | R::Sabr(_) | R::Source(_) | R::Ended(_) | R::Refused(_))) => {
            Some(e.clone())
        }
        _ => None,
    }
}

/// The longest a clip's times may be: a week, in seconds.
const CLIP_MAX_SECS: f64 = 604_800.0;

/// A clip from `start` and `end` (seconds; a missing `start` is 0, a missing
/// `end` the film's end): both finite, not negative, within a week, `end`
/// after `start`. `None` when neither is given; the refusal says why.
pub fn clip(start: Option<f64>, end: Option<f64>) -> Result<Option<Clip>, String> {
    let seconds = |name: &str, t: f64| match t.is_finite() && (0.0..=CLIP_MAX_SECS).contains(&t) {
        true => Ok(t),
        false => Err(format!("{name} is a number of seconds (0 to {CLIP_MAX_SECS})")),
    };
    let (start, end) = match (start, end) {
        (None, None) => return Ok(None),
        (start, end) => (
            start.map(|t| seconds("start", t)).transpose()?.unwrap_or(0.0),
            end.map(|t| seconds("end", t)).transpose()?.unwrap_or(f64::INFINITY),
        ),
    };
    if end <= start {
        return Err("end is after start".into());
    }
    Ok(Some(Clip { start, end }))
}

/// Why a clip cannot be cut of this video.
pub fn unclippable(why: &str) -> ApiError {
    ApiError::Unprocessable {
        error: "Cannot clip",
        detail: format!(
            "a clip is cut from separate DASH video and audio with their index (YouTube above 360p, Bilibili): {why}"
        ),
    }
}
