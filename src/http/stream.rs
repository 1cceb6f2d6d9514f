//! Streams: `direct` redirects to a URL that plays by itself, `proxy`
//! relays the bytes.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::videos::Video;
use crate::app::AppState;
use crate::error::ApiError;
use crate::metrics::StreamGuard;
use crate::select::{Mode, Quality, StreamPlan, select};
use crate::service::Purpose;
use crate::stream::{ProxyError, proxy};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v2/stream/direct/{platform}/{video_id}", get(direct))
        .route("/api/v2/stream/direct", get(direct))
        .route("/api/v2/stream/proxy/{platform}/{video_id}", get(proxy))
        .route("/api/v2/stream/proxy", get(proxy))
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    quality: Option<String>,
}

impl StreamQuery {
    fn quality(&self) -> Result<Quality, ApiError> {
        self.quality
            .as_deref()
            .unwrap_or("best")
            .parse()
            .map_err(|e: String| ApiError::bad_request("Invalid quality", e))
    }
}

/// Header naming the format a stream was served from.
const FORMAT_HEADER: &str = "x-reelay-format";

async fn direct(
    State(state): State<AppState>,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let quality = q.quality()?;
    let cached = state.lookup(&video, Purpose::Stream).await?;
    let format = select(&cached.info, quality, Mode::Direct)?.primary();
    let location = HeaderValue::from_str(&format.url).map_err(|_| ApiError::BadGateway {
        error: "Unusable stream URL",
        detail: "the extractor returned a URL that is not valid in a header".into(),
    })?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static(FORMAT_HEADER),
                HeaderValue::from_str(&format.format_id).unwrap_or(HeaderValue::from_static("unknown")),
            ),
        ],
    )
        .into_response())
}

async fn proxy(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Video(video): Video,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let quality = q.quality()?;
    let cached = state.lookup(&video, Purpose::Stream).await?;
    let format = match select(&cached.info, quality, Mode::Proxy)? {
        StreamPlan::Single(f) => f,
        StreamPlan::Hls(_) => return Err(ApiError::NotImplemented("this stream is HLS, which the proxy does not relay yet; use the direct endpoint".into())),
        StreamPlan::Merge { .. } => {
            return Err(ApiError::NotImplemented(
                "this quality needs separate video and audio merged, which the proxy does not do yet; ask for quality=360p or use the direct endpoint".into(),
            ))
        }
    };
    let upstream =
        state.upstream.open(&method, &format.url, &format.http_headers, &headers).await.map_err(proxy_error)?;
    let mut resp = proxy::relay(upstream, StreamGuard::new(state.metrics.clone()));
    resp.headers_mut()
        .insert(FORMAT_HEADER, HeaderValue::from_str(&format.format_id).unwrap_or(HeaderValue::from_static("unknown")));
    Ok(resp)
}

fn proxy_error(e: ProxyError) -> ApiError {
    let detail = e.to_string();
    match e {
        ProxyError::Refused(_) => ApiError::Forbidden(detail),
        ProxyError::Expired(_) | ProxyError::Status(_) => ApiError::BadGateway { error: "Upstream error", detail },
        ProxyError::Connect(_) => ApiError::BadGateway { error: "Upstream unreachable", detail },
    }
}
