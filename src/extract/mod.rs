//! Extraction: yt-dlp as a child process, and its JSON turned into
//! [`VideoInfo`].
//!
//! Each run gets its own process group so that a timeout, or the request
//! that started it going away, kills yt-dlp together with anything it spawned
//! (ffmpeg probes, JS interpreters). A semaphore bounds how many run at once.
//!
//! Owns: yt-dlp, its output and its releases. May import `upstream` (the
//! header type), `egress`, `metrics` and `process`; knows nothing of HTTP,
//! the cache or the relay.

mod capabilities;
pub mod impersonate;
mod info;
mod language;
mod playlist;
mod refusal;
mod sabr;
pub mod update;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::egress::{AllCooling, Egress, Route};
use crate::metrics::Metrics;
use crate::process::{self, RunError};
pub(crate) use refusal::classify;
use refusal::{is_unreachable, rejection};
use worker::WorkerPool;

pub use capabilities::Capabilities;
pub use info::{
    ApiFormat, ApiSubtitles, ApiVideo, Chapter, Format, Headers, ParseError, SUBTITLE_EXTS, SubtitleFile, Subtitles,
    VideoInfo, url_expiry,
};
pub use language::AudioLanguage;
pub use playlist::{Playlist, PlaylistEntry, PlaylistPage};
use sabr::with_duplicate_formats;
pub use sabr::{SabrFormat, SabrMode};

/// Why an extraction failed, by what the client should be told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExtractError {
    /// The video does not exist, is private, or was removed (404).
    #[error("{0}")]
    Unavailable(String),
    /// The channel is not live now, or its live has not begun (404); it can
    /// start any moment, so it is remembered for seconds only.
    #[error("{0}")]
    NotLive(String),
    /// The platform refused this server: a bot check ("Sign in to confirm
    /// you're not a bot") or HTTP 429 (503, `Retry-After`). It depends on the
    /// address and the hour, so it is never remembered.
    #[error("{0}")]
    BotCheck(String),
    /// The video needs a signed-in account: age-restricted, members-only
    /// (403).
    #[error("{0}")]
    SignInRequired(String),
    /// The video is not available in the server's country (451).
    #[error("{0}")]
    GeoBlocked(String),
    /// The extractor ran and failed for another reason (502).
    #[error("{0}")]
    Failed(String),
    /// The extractor did not finish within `EXTRACT_TIMEOUT` (504).
    #[error("extraction took longer than {0} s")]
    Timeout(u64),
    /// The URL points at a private or local address (403).
    #[error("{0}")]
    Refused(String),
    /// The URL's host does not resolve (502: DNS failed, not the client).
    #[error("{0}")]
    Unresolvable(String),
    /// The client's extraction budget (`EXTRACT_RATE_LIMIT`) is spent;
    /// retry after this many seconds (429).
    #[error("too many uncached lookups; retry in {0} s")]
    RateLimited(u64),
    /// Every format the extractor found comes only through YouTube's own
    /// streaming protocol (SABR: a POST answered in UMP), and none of them
    /// can be played: the yt-dlp in use is not a SABR build (it lists them
    /// without their session's parameters), or `YOUTUBE_SABR=off` (501).
    #[error("{0}")]
    SabrOnly(String),
    /// The extractor program could not be started (503).
    #[error("the extractor could not be started: {0}")]
    NotRunnable(String),
    /// Every egress proxy is cooling down after a refusal; retry after this
    /// many seconds (503).
    #[error("every egress proxy is cooling down after a refusal; retry in {0} s")]
    EgressCooling(u64),
}

/// How yt-dlp is started.
#[derive(Debug, Clone)]
pub struct Install {
    /// `YTDLP_PATH`, or after an update the Python that installed it.
    pub program: PathBuf,
    /// Before yt-dlp's own: `-m yt_dlp` after an update.
    pub args: Vec<String>,
    /// The updated release's folder, first on `PYTHONPATH`.
    pub pythonpath: Option<PathBuf>,
}

