//! Input read at the edge, before anything else runs: the video a request
//! names and the player profile it asks for; refused input is a 400.

use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use crate::platform::VideoRef;
use crate::select::{AudioLang, Player};

/// The video a request names: `/{platform}/{video_id}` in the path, or
/// `?url=` on the routes without path parameters. Refused input is a 400
/// before anything else runs. A stream or manifest request by `?url=` that
/// is not in its canonical form is sent there (`307`, see [`canonical`]).
pub struct Video(pub VideoRef);

/// Why a request's video was not taken: refused, or asked for in another
/// form than the canonical one.
pub enum NotTaken {
    Refused(ApiError),
    /// A `307` to this path and query.
    Elsewhere(String),
}

impl From<ApiError> for NotTaken {
    fn from(e: ApiError) -> Self {
        NotTaken::Refused(e)
    }
}

impl IntoResponse for NotTaken {
    fn into_response(self) -> Response {
        match self {
            NotTaken::Refused(e) => e.into_response(),
            NotTaken::Elsewhere(to) => match HeaderValue::from_str(&to) {
                Ok(location) => {
                    let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
                    let h = resp.headers_mut();
                    h.insert(header::LOCATION, location);
                    // Where a link's canonical form is does not change.
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
                    resp
                }
                Err(_) => {
                    ApiError::bad_request("Invalid video URL", "the link cannot be named in a redirect").into_response()
                }
            },
        }
    }
}

/// The routes a player opens by `?url=`, and the file name their
/// canonical form ends with (a manifest's).
/// (`direct` is not among them: it only redirects, and its extraction is
/// shared through Redis wherever it lands.)
const CANONICAL_ROUTES: [(&str, &str, &str); 4] = [
    ("/api/v2/stream", "/api/v2/stream", ""),
    ("/api/v2/stream/proxy", "/api/v2/stream/proxy", ""),
    ("/api/v2/stream/manifest/master.m3u8", "/api/v2/stream/manifest", "/master.m3u8"),
    ("/api/v2/stream/manifest/manifest.mpd", "/api/v2/stream/manifest", "/manifest.mpd"),
];

/// Where a `?url=` request of a stream or manifest route belongs, when it
/// is not there already: every request of one video must carry one routing
/// key in one form, so that a balancer hashing on it (deploy/nginx.conf,
/// the README's HAProxy and ingress configs) sends them all, and the parts
/// of the manifests they get (`v=`), to one instance. A link of a known
/// platform moves to the path form (`/api/v2/stream/proxy/twitch/{channel}`);
/// any other link to `?url=` spelled as reelay spells it in `v=`. Other
/// parameters are kept as sent; `None`: it is canonical already.
pub fn canonical(path: &str, query: &str, video: &VideoRef) -> Option<String> {
    let (_, prefix, file) = CANONICAL_ROUTES.iter().find(|(route, ..)| *route == path)?;
    let rest: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && p.split('=').next() != Some("url")).collect();
    match video {
        VideoRef::Known { .. } => {
            let mut to = format!("{prefix}/{}{file}", video.route_key());
            if !rest.is_empty() {
                to = format!("{to}?{}", rest.join("&"));
            }
            Some(to)
        }
        VideoRef::Generic { .. } => {
            let want = video.route_query();
            let sent: Vec<&str> = query.split('&').filter_map(|p| p.strip_prefix("url=")).collect();
            if sent == [want.as_str()] {
                return None;
            }
            let others = rest.iter().map(|p| format!("&{p}")).collect::<String>();
            Some(format!("{path}?url={want}{others}"))
        }
    }
}

#[derive(Deserialize)]
struct UrlParam {
    url: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Video {
    type Rejection = NotTaken;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, NotTaken> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("Invalid path", e.body_text()))?;
        let mut values = params.iter().map(|(_, v)| v);
        if let (Some(platform), Some(id)) = (values.next(), values.next()) {
            return Ok(Video(VideoRef::from_path(platform, id).map_err(ApiError::from)?));
        }
        let Query(param) = Query::<UrlParam>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request("Invalid query", e.body_text()))?;
        let video = match param.url {
            Some(url) => VideoRef::from_url(&url).map_err(ApiError::from)?,
            None => {
                let e = ApiError::bad_request("Missing url", "pass ?url=<video link>, or use /{platform}/{video_id}");
                return Err(e.into());
            }
        };
        match canonical(parts.uri.path(), parts.uri.query().unwrap_or(""), &video) {
            Some(to) => Err(NotTaken::Elsewhere(to)),
            None => Ok(Video(video)),
        }
    }
}

/// `player=`, or a 400 that lists the profiles.
pub fn parse_player(value: Option<&str>) -> Result<Player, ApiError> {
    value.unwrap_or("").parse().map_err(|e: String| ApiError::bad_request("Invalid player", e))
}

/// `lang=`, or a 400 that says what it takes.
pub fn parse_lang(value: Option<&str>) -> Result<Option<AudioLang>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|e: String| ApiError::bad_request("Invalid lang", e)),
    }
}
