//! reelay: a video information, redirect and streaming-proxy API server.
//!
//! The layout, top down. Each module imports only modules below it (the
//! layers in `tests/api/layout.rs`, which fails on an import that points
//! up or closes a circle):
//!
//! - [`app`]: the composition root: builds every part from the one
//!   [`Config`] (`config`), starts the background tasks, binds, and
//!   serves until a shutdown signal: one acceptor hands each connection to
//!   a worker thread (`app::workers`: one per core, each with a runtime of
//!   its own, as nginx's workers). [`telemetry`] sets up the logs (its own
//!   JSON line, written in batches by a thread of its own).
//! - [`http`]: the only axum user: one module per route group (each with
//!   `routes()`: parse the request, call one use case, write its
//!   `service::answer::Answer`), the middleware (request ids, limits, logs,
//!   CORS, the access guard), `AppState`, how an `ApiError` is written, the
//!   OpenAPI document and the page at `/ui`. No file of it imports `relay`,
//!   `cache` or `extract` (`tests/api/layout.rs` keeps it so).
//! - [`cobalt`]: cobalt's API as a second front door (`/cobalt/`): its
//!   request schema checked, translated into reelay's stream requests, and
//!   its answers and error codes; `cobalt::plays` decides what a looked-up
//!   video gets and serves its tunnels; `http::cobalt` carries them.
//! - [`service`]: the use cases, with no HTTP: "what is this video?"
//!   (cache, single-flight, the extraction budget, sign-in), `play` (a
//!   stream request becomes a Redirect, Relay, Merge, Hls or Manifest) and
//!   `stream` (that plan carried out), `manifests` (renditions, tracks and
//!   signed links; what each link answers), `rewritten` (a source's own HLS
//!   through signed links), `live_links`, all sharing `media::Media` and
//!   answering an `answer::Answer` or an `error::ApiError` (every failure a
//!   client can see, with its status); `health`, and `status` (the
//!   operators' board: streams now, the store, extractions, ten minutes of
//!   history, sampled off the byte path).
//! - [`manifest`]: HLS and DASH manifests built from a video's DASH files'
//!   `sidx`; [`subtitles`]: a video's subtitle tracks as WebVTT; [`select`]: quality and player profiles over the cached
//!   formats; [`cache`]: the in-process and Redis tiers of video info and
//!   playlists; [`live`]: live streams, one shared origin session per
//!   variant being watched (a poller on the stream's clock, segments
//!   fetched ahead into the relay, renewal, links that outlive sessions);
//!   [`output`]: what a stream is made into on its way out (audio formats
//!   and bitrates, mute, tags) and the name it is saved under.
//! - [`extract`]: yt-dlp (a process per run, or a worker pool), its JSON as
//!   `VideoInfo`, its refusals, its extras and its updates. [`relay`]: the
//!   byte engine, which knows nothing of yt-dlp: a block store keyed by what
//!   the bytes are, shared ranged fetches sized to what is read, composed
//!   files (`relay::compose`: DASH video and audio merged from their
//!   indexes, clips of them, muxed MPEG-TS segments, no ffmpeg), ffmpeg
//!   merges and transcodes for the rest, `read` for the
//!   server's own use and `serve` for HTTP; a SABR format's bytes come by
//!   sessions (`relay::sabr`), placed where each fetch starts.
//!   [`ratelimit`]: GCRA in process and on Redis.
//! - [`upstream`]: the pooled HTTP client and its header rules; [`egress`]:
//!   proxies and source addresses, and the connector each route uses.
//! - [`sabr`]: YouTube's SABR protocol without I/O: UMP framing, its
//!   protobuf messages, one session's state (what to ask next, what each
//!   part of an answer brought); the relay drives it.
//! - [`platform`]: platforms, video ids, playlist names and URLs, parsed at
//!   the edge; [`hls`]: origins' playlists rewritten and the links signed
//!   (sealed where they name an origin URL).
//! - Leaves: [`metrics`] (and [`traffic`], bytes and viewers by video for
//!   the status page, on atomics), [`net`] (the private-address guard), [`process`]
//!   (child process groups), [`redis`] (the connection and its health),
//!   [`request_id`] (the request a task serves, for its log lines), [`lazy`]
//!   (caches built by their first reader, not at start).
//!
//! Where a request becomes bytes: `http::stream` → `service::stream` →
//! `service::play` → `relay` (`serve`, `read`); for a live stream,
//! `http::live` → `service::live_links` → `live` → `relay`.
#![forbid(unsafe_code)]

pub mod app;
pub mod cache;
pub mod cobalt;
pub mod config;
pub mod egress;
pub mod extract;
pub mod hls;
pub mod http;
pub mod lazy;
pub mod live;
pub mod manifest;
pub mod metrics;
pub mod net;
pub mod output;
pub mod platform;
pub mod process;
pub mod ratelimit;
pub mod redis;
pub mod relay;
pub mod request_id;
pub mod sabr;
pub mod select;
pub mod service;
pub mod subtitles;
pub mod telemetry;
pub mod traffic;
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
