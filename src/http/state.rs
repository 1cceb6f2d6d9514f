//! What every handler has: [`AppState`] (the server's parts, built by
//! `app`) and the [`Client`] the edge middleware found out.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::access::Access;
use super::error::ApiError;
use crate::cache::{CachedInfo, Entry, Tiered};
use crate::config::Config;
use crate::extract::Playlist;
use crate::hls::Signer;
use crate::manifest::Indexes;
use crate::metrics::Metrics;
use crate::platform::{PlaylistRef, VideoRef};
use crate::ratelimit::Limiter;
use crate::redis::RedisTier;
use crate::relay::Relay;
use crate::service::health::Health;
use crate::service::{Purpose, VideoService};

/// Who is asking, as the edge middleware found out; in every request's
/// extensions.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address (see `TRUSTED_PROXIES`).
    pub ip: std::net::IpAddr,
    /// A digest of the client's valid API key, when it sent one.
    pub key: Option<String>,
}

impl Client {
    /// The rate-limit identity: `key:{digest}` with a valid API key, else `ip:{ip}`.
    pub fn id(&self) -> String {
        match &self.key {
            Some(k) => format!("key:{k}"),
            None => format!("ip:{}", self.ip),
        }
    }
}

/// Everything a handler needs, behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The operators' status board (sampled in the background).
    pub board: Arc<crate::service::status::Board>,
    /// The settings the server started with.
    pub config: Config,
    /// Cache, single-flight and extraction.
    pub service: Arc<VideoService>,
    /// Every byte served through the server: the block store, ranged
    /// fetches, merges, and the pooled upstream client.
    pub relay: Relay,
    /// Signs and checks the HLS links of rewritten playlists, manifests'
    /// parts and live streams' links (shared with the live links' maker).
    pub signer: Arc<Signer>,
    /// Live streams: one shared session per variant being watched.
    pub live: crate::live::Live,
    /// The layout of DASH files, for the manifests reelay builds.
    pub indexes: Indexes,
    /// Manifests and media playlists as rendered, kept briefly per video
    /// (and extraction) and request.
    pub rendered: Tiered<Rendered>,
    /// Muxed HLS segments as ffmpeg made them, by video, plan and segment:
    /// each made once however many ask at once (single flight), kept under
    /// a byte budget.
    pub muxed: moka::future::Cache<String, bytes::Bytes>,
    /// Subtitle tracks converted to WebVTT.
    pub subtitles: crate::subtitles::SubtitleCache,
    /// `PROXY_COUNTRIES`, parsed once.
    pub proxy_countries: Vec<String>,
    /// Client addresses, IP lists and API keys.
    pub access: Access,
    /// The per-client request budget (`RATE_LIMIT_*`), when enabled.
    pub request_limit: Option<Limiter>,
    /// The shared tier, for the Redis gauge.
    pub redis: Option<RedisTier>,
    /// Requests being answered (until their head is sent), for load shedding.
    pub in_flight: AtomicU64,
    /// Counters for `/api/v2/stream/metrics` and `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Dependency readings for `/health`.
    pub health: Arc<Health>,
    /// Where request ids come from.
    pub request_ids: RequestIds,
}

/// A rendered manifest or media playlist; `None`: the video has no DASH
/// files to list.
pub struct Rendered(pub Option<Text>);

/// Text reelay rendered, with its entity tag (worked out once per render,
/// not once per hit).
#[derive(Clone)]
pub struct Text {
    pub body: bytes::Bytes,
    pub etag: axum::http::HeaderValue,
}

impl Text {
    pub fn new(body: impl Into<bytes::Bytes>) -> Self {
        let body = body.into();
        Text { etag: super::caching::etag_of(&body), body }
    }
}

impl Entry for Rendered {
    fn weight(&self) -> u32 {
        self.0.as_ref().map_or(64, |t| t.body.len() as u32 + 128)
    }
}

/// Rendered manifests: 16 MiB, each for 30 s (the links inside are signed
/// for a day; a new extraction is a new key).
pub fn rendered_cache() -> Tiered<Rendered> {
    use crate::cache::Settings;
    Tiered::new(Settings {
        capacity: 16 * 1024 * 1024,
        ttl: std::time::Duration::from_secs(30),
        redis: None,
        prefix: "",
        lock: None,
    })
}

/// Request ids: `{prefix}-{counter}`.
pub struct RequestIds {
    /// Random per process, so request ids from several instances differ.
    prefix: u32,
    /// Makes request ids unique within the process.
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds { prefix: uuid::Uuid::new_v4().as_u128() as u32, counter: AtomicU64::new(0) }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// The video's info for `client` (see [`VideoService::lookup`]).
    pub async fn lookup(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        client: &Client,
    ) -> Result<Arc<CachedInfo>, ApiError> {
        Ok(self.service.lookup(video, purpose, || client.id()).await?)
    }

    /// The playlist's entries for `client`.
    pub async fn lookup_playlist(&self, list: &PlaylistRef, client: &Client) -> Result<Arc<Playlist>, ApiError> {
        Ok(self.service.lookup_playlist(list, || client.id()).await?)
    }

    pub fn next_request_id(&self) -> String {
        let ids = &self.request_ids;
        format!("{:08x}-{:x}", ids.prefix, ids.counter.fetch_add(1, Ordering::Relaxed))
    }
}