/// Runs yt-dlp: a process per extraction (`YTDLP_PATH`, or a stand-in with
/// the same output), or a pool of persistent workers.
pub struct Extractor {
    /// How yt-dlp starts: `YTDLP_PATH`, until an update (`YTDLP_UPDATE`)
    /// switches to a newer release.
    install: std::sync::RwLock<Arc<Install>>,
    /// `EXTRACTOR=worker`: the pool; `None` runs `program` per extraction.
    workers: Option<WorkerPool>,
    /// Per-run limit; the child's whole group is killed past it.
    timeout: Duration,
    /// Bounds concurrent children (`EXTRACT_CONCURRENCY`).
    permits: Semaphore,
    /// Outcomes, durations and extractions in flight.
    metrics: Arc<Metrics>,
    /// `YTDLP_ARGS`: options for every extraction, before the `--`.
    args: Vec<String>,
    /// `YOUTUBE_SABR`.
    sabr: SabrMode,
    /// What extractions run with: `args`, and `formats=duplicate` among
    /// YouTube's extractor arguments once the yt-dlp in use is known to be
    /// a SABR build (unless `YOUTUBE_SABR=off`), so it lists each format's
    /// plain URL and its SABR twin and `sabr` chooses.
    in_use: std::sync::RwLock<Arc<Vec<String>>>,
    /// Which proxy and source address each extraction uses.
    egress: Arc<Egress>,
}

/// Runs `cmd` with the release pip installed into `folder`: its packages
/// first on `PYTHONPATH`, and its programs (the `deno` of yt-dlp's extra)
/// first on `PATH`, where yt-dlp looks for a runtime it has not found
/// beside its Python.
pub(crate) fn use_release(cmd: &mut Command, folder: &Path) {
    let mut path = std::ffi::OsString::from(folder.join("bin"));
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    cmd.env("PYTHONPATH", folder).env("PATH", path);
}

impl ExtractError {
    /// The `outcome` label of `reelay_extractions_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ExtractError::Unavailable(_) => "unavailable",
            ExtractError::NotLive(_) => "not_live",
            ExtractError::BotCheck(_) => "bot_check",
            ExtractError::SignInRequired(_) => "sign_in_required",
            ExtractError::GeoBlocked(_) => "geo_blocked",
            ExtractError::Failed(_) => "failed",
            ExtractError::Timeout(_) => "timeout",
            ExtractError::Refused(_) => "refused",
            ExtractError::Unresolvable(_) => "unresolvable",
            ExtractError::RateLimited(_) => "rate_limited",
            ExtractError::NotRunnable(_) => "not_runnable",
            ExtractError::EgressCooling(_) => "egress_cooling",
            ExtractError::SabrOnly(_) => "sabr_only",
        }
    }

    /// Whether the refusal is the video's own and lasts (removed, private,
    /// country, age), so it may be remembered for `ERROR_CACHE_TTL`; bot
    /// checks, timeouts and limits depend on the address and the hour.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            ExtractError::Unavailable(_)
                | ExtractError::NotLive(_)
                | ExtractError::SignInRequired(_)
                | ExtractError::GeoBlocked(_)
                | ExtractError::SabrOnly(_)
        )
    }
}

impl Extractor {
    pub fn new(program: PathBuf, timeout: Duration, concurrency: usize, metrics: Arc<Metrics>) -> Self {
        let egress = Arc::new(Egress::new("", None, Duration::ZERO).expect("no egress settings parse"));
        Extractor {
            install: std::sync::RwLock::new(Arc::new(Install { program, args: Vec::new(), pythonpath: None })),
            workers: None,
            timeout,
            permits: Semaphore::new(concurrency),
            metrics,
            args: Vec::new(),
            sabr: SabrMode::Auto,
            in_use: std::sync::RwLock::new(Arc::new(Vec::new())),
            egress,
        }
    }

