//! Live streams through the server: the signed links of the live engine's
//! playlists (a variant's playlist, its segments, maps and keys), and what
//! each answers, from the variant's one shared session.

use std::sync::Arc;

use http::{HeaderMap, Method};

use super::answer::{Answer, Body, Keep};
use super::error::ApiError;
use super::media::Media;
use super::rewritten::HLS_TYPE;
use super::{FormatSource, Purpose};
use crate::cache::{CachedInfo, now_unix};
use crate::extract::Format;
use crate::hls::{LiveGrant, Signer};
use crate::live::{Links, LiveError, Part, Playlist, VariantKey};
use crate::manifest::hls::LiveVariant;
use crate::platform::VideoRef;
use crate::relay::Source;
use crate::select::{Player, Quality, rank_audio};

/// How long a variant's link stays valid: a week of watching.
const VARIANT_LINK_SECS: i64 = 7 * 24 * 3600;

/// The live sessions' links: signed grants naming the stream, the variant
/// and the part, routed (`?v=`) like every other link of the video.
pub struct SignedLinks(pub Arc<Signer>);

impl Links for SignedLinks {
    fn part(&self, key: &VariantKey, part: Part, name: &str) -> String {
        let (s, a) = match part {
            Part::Segment(n) => (Some(n), None),
            Part::Aux(n) => (None, Some(n)),
        };
        let grant = LiveGrant { v: key.stream.clone(), f: key.variant.clone(), e: now_unix() + 3600, s, a };
        link(&self.0, &grant, name)
    }
}

fn link(signer: &Signer, grant: &LiveGrant, name: &str) -> String {
    let route = VideoRef::from_cache_key(&grant.v).map(|v| v.route_query()).unwrap_or_default();
    format!("/api/v2/stream/live/{}/{name}?v={route}", signer.sign(grant))
}

/// The link of a live format's playlist, for a master playlist.
pub fn variant_link(media: &Media, cached: &CachedInfo, f: &Format) -> String {
    let grant = LiveGrant {
        v: cached.key.clone(),
        f: f.format_id.clone(),
        e: now_unix() + VARIANT_LINK_SECS,
        s: None,
        a: None,
    };
    link(&media.signer, &grant, &format!("{}.m3u8", link_safe(&f.format_id)))
}

/// A live stream's master: each variant the player plays, up to the
/// quality asked, as a link to its shared session. HLS variants carry their
/// sound; SABR formats come apart, so its video formats are variants of one
/// audio rendition (the best audio format), each an fMP4 playlist.
pub fn master(media: &Media, cached: &CachedInfo, player: Player, quality: Quality) -> Result<Answer, ApiError> {
    let (audio_only, cap) = (quality == Quality::Audio, cap(quality));
    let live = |f: &Format| LiveVariant {
        uri: variant_link(media, cached, f),
        bandwidth: f.tbr.map_or(0, |k| (k * 1000.0) as u64),
        codecs: {
            let c: Vec<String> = [codec_string(&f.vcodec), codec_string(&f.acodec)].into_iter().flatten().collect();
            (!c.is_empty()).then(|| c.join(","))
        },
        resolution: f.width.zip(f.height),
        frame_rate: f.fps,
    };
    let formats = || cached.info.formats.iter().filter(|f| player.plays(f));
    let sabr = cached.info.formats.iter().any(Format::is_sabr);
    let audio =
        formats().filter(|f| sabr && f.is_sabr() && f.has_audio && !f.has_video).max_by(|a, b| rank_audio(a, b));
    let within = |f: &&Format| f.height.unwrap_or(0) <= cap;
    let variants: Vec<LiveVariant> = if sabr {
        let mut video: Vec<&Format> = formats().filter(|f| f.is_sabr() && f.has_video).collect();
        video.sort_by_key(|f| f.height.unwrap_or(0));
        // Within the cap, or the lowest above it.
        let lowest = video.first().copied();
        let video: Vec<&Format> = video.iter().copied().filter(within).collect();
        let video = if video.is_empty() { lowest.into_iter().collect() } else { video };
        video.into_iter().filter(|_| !audio_only).map(live).collect()
    } else {
        formats().filter(|f| f.is_hls()).filter(within).map(live).collect()
    };
    if variants.is_empty() && audio.is_none() {
        return Err(ApiError::NotFound {
            error: "No format",
            detail: format!("this live stream has no variant up to {quality:?}"),
        });
    }
    let audio = audio.map(live);
    let text = crate::manifest::hls::live_master(&variants, audio.as_ref());
    Ok(Answer {
        body: Body::Untagged(text.into()),
        content_type: Some(HLS_TYPE),
        keep: Keep::NoCache,
        format: None,
        disposition: None,
    })
}

