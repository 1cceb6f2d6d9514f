//! Building and running the server: `App::build(config)` binds (port 0
//! works) and starts the background tasks, `port()` reports, and
//! `run_until_stopped(shutdown)` serves until the shutdown future resolves.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::access::Access;
use crate::cache::{CachedInfo, RedisTier, TtlCache, VideoCache};
use crate::config::Config;
use crate::config::{CacheBackend, ExtractorKind};
use crate::error::ApiError;
use crate::extract::update::Updater;
use crate::extract::{ExtractError, Extractor, Playlist};
use crate::health::Health;
use crate::http::conn::Refusals;
use crate::manifest::Indexes;
use crate::metrics::Metrics;
use crate::platform::VideoRef;
use crate::playlist::PlaylistRef;
use crate::ratelimit::Limiter;
use crate::relay::{Relay, Upstream};
use crate::service::{Gate, Purpose, Settings, VideoService};
use crate::signin::SignIn;
use crate::stream::Signer;

/// Bytes of DASH file layouts kept for manifests: thousands of films.
const INDEX_BUDGET: u64 = 32 * 1024 * 1024;

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
    /// The settings the server started with.
    pub config: Config,
    /// Cache, single-flight and extraction.
    pub service: Arc<VideoService>,
    /// Every byte served through the server: the block store, ranged
    /// fetches, merges, and the pooled upstream client.
    pub relay: Relay,
    /// Signs and checks the HLS links of rewritten playlists.
    pub signer: Signer,
    /// The layout of DASH files, for the manifests reelay builds.
    pub indexes: Indexes,
    /// `PROXY_COUNTRIES`, parsed once.
    pub proxy_countries: Vec<String>,
    /// Client addresses, IP lists and API keys.
    pub access: Access,
    /// The per-client request budget (`RATE_LIMIT_*`), when enabled.
    pub request_limit: Option<Limiter>,
    /// The per-client budget of cache misses (`EXTRACT_RATE_LIMIT`).
    pub extract_limit: Option<Limiter>,
    /// The shared tier, for the Redis gauge.
    pub redis: Option<RedisTier>,
    /// Requests being answered (until their head is sent), for load shedding.
    pub in_flight: AtomicU64,
    /// Counters for `/api/v2/stream/metrics` and `/metrics`.
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
    /// The video's info for `client`, counted as a cache hit or miss; a
    /// miss spends the client's extraction budget.
    pub async fn lookup(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        client: &Client,
    ) -> Result<Arc<CachedInfo>, ApiError> {
        let id = self.extract_limit.as_ref().map(|_| client.id());
        let result = self.service.info(video, purpose, self.gate(id.as_deref())).await;
        let (cached, source) = result.inspect_err(|e| self.count_refusal(e))?;
        self.metrics.record_lookup(source.hit_tier());
        Ok(cached)
    }

    /// The playlist's entries for `client`, like [`AppState::lookup`].
    pub async fn lookup_playlist(&self, list: &PlaylistRef, client: &Client) -> Result<Arc<Playlist>, ApiError> {
        let id = self.extract_limit.as_ref().map(|_| client.id());
        let result = self.service.playlist(list, self.gate(id.as_deref())).await;
        let (playlist, source) = result.inspect_err(|e| self.count_refusal(e))?;
        self.metrics.record_lookup(source.hit_tier());
        Ok(playlist)
    }

    fn gate<'a>(&'a self, client_id: Option<&'a str>) -> Gate<'a> {
        self.extract_limit.as_ref().zip(client_id)
    }

    fn count_refusal(&self, e: &ExtractError) {
        if let ExtractError::RateLimited(_) = e {
            self.metrics.record_rate_limited(true);
        }
    }

    pub fn next_request_id(&self) -> String {
        format!("{:08x}-{:x}", self.id_prefix, self.id_counter.fetch_add(1, Ordering::Relaxed))
    }
}

pub struct App {
    listener: TcpListener,
    router: Router,
    /// For what is answered before the router: hyper's refusals.
    state: AppState,
    /// Redis upkeep and health refresh; stopped with the server.
    tasks: Vec<JoinHandle<()>>,
    /// `SHUTDOWN_GRACE`.
    grace: Duration,
}

/// The most a connection buffers: its read buffer, and the response body
/// queued for a client that reads slowly. Request heads larger than this are
/// refused by hyper itself (the API refuses targets and headers over 8 KiB
/// before that, with its JSON errors). See BENCHMARKS.md for the trade-off.
pub const SERVER_BUF: usize = 16 * 1024;

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Connections the kernel may queue before they are accepted. The usual
/// 128 overflows when a crowd opens a video at once (clients then wait a
/// second for their SYN to be sent again); the kernel caps it at somaxconn.
const BACKLOG: u32 = 4096;

