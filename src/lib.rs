//! reelay: a video information, redirect and streaming-proxy API server.
//!
//! A request flows through these modules, in order:
//!
//! - [`http`]: the routes (one module per group, each with `router()`), the
//!   middleware that adds request ids, the JSON error shape, body limits and
//!   request logs, `http::conn` (what the HTTP parser refuses, in the same
//!   shape), and the web page at `/ui` (its files compiled in).
//! - [`platform`]: parses the platform, video id or URL at the edge into a
//!   `VideoRef` ([`playlist`]: a `PlaylistRef`); nothing unchecked goes
//!   further.
//! - [`service`]: "what is this video?", answered from [`cache`] (in-process
//!   tier, optional Redis tier, single-flight, lasting refusals remembered)
//!   or one run of [`extract`] (yt-dlp as a child process, its JSON
//!   normalised into `VideoInfo`, its refusals read in its own words,
//!   yt-dlp itself kept current by `extract::update`), with the platform's
//!   cookies when [`signin`] has them and through the route [`egress`]
//!   picks.
//! - [`select`]: quality presets over the cached formats, giving a
//!   `StreamPlan`.
//! - [`relay`]: every byte through the server: a block store (memory, disk)
//!   keyed by what the bytes are, ranged and resumable upstream fetches that
//!   every viewer of a video shares, and ffmpeg merges stored as objects;
//!   [`net`] guards it against private addresses, and [`egress`] sends a
//!   video's fetches out the way its extraction went (proxy, source address).
//! - [`stream`]: HLS playlists rewritten to signed links.
//! - [`manifest`]: HLS and DASH manifests reelay builds from a video's
//!   separate DASH files (their layout read from each file's `sidx`), so
//!   players seek and switch quality with no ffmpeg on the server.
//!
//! Around them: [`config`] (the one `Config`), [`app`] (state, binding,
//! graceful shutdown), [`error`] (the one `ApiError`), [`metrics`] and
//! [`health`].
#![forbid(unsafe_code)]

pub mod app;
pub mod cache;
pub mod config;
pub mod egress;
pub mod extract;
pub mod hls;
pub mod http;
pub mod manifest;
pub mod metrics;
pub mod net;
pub mod platform;
pub mod process;
pub mod ratelimit;
pub mod redis;
pub mod relay;
pub mod select;
pub mod service;
pub mod telemetry;
pub mod upstream;

/// jemalloc, whose background thread returns freed memory to the system a
/// second after a load, even while the threads that freed it sit idle
/// (mimalloc and glibc keep it in idle threads' heaps); as fast on the hot
/// routes. Measured in BENCHMARKS.md; settings in `.cargo/config.toml`.
/// Declared by the library, so the tests run on the allocator the binary
/// runs on, and `/health` reads its counters wherever reelay is linked.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub use app::App;
pub use config::Config;
