//! `ApiError`: every failure a client can see, with its status, and how
//! each lower layer's failure becomes one. The use cases return it; `http`
//! writes it (`http::error`: the status, `Retry-After`, and the JSON error
//! shape `{success:false, error, detail, code, timestamp, request_id}`).
//! Internal errors are logged in full and reach the client as a plain message.

use std::sync::Arc;

use http::StatusCode;

use crate::extract::ExtractError;
use crate::hls::SignError;
use crate::manifest::IndexFailure;
use crate::platform::InputError;
use crate::relay::RelayError;
use crate::select::SelectError;
use crate::service::play::PlayError;
use crate::subtitles::SubtitleError;
use crate::upstream::ProxyError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 400: input refused at the edge (platform, id, URL, query).
    #[error("{error}")]
    BadRequest { error: &'static str, detail: String },
    /// 401: an API key is required and none was sent.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the request names something the server will not fetch, or the
    /// client (address, key) may not use the service.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route, or the video does not exist or has no such stream.
    #[error("{error}")]
    NotFound { error: &'static str, detail: String },
    /// 408: the client did not send the body it announced in time
    /// (`REQUEST_BODY_TIMEOUT`); the connection is closed after it.
    #[error("{0}")]
    RequestTimeout(String),
    /// 403: the video needs a signed-in account (age, members-only).
    #[error("{0}")]
    SignInRequired(String),
    /// 451: the video is not available in the server's country.
    #[error("{0}")]
    GeoBlocked(String),
    /// 503: the platform refused the server itself (a bot check, HTTP 429);
    /// `Retry-After` says when another try may fare better.
    #[error("{detail}")]
    Blocked { retry_after: u64, detail: String },
    /// 409: the request cannot be met as asked (a strict direct request
    /// whose quality needs the proxy); the detail says what to ask instead.
    #[error("{0}")]
    Conflict(String),
    /// 422: the request is well formed but this video cannot give it (a
    /// clip of a video that is not separate DASH video and audio).
    #[error("{detail}")]
    Unprocessable { error: &'static str, detail: String },
    /// 413: a request body over its limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429: a rate limit; `Retry-After` says when to come back.
    #[error("{detail}")]
    TooManyRequests { retry_after: u64, detail: String },
    /// 501: a stream kind this server cannot serve yet.
    #[error("{0}")]
    NotImplemented(String),
    /// 502: the extractor or the origin failed.
    #[error("{error}")]
    BadGateway { error: &'static str, detail: String },
    /// 503: a dependency (the extractor) cannot run.
    #[error("{0}")]
    Unavailable(String),
    /// 504: the extractor or the origin took too long.
    #[error("{0}")]
    Timeout(String),
    /// 500: a bug; the detail is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

/// The parts of the JSON error known where the error is made; the
/// middleware adds `code`, `timestamp` and `request_id`.
#[derive(Debug, Clone)]
pub struct ErrorBody {
    pub error: String,
    pub detail: String,
}

impl ApiError {
    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { error, detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::SignInRequired(_) => StatusCode::FORBIDDEN,
            ApiError::GeoBlocked(_) => StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            ApiError::Blocked { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `error: detail`, as a batch item reports it.
    pub fn client_message(&self) -> String {
        let b = self.body();
        format!("{}: {}", b.error, b.detail)
    }

    /// The error's words, as the JSON error shape carries them.
    pub fn body(&self) -> ErrorBody {
        let (error, detail) = match self {
            ApiError::BadRequest { error, detail }
            | ApiError::NotFound { error, detail }
            | ApiError::Unprocessable { error, detail }
            | ApiError::BadGateway { error, detail } => (error.to_string(), detail.clone()),
            ApiError::Unauthorized(d) => ("API key required".into(), d.clone()),
            ApiError::Forbidden(d) => ("Forbidden".into(), d.clone()),
            ApiError::RequestTimeout(d) => ("Request body timed out".into(), d.clone()),
            ApiError::SignInRequired(d) => ("Sign-in required".into(), d.clone()),
            ApiError::GeoBlocked(d) => ("Not available in this country".into(), d.clone()),
            ApiError::Blocked { detail, .. } => ("Blocked by the platform".into(), detail.clone()),
            ApiError::Conflict(d) => ("Needs the proxy".into(), d.clone()),
            ApiError::PayloadTooLarge(d) => ("Request too large".into(), d.clone()),
            ApiError::TooManyRequests { detail, .. } => ("Rate limit exceeded".into(), detail.clone()),
            ApiError::NotImplemented(d) => ("Not supported yet".into(), d.clone()),
            ApiError::Unavailable(d) => ("Service unavailable".into(), d.clone()),
            ApiError::Timeout(d) => ("Timed out".into(), d.clone()),
            ApiError::Internal(d) => {
                tracing::error!(error = %d, "internal error");
                ("Internal server error".into(), "something went wrong on our side".into())
            }
        };
        ErrorBody { error, detail }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::BadRequest {
            error: match e {
                InputError::UnsupportedPlatform(_) => "Unsupported platform",
                InputError::InvalidId { .. } => "Invalid video id",
                InputError::InvalidUrl(_) => "Invalid video URL",
                InputError::InvalidPlaylistId(_) => "Invalid playlist id",
                InputError::InvalidPlaylistUrl(_) => "Invalid playlist URL",
            },
            detail: e.detail(),
        }
    }
}

/// Seconds a client is told to wait after the platform's bot check: the
/// platform's blocks of an address last minutes, not seconds.
const BOT_CHECK_RETRY_AFTER: u64 = 300;

impl From<Arc<ExtractError>> for ApiError {
    fn from(e: Arc<ExtractError>) -> Self {
        let detail = e.to_string();
        match &*e {
            ExtractError::Unavailable(_) => ApiError::NotFound { error: "Video unavailable", detail },
            ExtractError::NotLive(_) => ApiError::NotFound { error: "Not live", detail },
            ExtractError::BotCheck(_) => ApiError::Blocked { retry_after: BOT_CHECK_RETRY_AFTER, detail },
            ExtractError::SignInRequired(_) => ApiError::SignInRequired(detail),
            ExtractError::GeoBlocked(_) => ApiError::GeoBlocked(detail),
            ExtractError::Failed(_) => ApiError::BadGateway { error: "Extraction failed", detail },
            ExtractError::Timeout(_) => ApiError::Timeout(detail),
            ExtractError::NotRunnable(_) => ApiError::Unavailable(detail),
            ExtractError::SabrOnly(_) => ApiError::NotImplemented(detail),
            ExtractError::Refused(_) => ApiError::Forbidden(detail),
            ExtractError::Unresolvable(_) => ApiError::BadGateway { error: "Host not found", detail },
            ExtractError::RateLimited(secs) => ApiError::TooManyRequests { retry_after: *secs, detail },
            // Every way out met a bot check lately: still the platform's block.
            ExtractError::EgressCooling(secs) => ApiError::Blocked { retry_after: *secs, detail },
        }
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        let detail = e.to_string();
        match e {
            RelayError::Refused(_) => ApiError::Forbidden(detail),
            // The relay's source for a format is the extraction: its refusal.
            RelayError::Source(e) => match e.downcast_ref::<ExtractError>() {
                Some(e) => ApiError::from(Arc::new(e.clone())),
                None => ApiError::BadGateway { error: "Upstream error", detail },
            },
            RelayError::Spawn(_) => ApiError::Unavailable(detail),
            RelayError::Unreachable(_) => ApiError::BadGateway { error: "Upstream unreachable", detail },
            RelayError::Ended(_) => ApiError::NotFound { error: "Not live", detail },
            RelayError::Sabr(_) => ApiError::BadGateway { error: "SABR stream failed", detail },
            RelayError::Expired
            | RelayError::Status(_)
            | RelayError::Changed
            | RelayError::Gone(_)
            | RelayError::MergeFailed => ApiError::BadGateway { error: "Upstream error", detail },
        }
    }
}

impl ApiError {
    /// An origin's refusal of a request the server made itself (a playlist,
    /// a thumbnail), where no re-extraction follows: `refused` says what was
    /// refused (403/410).
    pub fn from_upstream(e: ProxyError, refused: &str) -> ApiError {
        match e {
            ProxyError::Expired(_) => {
                ApiError::BadGateway { error: "Upstream error", detail: format!("the origin refused {refused}") }
            }
            other => ApiError::from(RelayError::from(other)),
        }
    }
}

impl From<Arc<IndexFailure>> for ApiError {
    fn from(e: Arc<IndexFailure>) -> Self {
        match &*e {
            IndexFailure::Relay(r) => ApiError::from(r.clone()),
            IndexFailure::NotDash(why) => ApiError::BadGateway { error: "Upstream error", detail: why.clone() },
        }
    }
}

impl From<PlayError> for ApiError {
    fn from(e: PlayError) -> Self {
        match e {
            PlayError::NoFormatForPlayer(player) => ApiError::NotFound {
                error: "No playable format",
                detail: format!("this video has no format the {player:?} player profile can play").to_lowercase(),
            },
            PlayError::Select(e) => e.into(),
            PlayError::NeedsProxy(what) => ApiError::Conflict(what),
            PlayError::NoLanguage(detail) => ApiError::NotFound { error: "Language unavailable", detail },
            PlayError::Unproducible(what) => ApiError::Conflict(what),
        }
    }
}

impl From<SelectError> for ApiError {
    fn from(e: SelectError) -> Self {
        let SelectError::NoFormat(detail) = e;
        ApiError::NotFound { error: "No playable format", detail }
    }
}

impl From<SubtitleError> for ApiError {
    fn from(e: SubtitleError) -> Self {
        match e {
            SubtitleError::NoTrack(detail) => ApiError::NotFound { error: "Subtitles unavailable", detail },
            SubtitleError::Upstream(e) => ApiError::from_upstream(e, "the subtitles"),
            SubtitleError::Unreadable(detail) => ApiError::BadGateway { error: "Upstream error", detail },
        }
    }
}

/// A signed link that is forged, damaged or expired.
impl From<SignError> for ApiError {
    fn from(e: SignError) -> Self {
        ApiError::Forbidden(e.to_string())
    }
}