/// Binds `addr` (the first address it resolves to that binds) with [`BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let redis = match config.cache_backend() {
            CacheBackend::Redis => {
                Some(RedisTier::new(&config.redis_url()).map_err(|e| format!("REDIS_URL / REDIS_HOST: {e}"))?)
            }
            CacheBackend::Memory => None,
        };
        let access = Access::from_config(&config)?;
        let metrics = Arc::new(Metrics::default());
        let egress = Arc::new(config.egress()?);
        let ytdlp_args = config.ytdlp_args()?;
        egress.check_block()?;
        let mut extractor = Extractor::new(
            config.ytdlp_path.clone(),
            config.extract_timeout(),
            config.extract_concurrency as usize,
            metrics.clone(),
        )
        .with_args(ytdlp_args.clone())
        .with_egress(egress.clone());
        if config.extractor == ExtractorKind::Worker {
            extractor = extractor.with_workers(config.ytdlp_python.clone());
        }
        extractor.check_args().await?;
        let extractor = Arc::new(extractor);
        let cache = VideoCache::new(
            redis.clone(),
            config.video_info_ttl(),
            config.extract_timeout(),
            Duration::from_secs(config.error_cache_ttl),
        );
        let playlists =
            TtlCache::new(redis.clone(), Duration::from_secs(config.cache_ttl), 64 * 1024 * 1024, |p: &Playlist| {
                (p.entries.len() * 512 + 1024).try_into().unwrap_or(u32::MAX)
            });
        let signin = SignIn::new(config.cookies_dir.clone(), Duration::from_secs(config.auth_status_ttl));
        let settings = Settings {
            allow_private: config.allow_private_networks,
            info_ttl: config.video_info_ttl(),
            stream_ttl: config.stream_url_ttl(),
        };
        let service = Arc::new(VideoService::new(cache, playlists, extractor.clone(), signin, settings));
        let window = Duration::from_secs(config.rate_limit_window.max(1));
        let request_limit = config
            .rate_limit_enabled
            .then(|| Limiter::new("req", config.rate_limit_max_requests, window, redis.clone()));
        let extract_limit = config.extract_rate_limit.map(|n| Limiter::new("ext", n, window, redis.clone()));
        let health = Arc::new(Health::new(redis.is_some()));
        let mut tasks = Vec::new();
        if let Some(r) = &redis {
            r.refresh().await;
            tasks.push(tokio::spawn(r.clone().maintain(Duration::from_secs(1))));
        }
        tasks.push(tokio::spawn(health.clone().refresh(redis.clone(), extractor.clone(), metrics.ytdlp.clone())));
        let updater = Updater {
            extractor,
            python: config.ytdlp_python.clone(),
            channel: config.ytdlp_update,
            interval: config.ytdlp_update_interval,
            canary: config.ytdlp_canary_url.clone(),
            dir: config.ytdlp_update_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("reelay-yt-dlp")),
            args: ytdlp_args,
            metrics: metrics.ytdlp.clone(),
            status: health.update.clone(),
            switched: health.ytdlp_changed.clone(),
        };
        tasks.push(tokio::spawn(updater.run()));

        let addr = format!("{}:{}", config.host, config.port);
        let listener = listen(&addr).await.map_err(|e| format!("cannot listen on {addr} (HOST, PORT): {e}"))?;
        let grace = Duration::from_secs(config.shutdown_grace);
        let resolve = config.upstream_resolve.clone().unwrap_or_default().0;
        let upstream = Arc::new(Upstream::new(config.allow_private_networks, resolve, egress));
        let relay = Relay::start(config.relay(), upstream, metrics.clone())
            .await
            .map_err(|e| format!("cannot start the relay: {e}"))?;
        let state = AppState(Arc::new(Inner {
            relay,
            signer: Signer::new(config.url_signing_key.as_deref()),
            indexes: Indexes::new(INDEX_BUDGET, std::time::Duration::from_secs(24 * 3600)),
            proxy_countries: config.proxy_countries(),
            config,
            service,
            access,
            request_limit,
            extract_limit,
            redis,
            metrics,
            health,
            in_flight: AtomicU64::new(0),
            id_prefix: uuid::Uuid::new_v4().as_u128() as u32,
            id_counter: AtomicU64::new(0),
        }));
        Ok(App { listener, router: crate::http::router(state.clone()), state, tasks, grace })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests
    /// and streams in flight finish for up to `SHUTDOWN_GRACE`, and returns
    /// (whatever is left is dropped with the runtime: bodies, ffmpeg groups).
    ///
    /// The accept loop is hyper's own rather than `axum::serve`, for one
    /// setting: the per-connection buffer. hyper otherwise queues up to
    /// ~400 KiB of body for a client that reads slowly; capped, a slow
    /// stream holds [`SERVER_BUF`] and a frame.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let App { listener, router, state, tasks, grace } = self;
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().max_buf_size(SERVER_BUF).timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Out of file descriptors and the like: pause rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = router.clone().map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        req
                    });
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(Refusals::new(stream, state.clone())),
                        TowerToHyperService::new(service),
                    );
                    let conn = graceful.watch(conn.into_owned());
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!(grace_s = grace.as_secs(), "shutting down; waiting for requests in flight");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
        }
        for t in tasks {
            t.abort();
        }
        Ok(())
    }
}
