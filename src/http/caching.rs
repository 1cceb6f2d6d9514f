//! What a shared cache in front (a CDN, the edge tier of
//! `deploy/edge-nginx.conf`) may keep, and for how long (RFC 9111): each
//! route says it with one of these helpers, and [`finish`] gives every
//! answer that said nothing `no-store` and answers `If-None-Match` for the
//! text reelay renders. Bytes from the relay answer their own conditionals
//! (`relay::range`), `If-Range` included.
//!
//! The rule: a signed link names bytes that cannot change, so its answer is
//! `public, immutable` until the link expires; a document listing such
//! links (a master, a media playlist, an MPD) is public while its links
//! still have half their life; a stable route whose answer can change (the
//! proxy file, the video's info) is public briefly; errors, redirects to
//! origin URLs, health, status and metrics are `no-store`. With API keys
//! required, the answers of keyed routes are `private`: a shared cache must
//! not hand them to clients without a key.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::service::now_unix;

/// How long the proxy route's file may be kept: the format it names may
/// change with a new extraction, rarely within an hour.
pub const STABLE_ROUTE_SECS: u64 = 3600;

/// How long a video's info may be kept: its stream URLs expire, and a
/// minute is what most players are from asking again.
pub const INFO_SECS: u64 = 60;

/// `public, max-age=<until expiry>, immutable`: the answer of a signed link
/// that expires at `expires` (Unix time).
pub fn immutable_until(h: &mut HeaderMap, expires: i64) {
    let secs = (expires - now_unix()).max(0);
    h.insert(header::CACHE_CONTROL, value(format!("public, max-age={secs}, immutable")));
}

/// A document whose links expire at `expires` and were written with
/// `lifetime` seconds to live: cacheable while they keep half of it, so a
/// player served from a cache still has hours to play them.
pub fn listing(h: &mut HeaderMap, expires: i64, lifetime: i64) {
    let secs = (expires - lifetime / 2 - now_unix()).max(0);
    h.insert(header::CACHE_CONTROL, value(format!("public, max-age={secs}")));
}

/// `public` (or, with `private`, only the client's own cache) for `secs`.
pub fn for_secs(h: &mut HeaderMap, secs: u64, private: bool) {
    let scope = if private { "private" } else { "public" };
    h.insert(header::CACHE_CONTROL, value(format!("{scope}, max-age={secs}")));
}

fn value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("digits and ASCII are a valid header")
}

/// The last word on an answer's caching, for every route: errors and
/// answers that said nothing are `no-store`; a `200` whose `ETag` the
/// request's `If-None-Match` names becomes a `304`.
pub fn finish(resp: Response<Body>, if_none_match: Option<&HeaderValue>) -> Response<Body> {
    let mut resp = resp;
    let status = resp.status();
    let h = resp.headers_mut();
    if status.is_client_error() || status.is_server_error() || !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    match if_none_match {
        Some(inm) if status == StatusCode::OK && names(inm, h.get(header::ETAG)) => not_modified(resp),
        _ => resp,
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2).
fn names(inm: &HeaderValue, etag: Option<&HeaderValue>) -> bool {
    let (Ok(inm), Some(Ok(etag))) = (inm.to_str(), etag.map(HeaderValue::to_str)) else { return false };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    inm.trim() == "*" || inm.split(',').any(|t| bare(t) == bare(etag))
}

/// A `304` carrying what RFC 9110 §15.4.5 says it must: the validator and
/// the caching headers, no body.
fn not_modified(resp: Response<Body>) -> Response<Body> {
    let (parts, _) = resp.into_parts();
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::NOT_MODIFIED;
    for name in [header::ETAG, header::CACHE_CONTROL, header::LAST_MODIFIED, header::VARY, header::EXPIRES] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        let etag = HeaderValue::from_static("\"t-abc\"");
        for inm in ["\"t-abc\"", "W/\"t-abc\"", "\"x\", \"t-abc\"", "*"] {
            assert!(names(&HeaderValue::from_static(inm), Some(&etag)), "{inm}");
        }
        assert!(!names(&HeaderValue::from_static("\"t-abd\""), Some(&etag)));
        assert!(!names(&HeaderValue::from_static("\"t-abc\""), None));
    }

    #[test]
    fn a_listing_keeps_half_its_links_life() {
        let mut h = HeaderMap::new();
        listing(&mut h, now_unix() + 1000, 1000);
        let cc = h[header::CACHE_CONTROL].to_str().unwrap().to_owned();
        let secs: i64 = cc.trim_start_matches("public, max-age=").parse().unwrap();
        assert!((499..=500).contains(&secs), "{cc}");
    }
}
