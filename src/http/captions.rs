//! `GET /api/v2/subtitles/{platform}/{video_id}?lang=&auto=` (and `?url=`):
//! a video's subtitle track as WebVTT.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::edge::Video;
use super::error::ApiError;
use super::state::{AppState, Client};
use crate::service::Purpose;
use crate::subtitles::pick;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/api/v2/subtitles/{platform}/{video_id}", get(subtitles)), ("/api/v2/subtitles", get(subtitles))]
}

#[derive(Deserialize)]
struct SubtitleQuery {
    /// The track's language (`en`, `pt-BR`); any when absent.
    lang: Option<String>,
    /// `true`: the automatic captions; `false`: the uploader's only.
    auto: Option<bool>,
}

async fn subtitles(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Video(video): Video,
    Query(q): Query<SubtitleQuery>,
) -> Result<Response, ApiError> {
    if q.lang
        .as_deref()
        .is_some_and(|l| l.is_empty() || l.len() > 35 || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(ApiError::bad_request("Invalid lang", "lang is a language code such as en, de or pt-BR"));
    }
    let cached = state.media.lookup(&video, Purpose::Info, || client.id()).await?;
    let track = pick(&cached.info, q.lang.as_deref(), q.auto)?;
    let vtt = state.media.webvtt(&cached, track).await?;
    let mut resp = Response::new(axum::body::Body::from(vtt));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/vtt; charset=utf-8"));
    // A track changes as rarely as the video; players and caches may keep it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(resp)
}