    fn install(&self) -> Arc<Install> {
        self.install.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// A command that starts yt-dlp as installed now.
    fn command(&self) -> Command {
        let install = self.install();
        let mut cmd = Command::new(&install.program);
        cmd.args(&install.args);
        if let Some(folder) = &install.pythonpath {
            use_release(&mut cmd, folder);
        }
        cmd
    }

    /// From now on, extractions run the release installed in `folder` with
    /// `python`; workers of the old one finish what they are doing and go.
    pub fn switch(&self, python: PathBuf, folder: PathBuf) {
        if let Some(pool) = &self.workers {
            pool.switch(folder.clone());
        }
        let install = Install { program: python, args: vec!["-m".into(), "yt_dlp".into()], pythonpath: Some(folder) };
        *self.install.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(install);
    }

    /// The folder of the updated release in use, if any.
    pub fn installed_folder(&self) -> Option<PathBuf> {
        self.install().pythonpath.clone()
    }

    /// The egress settings extractions run with.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Runs extractions through `EGRESS_PROXIES` / `EGRESS_SOURCE_CIDR`.
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.egress = egress;
        self
    }

    /// Adds `YTDLP_ARGS` to every extraction (call before `with_workers`).
    pub fn with_args(mut self, args: Vec<String>) -> Self {
        self.in_use = std::sync::RwLock::new(Arc::new(args.clone()));
        self.args = args;
        self
    }

    /// `YOUTUBE_SABR`.
    pub fn with_sabr(mut self, mode: SabrMode) -> Self {
        self.sabr = mode;
        self
    }

    /// Takes what the yt-dlp in use can do into account: a SABR build is
    /// asked for each format's SABR twin too (`formats=duplicate`), any
    /// other yt-dlp is not (the released one would list duplicate plain
    /// URLs from several clients instead). Called when the extras are read
    /// (at start and after an update).
    pub fn learn(&self, caps: &Capabilities) {
        let args = match caps.sabr.is_some() && self.sabr != SabrMode::Off {
            true => with_duplicate_formats(&self.args),
            false => self.args.clone(),
        };
        let mut in_use = self.in_use.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if **in_use != args {
            if let Some(pool) = &self.workers {
                pool.set_args(&args);
            }
            *in_use = Arc::new(args);
        }
    }

    /// `YOUTUBE_SABR`.
    pub fn sabr_mode(&self) -> SabrMode {
        self.sabr
    }

