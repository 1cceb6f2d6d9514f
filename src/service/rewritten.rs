//! A source's own HLS through the server: its playlists fetched and
//! rewritten so that every URI is a signed link back to reelay
//! (`/api/v2/stream/hls/…`), and those links answered: a nested playlist
//! rewritten again, a segment, key or init section from the relay, keyed
//! by the video, the format and the segment's path so every viewer shares
//! it.

use std::sync::Arc;

use http::{HeaderMap, Method, header};

use super::Purpose;
use super::answer::{Answer, Keep, Text};
use super::error::ApiError;
use super::media::Media;
use crate::cache::now_unix;
use crate::egress::Route;
use crate::extract::{Format, Headers};
use crate::hls::{Grant, rewrite as hls};
use crate::platform::VideoRef;
use crate::relay::{Fetched, Fixed, Locator, ProxyError, Spec};
use crate::upstream::{Via, read_limited};

/// `Content-Type` of an HLS playlist.
pub const HLS_TYPE: &str = "application/vnd.apple.mpegurl";

/// How long the signed links of a rewritten playlist stay valid.
const LINK_TTL_SECS: i64 = 6 * 3600;

/// The largest playlist the server will rewrite.
const MAX_PLAYLIST_BYTES: usize = 4 * 1024 * 1024;

/// Why a playlist could not be answered rewritten.
pub enum PlaylistFailure {
    /// The origin refused or failed the request.
    Upstream(ProxyError),
    /// Its body could not be read (too big, cut).
    Body(ApiError),
}

impl PlaylistFailure {
    /// The client's error; `refused` says what the origin refused (403/410).
    pub fn into_api(self, refused: &str) -> ApiError {
        match self {
            PlaylistFailure::Upstream(e) => ApiError::from_upstream(e, refused),
            PlaylistFailure::Body(e) => e,
        }
    }
}

/// Fetches the playlist at `url` (the client's `headers` go upstream only
/// through the upstream client's allowlist) and answers it rewritten: each
/// URI becomes a signed link to `/api/v2/stream/hls/...` that fetches with
/// the format's headers, the way the video's extraction left.
pub async fn open_playlist(
    media: &Media,
    url: &str,
    via: &Via<'_>,
    headers: &HeaderMap,
    video_key: &str,
    format_id: &str,
) -> Result<Answer, PlaylistFailure> {
    let upstream: Fetched =
        media.relay.upstream().open(&Method::GET, url, via, headers).await.map_err(PlaylistFailure::Upstream)?;
    let base = upstream.url;
    let body = read_limited(upstream.response.into_body(), MAX_PLAYLIST_BYTES)
        .await
        .map_err(|detail| PlaylistFailure::Body(ApiError::BadGateway { error: "Upstream error", detail }))?;
    let text = String::from_utf8_lossy(&body);
    // Quantised, and sealed deterministically: a VOD playlist rewritten on
    // any instance within the hour names the same links.
    let expires = crate::hls::link_expiry(now_unix(), LINK_TTL_SECS);
    let route = VideoRef::from_cache_key(video_key).map(|v| v.route_query()).unwrap_or_default();
    let rewritten = hls::rewrite(&text, &base, |u, nested| {
        let grant = Grant { u: u.to_string(), v: video_key.to_owned(), f: format_id.to_owned(), e: expires, p: nested };
        format!("/api/v2/stream/hls/{}/{}?v={route}", media.signer.seal(&grant), link_name(u))
    });
    // A VOD playlist: public while its links keep half their life.
    let keep = Keep::Listing { expires, lifetime: LINK_TTL_SECS };
    Ok(Answer::text(HLS_TYPE, Text::new(rewritten), keep).of_format(format_id))
}

/// A source's own HLS playlist, rewritten to signed links (the manifest
/// route of a video that is HLS already).
pub async fn source_playlist(media: &Media, video: &VideoRef, f: &Format, route: &Route) -> Result<Answer, ApiError> {
    let via = Via { headers: &f.http_headers, route };
    open_playlist(media, &f.url, &via, &HeaderMap::new(), &video.cache_key(), &f.format_id)
        .await
        .map_err(|e| e.into_api("the playlist"))
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
/// again), or a segment, key or init section (from the relay).
pub async fn link(media: &Media, token: &str, method: &Method, headers: &HeaderMap) -> Result<Answer, ApiError> {
    let grant = media.signer.open(token, now_unix())?;
    let (format_headers, route) = headers_for(media, &grant).await;
    let via = Via { headers: &format_headers, route: &route };
    let url = url::Url::parse(&grant.u).map_err(|_| ApiError::Forbidden("the link names no URL".into()))?;
    let part = "this part of the stream";
    let rewritten = |answer: Answer| Answer { format: None, ..answer };
    if method == Method::GET && (grant.p || hls::is_playlist(None, &url)) {
        let opened = open_playlist(media, &grant.u, &via, headers, &grant.v, &grant.f).await;
        return opened.map(rewritten).map_err(|e| e.into_api(part));
    }
    let spec = Spec {
        key: format!("{}|{}|seg:{}", grant.v, grant.f, hls::segment_identity(&url)),
        source: Arc::new(Fixed(Locator {
            url: grant.u.clone(),
            headers: format_headers.clone(),
            route: route.clone(),
            sabr: None,
        })),
        chunk_size: None,
        transient: false,
    };
    let reply = media.relay.serve(spec, method, headers).await.map_err(|e| refused_part(e.into()))?;
    let content_type = reply.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if method == Method::GET && hls::is_playlist(content_type, &url) {
        // A playlist the tags did not announce: fetched and rewritten.
        let opened = open_playlist(media, &grant.u, &via, &HeaderMap::new(), &grant.v, &grant.f).await;
        return opened.map(rewritten).map_err(|e| e.into_api(part));
    }
    Ok(Answer { keep: Keep::Until(grant.e), ..Answer::relay(reply) })
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
async fn headers_for(media: &Media, grant: &Grant) -> (Headers, Route) {
    let Some(video) = VideoRef::from_cache_key(&grant.v) else { return Default::default() };
    match media.service.info(&video, Purpose::Info, None).await {
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
