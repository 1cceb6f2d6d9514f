//! cobalt's API under `/cobalt/` (its instance URL for reelay is
//! `https://host/cobalt`): `GET` the instance info, `POST` a link and get a
//! `tunnel`, `redirect`, `picker`, `local-processing` or `error` in cobalt's
//! shapes, and `GET /cobalt/tunnel/{token}` for the file a tunnel names —
//! reelay's own proxy route underneath (the relay, the merge, a transcode),
//! saved under cobalt's file name.
//!
//! The request schema, the codes and the shapes are `crate::cobalt`'s;
//! this module reads the headers, checks the key, looks the video up and
//! maps reelay's refusals onto cobalt's codes.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::access::{KeyCheck, key_id};
use super::error::ApiError;
use super::reply::write;
use super::state::{AppState, Client};
use crate::cobalt::plays::{self, Refused, service};
use crate::cobalt::{Answer, CobaltRequest, Code, Context, Git, Instance, InstanceInfo};
use crate::platform::{InputError, Platform, VideoRef};
use crate::service::Purpose;

/// The instance info and the processing route (under `REQUEST_TIMEOUT`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/cobalt", get(instance).post(process)), ("/cobalt/", get(instance).post(process))]
}

/// The tunnels: streams, with no deadline.
pub fn tunnel_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/cobalt/tunnel/{token}", get(tunnel))]
}

/// `GET /cobalt/`: cobalt answers it to anyone, unlimited.
pub fn is_instance_info(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(path, "/cobalt" | "/cobalt/")
}

/// The 429 of cobalt's rate limit, with the window in its context.
pub fn rate_exceeded(window_secs: u64, retry_after: u64) -> Response {
    let mut resp = answer(StatusCode::TOO_MANY_REQUESTS, &Answer::error(Code::RateExceeded, Some(limit(window_secs))));
    resp.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
    resp
}

fn limit(secs: u64) -> Context {
    Context { limit: Some(secs), service: None }
}

fn answer(status: StatusCode, body: &Answer) -> Response {
    let mut resp = (status, serde_json::to_vec(body).expect("plain JSON")).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// An error answer: cobalt answers them all 400.
fn fail(code: Code, context: Option<Context>) -> Response {
    answer(StatusCode::BAD_REQUEST, &Answer::error(code, context))
}

/// The address clients reach this server at: `PUBLIC_URL`, else the
/// request's `Host` (and a trusted proxy's `X-Forwarded-Proto`/`-Host`).
fn public_base(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let text =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim());
    let trusted = state.access.is_trusted(peer.ip());
    let proto = trusted.then(|| text("x-forwarded-proto")).flatten().filter(|p| matches!(*p, "http" | "https"));
    let host = trusted
        .then(|| text("x-forwarded-host"))
        .flatten()
        .or_else(|| text("host"))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .map_or_else(|| peer.to_string(), str::to_owned);
    format!("{}://{host}", proto.unwrap_or("http"))
}

/// `GET /cobalt/`.
async fn instance(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let started = state.health.started_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let info = InstanceInfo {
        cobalt: Instance {
            version: crate::cobalt::API_VERSION,
            url: format!("{}/cobalt/", public_base(&state, peer, &headers)),
            start_time: started.to_string(),
            services: Platform::NAMES.iter().copied().filter(|n| *n != "x").collect(),
        },
        git: Git { commit: option_env!("REELAY_GIT_COMMIT").unwrap_or("unknown"), branch: "main", remote: "reelay" },
    };
    let mut resp = (StatusCode::OK, serde_json::to_vec(&info).expect("plain JSON")).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// cobalt's check of `Accept` and `Content-Type`.
fn is_json(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        matches!(v.to_ascii_lowercase().as_str(), "application/json" | "application/json; charset=utf-8")
    })
}