    fn args_in_use(&self) -> Arc<Vec<String>> {
        self.in_use.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Extracts with persistent workers started with `python`.
    pub fn with_workers(mut self, python: PathBuf) -> Self {
        self.workers = Some(WorkerPool::new(python, &self.args));
        self
    }

    /// Whether yt-dlp accepts `YTDLP_ARGS`: `Err` with its own words when it
    /// rejects them. A yt-dlp that cannot run at all is not this check's
    /// business (the health check reports it), so that passes.
    pub async fn check_args(&self) -> Result<(), String> {
        if self.args.is_empty() {
            return Ok(());
        }
        if let Some(pool) = &self.workers {
            return match pool.version(self.timeout).await {
                Err(e) if e.to_string().starts_with("YTDLP_ARGS") => Err(e.to_string()),
                _ => Ok(()),
            };
        }
        // `--version` answers before the options are read; listing the
        // extractors reads them first and touches no network.
        let mut cmd = self.command();
        cmd.args(&self.args).args(["--ignore-config", "--list-extractors"]);
        match process::output(cmd, self.timeout).await {
            Ok(out) if !out.status.success() => Err(rejection(&String::from_utf8_lossy(&out.stderr))),
            _ => Ok(()),
        }
    }

    /// Extracts `url` and normalises the result. `url` is always a URL this
    /// service built or validated; it goes after `--` so that nothing in it
    /// can be read as an option. `cookies` is a private copy of the
    /// platform's cookie file.
    /// The info carries the [`Route`] the extraction took, for its fetches.
    pub async fn extract(&self, url: &str, platform: &str, cookies: Option<&Path>) -> Result<VideoInfo, ExtractError> {
        let (mut info, route) =
            self.timed(url, false, cookies, |v| VideoInfo::from_ytdlp_value(v, platform, self.sabr)).await?;
        info.route = route;
        Ok(info)
    }

    /// Lists a playlist's entries without resolving them (`--flat-playlist`).
    pub async fn extract_playlist(
        &self,
        url: &str,
        platform: &str,
        cookies: Option<&Path>,
    ) -> Result<Playlist, ExtractError> {
        self.timed(url, true, cookies, |v| Playlist::from_ytdlp_value(v, platform)).await.map(|(list, _)| list)
    }

    async fn timed<T>(
        &self,
        url: &str,
        flat: bool,
        cookies: Option<&Path>,
        parse: impl FnOnce(serde_json::Value) -> Result<T, ParseError>,
    ) -> Result<(T, Route), ExtractError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let timer = self.metrics.extraction_started();
        let started = Instant::now();
        let (raw, route) = self.through_egress(url, flat, cookies).await;
        let result = raw.and_then(|v| {
            parse(v).map_err(|e| match e {
                ParseError::NoFormats | ParseError::Playlist | ParseError::NotAPlaylist => {
                    ExtractError::Unavailable(e.to_string())
                }
                ParseError::SabrOnly | ParseError::SabrOff => ExtractError::SabrOnly(e.to_string()),
                other => ExtractError::Failed(other.to_string()),
            })
        });
        tracing::debug!(url, flat, elapsed_ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "extracted");
        timer.finish(result.as_ref().map_or_else(ExtractError::outcome, |_| "ok"));
        result.map(|t| (t, route))
    }

    /// Runs yt-dlp through the next route and, when that egress was refused
    /// (counted, its proxy cooling down), once more through another.
    async fn through_egress(
        &self,
        url: &str,
        flat: bool,
        cookies: Option<&Path>,
    ) -> (Result<serde_json::Value, ExtractError>, Route) {
        let route = match self.egress.pick(None) {
            Ok(route) => route,
            Err(AllCooling(wait)) => {
                return (Err(ExtractError::EgressCooling(wait.as_secs().max(1))), Route::default());
            }
        };
        let first = self.attempt(url, flat, cookies, &route).await;
        let refused = first.as_ref().err().is_some_and(|e| self.refused_egress(e, &route));
        if !refused || !self.egress.can_retry() {
            return (first, route);
        }
        let Ok(next) = self.egress.pick(Some(&route)) else { return (first, route) };
        // A second refusal is the answer (and that proxy cools down too).
        let second = self.attempt(url, flat, cookies, &next).await;
        if let Err(e) = &second {
            self.refused_egress(e, &next);
        }
        (second, next)
    }

    /// One run of yt-dlp through `route`: its JSON, or its refusal.
    async fn attempt(
        &self,
        url: &str,
        flat: bool,
        cookies: Option<&Path>,
        route: &Route,
    ) -> Result<serde_json::Value, ExtractError> {
        let result = match &self.workers {
            Some(pool) => {
                let via = worker::Via { proxy: self.egress.proxy_url(route), source_address: route.source };
                pool.extract(url, flat, cookies, &via, self.timeout).await
            }
            None => {
                let mut args = vec!["-J", if flat { "--flat-playlist" } else { "--no-playlist" }];
                args.extend(["--no-warnings", "--ignore-config"]);
                let cookies = cookies.map(|c| c.to_string_lossy());
                if let Some(c) = &cookies {
                    args.extend(["--cookies", c]);
                }
                let in_use = self.args_in_use();
                args.extend(in_use.iter().map(String::as_str));
                let egress = self.egress.ytdlp_args(route);
                args.extend(egress.iter().map(String::as_str));
                args.extend(["--", url]);
                self.run(&args).await.and_then(|out| {
                    serde_json::from_slice(&out).map_err(|e| ExtractError::Failed(ParseError::Json(e).to_string()))
                })
            }
        };
        // yt-dlp may quote the proxy URL it was given.
        result.map_err(|e| self.redact(e))
    }

