//! The HTTP layer: one module per route group, each with its `router()`, and
//! the middleware every request goes through.

mod middleware;
mod stream;
mod system;
mod videos;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};

use crate::app::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(system::router())
        .merge(videos::router())
        .merge(stream::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound { error: "Not found", detail: "no such endpoint; GET / lists them".into() }
}

/// An RFC 3339 UTC timestamp to the second, as the reference prints them.
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The success envelope around JSON that is already serialised, so cache
/// hits copy bytes instead of serialising the video again.
pub fn success(message: &str, data: &[u8]) -> Response {
    let ts = timestamp();
    let mut buf = BytesMut::with_capacity(data.len() + message.len() + ts.len() + 64);
    buf.put_slice(b"{\"success\":true,\"message\":");
    buf.put_slice(&serde_json::to_vec(message).expect("a string serialises"));
    buf.put_slice(b",\"data\":");
    buf.put_slice(data);
    buf.put_slice(b",\"timestamp\":\"");
    buf.put_slice(ts.as_bytes());
    buf.put_slice(b"\"}");
    json_response(StatusCode::OK, buf.freeze())
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
