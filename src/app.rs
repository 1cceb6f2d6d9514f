//! Building and running the server: `App::build(config)` binds (port 0
//! works) and starts the background tasks, `port()` reports, and
//! `run_until_stopped(shutdown)` serves until the shutdown future resolves.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cache::{CachedInfo, RedisTier, VideoCache};
use crate::config::CacheBackend;
use crate::config::Config;
use crate::error::ApiError;
use crate::extract::Extractor;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::platform::VideoRef;
use crate::service::{Purpose, VideoService};
use crate::stream::{Remuxer, Signer, Upstream};

/// Everything a handler needs, behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The settings the server started with.
    pub config: Config,
    /// Cache, single-flight and extraction.
    pub service: VideoService,
    /// The pooled client the proxy fetches with.
    pub upstream: Upstream,
    /// Signs and checks the HLS links of rewritten playlists.
    pub signer: Signer,
    /// Runs ffmpeg for merged streams.
    pub remuxer: Remuxer,
    /// `PROXY_COUNTRIES`, parsed once.
    pub proxy_countries: Vec<String>,
    /// Counters for `/api/v2/stream/metrics`.
    pub metrics: Arc<Metrics>,
    /// Dependency readings for `/health`.
    pub health: Arc<Health>,
    /// Random per process, so request ids from several instances differ.
    id_prefix: u32,
    /// Makes request ids unique within the process.
    id_counter: AtomicU64,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The video's info, counted as a cache hit or miss.
    pub async fn lookup(&self, video: &VideoRef, purpose: Purpose) -> Result<Arc<CachedInfo>, ApiError> {
        let (cached, source) = self.service.info(video, purpose).await?;
        self.metrics.record_lookup(source.is_hit());
        Ok(cached)
    }

    pub fn next_request_id(&self) -> String {
        format!("{:08x}-{:x}", self.id_prefix, self.id_counter.fetch_add(1, Ordering::Relaxed))
    }
}

pub struct App {
    listener: TcpListener,
    router: Router,
    /// Redis upkeep and health refresh; stopped with the server.
    tasks: Vec<JoinHandle<()>>,
    /// `SHUTDOWN_GRACE`.
    grace: Duration,
}

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let redis = match config.cache_backend() {
            CacheBackend::Redis => {
                Some(RedisTier::new(&config.redis_url()).map_err(|e| format!("REDIS_URL / REDIS_HOST: {e}"))?)
            }
            CacheBackend::Memory => None,
        };
        let extractor = Arc::new(Extractor::new(
            config.ytdlp_path.clone(),
            config.extract_timeout(),
            config.extract_concurrency as usize,
        ));
        let cache = VideoCache::new(redis.clone(), config.video_info_ttl(), config.extract_timeout());
        let service = VideoService::new(
            cache,
            Extractor::new(config.ytdlp_path.clone(), config.extract_timeout(), config.extract_concurrency as usize),
            config.allow_private_networks,
            config.video_info_ttl(),
            config.stream_url_ttl(),
        );
        let health = Arc::new(Health::new(redis.is_some()));
        let mut tasks = Vec::new();
        if let Some(r) = &redis {
            r.refresh().await;
            tasks.push(tokio::spawn(r.clone().maintain(Duration::from_secs(1))));
        }
        tasks.push(tokio::spawn(health.clone().refresh(redis, extractor)));

        let addr = format!("{}:{}", config.host, config.port);
        let listener =
            TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr} (HOST, PORT): {e}"))?;
        let grace = Duration::from_secs(config.shutdown_grace);
        let state = AppState(Arc::new(Inner {
            upstream: Upstream::new(config.allow_private_networks),
            signer: Signer::new(config.url_signing_key.as_deref()),
            remuxer: Remuxer::new(config.ffmpeg_path.clone()),
            proxy_countries: config.proxy_countries(),
            config,
            service,
            metrics: Arc::new(Metrics::default()),
            health,
            id_prefix: uuid::Uuid::new_v4().as_u128() as u32,
            id_counter: AtomicU64::new(0),
        }));
        Ok(App { listener, router: crate::http::router(state), tasks, grace })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests
    /// in flight finish for up to `SHUTDOWN_GRACE`, and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let App { listener, router, tasks, grace } = self;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stopping_tx.send(());
            })
            .into_future();
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tracing::info!(grace_s = grace.as_secs(), "shutting down; waiting for requests in flight");
                tokio::time::sleep(grace).await;
                tracing::warn!("shutdown grace period over; closing remaining connections");
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            r = server => r,
            () = deadline => Ok(()),
        };
        for t in tasks {
            t.abort();
        }
        result
    }
}
