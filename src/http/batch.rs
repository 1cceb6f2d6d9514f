//! `POST /api/v2/videos/batch`: many lookups in one request (the reference's
//! BatchRequest / BatchResponse). Items resolve concurrently within a bound,
//! share the cache and single-flight with single lookups, and one bad item
//! never fails the batch.

use std::time::Instant;

use axum::Extension;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Json, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::reply::json_response;
use super::state::{AppState, Client};
use crate::http::error::ApiError;
use crate::platform::VideoRef;
use crate::select::Quality;
use crate::service::Purpose;

/// Most items in one batch.
pub const MAX_ITEMS: usize = 50;
/// Most lookups of one batch running at once.
pub const MAX_CONCURRENT: usize = 8;
/// Largest request body.
const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/videos/batch", post(batch).layer(DefaultBodyLimit::max(MAX_BODY)))]
}

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    /// 1 to 50 videos.
    videos: Vec<BatchItem>,
    /// Lookups at once, 1 to 8 (default 4).
    max_concurrent: Option<usize>,
}

#[derive(Deserialize, ToSchema)]
pub struct BatchItem {
    /// Any video link.
    url: String,
    /// Checked like the stream routes' `quality` (the info holds every quality).
    quality: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    success: bool,
    total: usize,
    completed: usize,
    failed: usize,
    /// In the order of the request.
    results: Vec<BatchResult>,
    duration_seconds: f64,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    url: String,
    success: bool,
    /// The same object as `data` of `GET /api/v2/videos/...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::service::ApiVideo>)]
    video_info: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn batch(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Json(req) = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!("the body is over {} KiB", MAX_BODY / 1024)),
        _ => ApiError::bad_request("Invalid batch", e.body_text()),
    })?;
    if req.videos.is_empty() || req.videos.len() > MAX_ITEMS {
        return Err(ApiError::bad_request("Invalid batch", format!("send 1 to {MAX_ITEMS} videos")));
    }
    let concurrent = req.max_concurrent.unwrap_or(4).clamp(1, MAX_CONCURRENT);
    let (state, client) = (&state, &client);
    let results: Vec<BatchResult> = futures_util::stream::iter(req.videos)
        .map(|item| async move {
            let outcome = resolve(state, client, &item).await;
            match outcome {
                Ok(info) => BatchResult { url: item.url, success: true, video_info: Some(info), error: None },
                Err(e) => {
                    BatchResult { url: item.url, success: false, video_info: None, error: Some(e.client_message()) }
                }
            }
        })
        .buffered(concurrent)
        .collect()
        .await;
    let completed = results.iter().filter(|r| r.success).count();
    let body = BatchResponse {
        success: completed > 0,
        total: results.len(),
        completed,
        failed: results.len() - completed,
        results,
        duration_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    Ok(json_response(StatusCode::OK, serde_json::to_vec(&body).expect("serialises").into()))
}

async fn resolve(state: &AppState, client: &Client, item: &BatchItem) -> Result<Value, ApiError> {
    if let Some(q) = &item.quality {
        q.parse::<Quality>().map_err(|e| ApiError::bad_request("Invalid quality", e))?;
    }
    let video = VideoRef::from_url(&item.url)?;
    let cached = state.media.lookup(&video, Purpose::Info, || client.id()).await?;
    serde_json::from_slice(&cached.api_json).map_err(|e| ApiError::Internal(e.to_string()))
}