/// `POST /cobalt/`.
async fn process(
    State(state): State<AppState>,
    Extension(mut client): Extension<Client>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_json(&headers, header::ACCEPT) {
        return fail(Code::HeaderAccept, None);
    }
    if !is_json(&headers, header::CONTENT_TYPE) {
        return fail(Code::HeaderContentType, None);
    }
    let key = super::access::presented_key(&headers, None);
    match state.access.check_key(key.as_deref()) {
        KeyCheck::Missing => return fail(Code::AuthKeyMissing, None),
        KeyCheck::Wrong => return fail(Code::AuthKeyNotFound, None),
        KeyCheck::Valid => client.key = Some(key_id(key.as_deref().unwrap_or_default())),
        KeyCheck::Open => {}
    }
    let req = match CobaltRequest::parse(&body) {
        Ok(req) => req,
        Err(e) => return fail(e.code(), None),
    };
    let video = match VideoRef::from_url(&req.url) {
        Ok(v) => v,
        Err(InputError::InvalidId { platform, .. }) => {
            return fail(Code::LinkUnsupported, Some(service(platform.as_str())));
        }
        Err(_) => return fail(Code::LinkInvalid, None),
    };
    let name = video.platform_name();
    let base = public_base(&state, peer, &headers);
    let answered = match state.media.lookup(&video, Purpose::Stream, || client.id()).await {
        Ok(cached) => plays::respond(&state.media, &video, &cached, &req, &base).await,
        Err(ApiError::NotFound { detail, .. }) if detail.contains("is a playlist") => {
            plays::picker(&state.media, || client.id(), &video, &req, &base).await
        }
        Err(e) => Err(Refused::Api(e)),
    };
    match answered {
        Ok(a) => answer(StatusCode::OK, &a),
        Err(Refused::Api(e)) => refusal(&state, &e, name),
        Err(Refused::Code(code, context)) => fail(code, context),
    }
}

/// reelay's refusal as cobalt's code.
fn refusal(state: &AppState, e: &ApiError, platform: &str) -> Response {
    let svc = || Some(service(platform));
    match e {
        ApiError::NotFound { detail, .. } if detail.to_ascii_lowercase().contains("private video") => {
            fail(Code::ContentPrivate, svc())
        }
        ApiError::NotFound { error, .. } if *error == "Video unavailable" => fail(Code::ContentUnavailable, svc()),
        ApiError::NotFound { error, .. } if error.contains("format") || error.contains("Language") => {
            fail(Code::FetchEmpty, svc())
        }
        ApiError::NotFound { .. } => fail(Code::ContentUnavailable, svc()),
        ApiError::SignInRequired(d) if d.to_ascii_lowercase().contains("private") => fail(Code::ContentPrivate, svc()),
        ApiError::SignInRequired(_) => fail(Code::ContentAge, svc()),
        ApiError::GeoBlocked(_) => fail(Code::ContentRegion, svc()),
        ApiError::Blocked { .. } if platform == "youtube" => fail(Code::YoutubeLogin, svc()),
        ApiError::Blocked { .. } => fail(Code::FetchRate, svc()),
        ApiError::TooManyRequests { retry_after, .. } => {
            let mut resp = answer(
                StatusCode::TOO_MANY_REQUESTS,
                &Answer::error(Code::RateExceeded, Some(limit(state.config.rate_limit_window))),
            );
            resp.headers_mut().insert(header::RETRY_AFTER, (*retry_after).into());
            resp
        }
        ApiError::Conflict(_) | ApiError::Unprocessable { .. } => fail(Code::FetchEmpty, svc()),
        ApiError::BadRequest { .. } | ApiError::Forbidden(_) => fail(Code::LinkInvalid, None),
        ApiError::Internal(_) => fail(Code::Generic, None),
        _ => fail(Code::FetchFail, svc()),
    }
}

/// `GET /cobalt/tunnel/{token}`: the file a `POST` answered, as an
/// attachment under its name; or one part of a `local-processing` answer.
async fn tunnel(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    Ok(write(plays::tunnel(&state.media, client.id(), &token, method, headers).await?))
}
