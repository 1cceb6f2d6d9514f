//! How an [`ApiError`] is written: its status, `Retry-After` where it has
//! one, and an [`ErrorBody`] in the response's extensions, which the request
//! middleware (it knows the request id) turns into the JSON error shape:
//! `{success:false, error, detail, code, timestamp, request_id}`.

use axum::response::{IntoResponse, Response};

pub use crate::service::error::{ApiError, ErrorBody};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        if let ApiError::TooManyRequests { retry_after, .. } | ApiError::Blocked { retry_after, .. } = &self {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
        }
        if let ApiError::RequestTimeout(_) = &self {
            // What is left of the body may still arrive; the connection
            // cannot be reused.
            resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        resp.extensions_mut().insert(self.body());
        resp
    }
}