/// The highest video a quality allows, in lines.
pub(super) fn cap(q: Quality) -> u32 {
    match q {
        Quality::Max(h) => h,
        _ => u32::MAX,
    }
}

/// A codec as a manifest names it; `None` for none or unknown.
pub(super) fn codec_string(c: &Option<String>) -> Option<String> {
    c.as_deref().filter(|c| !c.is_empty() && *c != "none").map(str::to_owned)
}

fn link_safe(s: &str) -> String {
    let name: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(32).collect();
    if name.is_empty() { "variant".into() } else { name }
}

/// The playlist of `key`, from its shared session; `source` (made only
/// when nobody watches the variant yet) finds the session.
pub async fn playlist(
    media: &Media,
    key: &VariantKey,
    source: impl FnOnce() -> Arc<dyn Source>,
) -> Result<Answer, ApiError> {
    let copy = media.live.playlist(key, source).await.map_err(live_error)?;
    Ok(reply(copy, Some(&key.variant)))
}

/// A live playlist as players get it: cacheable for half a target duration.
pub fn reply(copy: Playlist, variant: Option<&str>) -> Answer {
    Answer {
        body: Body::Untagged(copy.body),
        content_type: Some(HLS_TYPE),
        keep: Keep::Briefly(copy.max_age),
        format: variant.map(str::to_owned),
        disposition: None,
    }
}

fn live_error(e: LiveError) -> ApiError {
    match e {
        LiveError::Origin(e) => e.into(),
        LiveError::NotPlaylist => {
            ApiError::BadGateway { error: "Upstream error", detail: "the origin's live playlist is not HLS".into() }
        }
        LiveError::Timeout => ApiError::Timeout("the live playlist did not arrive in time".into()),
    }
}

/// A signed live link: a variant's playlist, or a segment, map or key.
pub async fn part(media: &Media, token: &str, method: &Method, headers: &HeaderMap) -> Result<Answer, ApiError> {
    let grant: LiveGrant = media.signer.verify(token, now_unix())?;
    let key = VariantKey { stream: grant.v.clone(), variant: grant.f.clone() };
    let part = match (grant.s, grant.a) {
        (Some(n), _) => Part::Segment(n),
        (None, Some(n)) => Part::Aux(n),
        (None, None) => return variant_playlist(media, key).await,
    };
    let gone = || ApiError::NotFound {
        error: "Segment gone",
        detail: "this part has left the live window; reload the playlist".into(),
    };
    let spec = media.live.part(&key, part).ok_or_else(gone)?;
    let reply = media.relay.serve(spec, method, headers).await?;
    Ok(Answer { keep: Keep::LivePart, ..Answer::relay(reply) })
}

/// A variant's playlist from its link: the poller's copy (an ended
/// stream's too, with its `EXT-X-ENDLIST`), or a new poller from the
/// video's current extraction.
async fn variant_playlist(media: &Media, key: VariantKey) -> Result<Answer, ApiError> {
    if let Some(copy) = media.live.polled(&key) {
        return Ok(reply(copy, Some(&key.variant)));
    }
    let video = VideoRef::from_cache_key(&key.stream).ok_or_else(|| {
        // A signed-in session's stream: its poller has stopped, and only the
        // stream link (with its sign-in) can start one again.
        ApiError::NotFound {
            error: "Not live",
            detail: "this live session has ended; open the stream link again".into(),
        }
    })?;
    let (cached, _) = media.service.info(&video, Purpose::Stream, None).await.map_err(ApiError::from)?;
    let offered = cached.info.formats.iter().any(|f| f.format_id == key.variant);
    if !cached.info.is_live || !offered {
        return Err(ApiError::NotFound {
            error: "Not live",
            detail: format!("{} is not live now with variant {}", video.route_key(), key.variant),
        });
    }
    let service = media.service.clone();
    let variant = key.variant.clone();
    playlist(media, &key, move || Arc::new(FormatSource::new(service, video, cached, &variant))).await
}
