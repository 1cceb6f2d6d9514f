//! Live streams over HTTP: a live video's playlist at its stream link, its
//! variants' playlists and their parts at `/api/v2/stream/live/...`, all
//! from the shared sessions of [`crate::live`]. Links name the stream,
//! the variant and the part, signed; never the origin's URL.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use super::error::ApiError;
use super::reply::{FORMAT_HEADER, HLS_TYPE, format_header};
use super::state::AppState;
use crate::cache::{CachedInfo, now_unix};
use crate::extract::Format;
use crate::hls::{LiveGrant, Signer};
use crate::live::{Links, LiveError, Part, Playlist, VariantKey};
use crate::platform::VideoRef;
use crate::relay::Source;
use crate::service::{FormatSource, Purpose};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/stream/live/{token}/{name}", get(live_link))]
}

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
pub fn variant_link(state: &AppState, cached: &CachedInfo, f: &Format) -> String {
    let grant = LiveGrant {
        v: cached.key.clone(),
        f: f.format_id.clone(),
        e: now_unix() + VARIANT_LINK_SECS,
        s: None,
        a: None,
    };
    link(&state.signer, &grant, &format!("{}.m3u8", link_safe(&f.format_id)))
}

fn link_safe(s: &str) -> String {
    let name: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(32).collect();
    if name.is_empty() { "variant".into() } else { name }
}

/// The playlist of `key`, from its shared session; `source` (made only
/// when nobody watches the variant yet) finds the session.
pub async fn playlist(
    state: &AppState,
    key: &VariantKey,
    source: impl FnOnce() -> Arc<dyn Source>,
) -> Result<Response, ApiError> {
    let copy = state.live.playlist(key, source).await.map_err(live_error)?;
    Ok(reply(copy, Some(&key.variant)))
}

/// A live playlist as players get it: cacheable for half a target duration.
pub fn reply(copy: Playlist, variant: Option<&str>) -> Response {
    let mut resp = Response::new(Body::from(copy.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(HLS_TYPE));
    let cache = format!("max-age={}", copy.max_age);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).expect("digits"));
    if let Some(v) = variant {
        h.insert(FORMAT_HEADER, format_header(v));
    }
    resp
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
async fn live_link(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let grant: LiveGrant = state.signer.verify(&token, now_unix()).map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let key = VariantKey { stream: grant.v.clone(), variant: grant.f.clone() };
    let part = match (grant.s, grant.a) {
        (Some(n), _) => Part::Segment(n),
        (None, Some(n)) => Part::Aux(n),
        (None, None) => return variant_playlist(&state, key).await,
    };
    let gone = || ApiError::NotFound {
        error: "Segment gone",
        detail: "this part has left the live window; reload the playlist".into(),
    };
    let spec = state.live.part(&key, part).ok_or_else(gone)?;
    let reply = state.relay.serve(spec, &method, &headers).await?;
    let mut resp = reply.map(Body::new);
    let immutable = HeaderValue::from_static("max-age=3600, immutable");
    resp.headers_mut().insert(header::CACHE_CONTROL, immutable);
    Ok(resp)
}

/// A variant's playlist from its link: the poller's copy, or a new poller
/// from the video's current extraction.
async fn variant_playlist(state: &AppState, key: VariantKey) -> Result<Response, ApiError> {
    let video = VideoRef::from_cache_key(&key.stream).ok_or_else(|| {
        // A signed-in session's stream: its poller has stopped, and only the
        // stream link (with its sign-in) can start one again.
        ApiError::NotFound {
            error: "Not live",
            detail: "this live session has ended; open the stream link again".into(),
        }
    })?;
    let (cached, _) = state.service.info(&video, Purpose::Stream, None).await.map_err(ApiError::from)?;
    let offered = cached.info.formats.iter().any(|f| f.format_id == key.variant);
    if !cached.info.is_live || !offered {
        return Err(ApiError::NotFound {
            error: "Not live",
            detail: format!("{} is not live now with variant {}", video.route_key(), key.variant),
        });
    }
    let service = state.service.clone();
    let variant = key.variant.clone();
    playlist(state, &key, move || Arc::new(FormatSource::new(service, video, cached, &variant))).await
}