    /// Whether `e` is the egress's fault rather than the video's (a bot
    /// check, a 429, an unreachable proxy); if so it is counted against the
    /// route and its proxy cools down.
    fn refused_egress(&self, e: &ExtractError, route: &Route) -> bool {
        let bot_check = matches!(e, ExtractError::BotCheck(_));
        let unreachable = matches!(e, ExtractError::Failed(m) if !route.is_direct() && is_unreachable(m));
        if !(bot_check || unreachable) {
            return false;
        }
        let label = self.egress.label(route);
        tracing::warn!(egress = %label, error = %e, "the platform or the proxy refused this egress");
        self.metrics.egress_refused(&label, if bot_check { "bot_check" } else { "unreachable" });
        self.egress.cool(route);
        true
    }

    fn redact(&self, e: ExtractError) -> ExtractError {
        use ExtractError as E;
        let r = |m: String| self.egress.redact(&m);
        match e {
            E::Unavailable(m) => E::Unavailable(r(m)),
            E::NotLive(m) => E::NotLive(r(m)),
            E::BotCheck(m) => E::BotCheck(r(m)),
            E::SignInRequired(m) => E::SignInRequired(r(m)),
            E::GeoBlocked(m) => E::GeoBlocked(r(m)),
            E::Failed(m) => E::Failed(r(m)),
            other => other,
        }
    }

    /// What the yt-dlp in use found of its extras (JavaScript runtime,
    /// yt-dlp-ejs, curl_cffi), read from its verbose header with
    /// `YTDLP_ARGS` applied (they may choose a runtime). A yt-dlp that
    /// cannot run reports nothing.
    pub async fn capabilities(&self) -> Capabilities {
        if let Some(pool) = &self.workers {
            return pool.debug_header(self.timeout).await.map(|h| Capabilities::from_debug(&h)).unwrap_or_default();
        }
        // With no URL yt-dlp prints its header, then exits with a usage error.
        let mut cmd = self.command();
        cmd.args(["--verbose", "--ignore-config"]).args(&self.args);
        match process::output(cmd, self.timeout).await {
            Ok(out) => Capabilities::from_debug(&String::from_utf8_lossy(&out.stderr)),
            Err(_) => Capabilities::default(),
        }
    }

    /// `yt-dlp --version`, for the health check.
    pub async fn version(&self) -> Result<String, ExtractError> {
        if let Some(pool) = &self.workers {
            return pool.version(self.timeout).await;
        }
        let out = self.run(&["--version"]).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    async fn run(&self, args: &[&str]) -> Result<Vec<u8>, ExtractError> {
        let program = self.install().program.clone();
        let mut cmd = self.command();
        cmd.args(args);
        let std::process::Output { status, stdout: out, stderr: err } = match process::output(cmd, self.timeout).await {
            Ok(output) => output,
            Err(RunError::Spawn(e)) => return Err(ExtractError::NotRunnable(format!("{}: {e}", program.display()))),
            Err(RunError::Io(e)) => return Err(ExtractError::Failed(e.to_string())),
            Err(RunError::TimedOut(limit)) => {
                tracing::warn!(program = %program.display(), timeout_s = limit.as_secs(), "extractor timed out; killed");
                return Err(ExtractError::Timeout(limit.as_secs()));
            }
        };
        if status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&err);
        let stderr = self.egress.redact(&stderr);
        tracing::warn!(program = %program.display(), %status, stderr = %stderr.trim(), "extractor failed");
        Err(classify(&stderr))
    }
}
