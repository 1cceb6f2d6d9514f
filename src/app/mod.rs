//! The composition root: `App::build(config)` makes every part from the one
//! `Config` (caches, extractor, relay, limits, health), starts the background
//! tasks, binds (port 0 works) and reports `port()`; `run_until_stopped`
//! serves until the shutdown future resolves.
//!
//! Owns: start-up and shutdown, and the threads that serve connections
//! ([`workers`]). May import every module; none imports it.

mod workers;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use workers::Workers;

use crate::cache::VideoCache;
use crate::config::Config;
use crate::config::{CacheBackend, ExtractorKind};
use crate::extract::Extractor;
use crate::extract::update::Updater;
use crate::hls::Signer;
use crate::http::access::Access;
use crate::http::conn::{Refusals, SERVER_BUF};
use crate::http::{AppState, Cors, Inner, RequestIds};
use crate::manifest::Indexes;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::redis::RedisTier;
use crate::relay::{Relay, Upstream};
use crate::service::health::Health;
use crate::service::media::Media;
use crate::service::signin::SignIn;
use crate::service::{Settings, VideoService};

/// Bytes of DASH file layouts kept for manifests: thousands of films.
const INDEX_BUDGET: u64 = 32 * 1024 * 1024;

/// Bytes of muxed HLS segments kept (a few hundred segments of 720p).
const MUXED_BUDGET: u64 = 256 * 1024 * 1024;

pub struct App {
    listener: TcpListener,
    /// The threads connections are served on.
    workers: Workers,
    service: crate::http::Service,
    /// For what is answered before the router: hyper's refusals.
    state: AppState,
    /// Redis upkeep and health refresh; stopped with the server.
    tasks: Vec<JoinHandle<()>>,
    /// `SHUTDOWN_GRACE`.
    grace: Duration,
}

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
        .with_sabr(config.youtube_sabr)
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
        let playlists = crate::cache::playlists(redis.clone(), Duration::from_secs(config.cache_ttl));
        let signin = SignIn::new(config.cookies_dir.clone(), Duration::from_secs(config.auth_status_ttl));
        let window = Duration::from_secs(config.rate_limit_window.max(1));
        let settings = Settings {
            allow_private: config.allow_private_networks,
            info_ttl: config.video_info_ttl(),
            stream_ttl: config.stream_url_ttl(),
            extract_limit: config.extract_rate_limit.map(|n| Limiter::new("ext", n, window, redis.clone())),
            metrics: metrics.clone(),
        };
        let service = Arc::new(VideoService::new(cache, playlists, extractor.clone(), signin, settings));
        let request_limit = config
            .rate_limit_enabled
            .then(|| Limiter::new("req", config.rate_limit_max_requests, window, redis.clone()));
        let mut tasks = Vec::new();
        if let Some(r) = &redis {
            r.refresh().await;
            tasks.push(tokio::spawn(r.clone().maintain(Duration::from_secs(1))));
        }
        // After Redis's first check, so health says what it found from the
        // first request on.
        let health = Arc::new(Health::new(redis.as_ref()));
        tasks.push(tokio::spawn(health.clone().refresh(redis.clone(), extractor.clone(), metrics.ytdlp.clone())));
        if let Some(channel) = config.ytdlp_update.channel() {
            let updater = Updater {
                extractor,
                python: config.ytdlp_python.clone(),
                channel,
                interval: config.ytdlp_update_interval,
                canary: config.ytdlp_canary_url.clone(),
                dir: config.ytdlp_update_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("reelay-yt-dlp")),
                args: ytdlp_args,
                metrics: metrics.ytdlp.clone(),
                status: health.update.clone(),
                switched: health.ytdlp_changed.clone(),
            };
            tasks.push(tokio::spawn(updater.run()));
        }

        let workers = Workers::start(config.workers).map_err(|e| format!("cannot start the workers (WORKERS): {e}"))?;
        let mut runtimes = workers.handles();
        runtimes.push(tokio::runtime::Handle::current());
        let addr = format!("{}:{}", config.host, config.port);
        let listener = listen(&addr).await.map_err(|e| format!("cannot listen on {addr} (HOST, PORT): {e}"))?;
        let grace = Duration::from_secs(config.shutdown_grace);
        let resolve = config.upstream_resolve.clone().unwrap_or_default().0;
        let impersonation = crate::subtitles::Impersonation {
            python: config.impersonation_python(),
            egress: egress.clone(),
            allow_private: config.allow_private_networks,
        };
        let upstream = Arc::new(Upstream::new(config.allow_private_networks, resolve, egress));
        let relay = Relay::start(config.relay(), upstream, metrics.clone())
            .await
            .map_err(|e| format!("cannot start the relay: {e}"))?;
        let signer = Arc::new(Signer::new(config.url_signing_key.as_deref()));
        let links = Arc::new(crate::service::live_links::SignedLinks(signer.clone()));
        let live = crate::live::Live::new(relay.clone(), metrics.clone(), links, config.live());
        let board = Arc::new(crate::service::status::Board::new(
            metrics.clone(),
            relay.clone(),
            service.clone(),
            health.clone(),
            env!("CARGO_PKG_VERSION"),
        ));
        tasks.push(tokio::spawn(board.clone().run()));
        let media = Media {
            service: service.clone(),
            relay,
            signer,
            live,
            indexes: Indexes::new(INDEX_BUDGET, std::time::Duration::from_secs(24 * 3600)),
            rendered: crate::service::media::rendered_cache(),
            subtitles: crate::subtitles::SubtitleCache::new(Some(impersonation)),
            muxed: crate::lazy::lazy(|| {
                moka::future::Cache::builder()
                    .weigher(|_: &String, b: &bytes::Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
                    .max_capacity(MUXED_BUDGET)
                    .time_to_idle(Duration::from_secs(3600))
                    .build()
            }),
        };
        let state = AppState::new(Inner {
            board,
            media,
            proxy_countries: config.proxy_countries(),
            cors: Cors::new(&config.cors_origins),
            config,
            access,
            request_limit,
            redis,
            metrics,
            health,
            in_flight: AtomicU64::new(0),
            request_ids: RequestIds::default(),
            runtimes,
        });
        Ok(App { listener, workers, service: crate::http::service(state.clone()), state, tasks, grace })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests
    /// and streams in flight finish for up to `SHUTDOWN_GRACE`, and returns
    /// (whatever is left is dropped with the workers: bodies, ffmpeg groups).
    ///
    /// Connections are accepted here and served on the [`workers`]. The
    /// connection loop is hyper's own rather than `axum::serve`, for one
    /// setting: the per-connection buffer. hyper otherwise queues up to
    /// ~400 KiB of body for a client that reads slowly; capped, a slow
    /// stream holds [`SERVER_BUF`] and a frame.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let App { listener, workers, service, state, tasks, grace } = self;
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().max_buf_size(SERVER_BUF).timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            // Taken off this runtime, to be registered with the worker's.
            let (stream, peer) = match accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer))) {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (service, state, builder, watcher) =
                (service.clone(), state.clone(), builder.clone(), graceful.watcher());
            workers.spawn(async move {
                let _ = stream.set_nodelay(true);
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => stream,
                    Err(e) => return tracing::warn!(error = %e, "cannot serve an accepted connection"),
                };
                let service = service.map_request(move |req: axum::http::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
                let conn = builder.serve_connection_with_upgrades(
                    TokioIo::new(Refusals::new(stream, state)),
                    TowerToHyperService::new(service),
                );
                let _ = watcher.watch(conn.into_owned()).await;
            });
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
        drop(workers);
        Ok(())
    }
}
