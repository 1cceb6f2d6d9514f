//! Dependency status for `/health`, refreshed by a background task so that
//! a health request costs no Redis round trip, process spawn or /proc read.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::redis::RedisTier;
use tokio::sync::Notify;

/// What the last yt-dlp update check found, as `/health` reports it.
pub use crate::extract::update::UpdateStatus;
use crate::extract::{Capabilities, Extractor};
use crate::metrics::YtdlpMetrics;

/// How often Redis and memory are re-read.
const REFRESH: Duration = Duration::from_secs(1);
/// How often `yt-dlp --version` is run again.
const YTDLP_REFRESH: Duration = Duration::from_secs(30);

/// The latest readings.
#[derive(Debug, Clone, Serialize)]
pub struct Readings {
    /// `healthy`, `disabled` (memory backend), or `unhealthy: why`.
    pub redis: String,
    /// `available`, or `unavailable: why`.
    pub ytdlp: String,
    /// What `yt-dlp --version` said last.
    pub ytdlp_version: Option<String>,
    /// What that release found of its extras (read again when it changes).
    pub ytdlp_caps: Capabilities,
    pub memory: Memory,
    /// The process's resident set (VmRSS), for `/metrics`.
    pub rss_bytes: u64,
}

/// The reference's memory keys, from the allocator's own counters (jemalloc,
/// the global allocator): Rust has no GC, so `num_gc` is always 0.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Memory {
    /// MB in live allocations (jemalloc's `stats.allocated`; Go's `Alloc`).
    pub alloc_mb: f64,
    /// MB of pages holding live allocations (`stats.active`): what the heap
    /// occupies, fragmentation included. Go's cumulative `TotalAlloc` has no
    /// allocator counterpart; the key is kept for the reference's clients.
    pub total_alloc_mb: f64,
    /// MB the allocator has mapped from the system (`stats.mapped`; Go's `Sys`).
    pub sys_mb: f64,
    pub num_gc: u32,
}

pub struct Health {
    /// Written by the refresh task, read by every health request.
    readings: RwLock<Arc<Readings>>,
    /// `YTDLP_UPDATE`'s last check, written by the updater.
    pub update: Arc<RwLock<UpdateStatus>>,
    /// Told when the updater switched releases: the version is read again now.
    pub ytdlp_changed: Arc<Notify>,
    /// Start of the process, for `uptime`.
    pub started: Instant,
    /// The same, as a wall-clock time (cobalt's `startTime`).
    pub started_at: std::time::SystemTime,
}

impl Health {
    /// The first readings: Redis as start-up found it (the tier has been
    /// asked once already), yt-dlp `checking` until its first answer.
    pub fn new(redis: Option<&RedisTier>) -> Self {
        let readings = Readings {
            redis: redis.map_or_else(|| "disabled".to_owned(), RedisTier::status),
            ytdlp: "checking".into(),
            ytdlp_version: None,
            ytdlp_caps: Capabilities::default(),
            memory: read_memory(),
            rss_bytes: read_rss(),
        };
        Health {
            readings: RwLock::new(Arc::new(readings)),
            update: Arc::default(),
            ytdlp_changed: Arc::default(),
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
        }
    }

    pub fn readings(&self) -> Arc<Readings> {
        self.readings.read().expect("readings lock").clone()
    }

    /// Refreshes the readings until the server stops. Its first yt-dlp check
    /// runs at start-up; with `EXTRACTOR=worker` it starts the first worker,
    /// which stays in the pool, so the first cold miss finds yt_dlp loaded.
    /// When the version changes (start-up, an update) the release's extras
    /// are read too, and what is missing is logged once as a warning.
    /// `reelay_ytdlp_info` follows what was read.
    pub async fn refresh(self: Arc<Self>, redis: Option<RedisTier>, extractor: Arc<Extractor>, info: YtdlpMetrics) {
        let mut ytdlp = String::new();
        let mut version: Option<String> = None;
        let mut caps = Capabilities::default();
        let mut last_ytdlp: Option<Instant> = None;
        loop {
            if last_ytdlp.is_none_or(|t| t.elapsed() >= YTDLP_REFRESH) {
                let now = match extractor.version().await {
                    Ok(v) if !v.is_empty() => {
                        if version.as_deref() != Some(v.as_str()) {
                            caps = extractor.capabilities().await;
                            extractor.learn(&caps);
                            let missing = caps.missing();
                            if !missing.is_empty() {
                                tracing::warn!(version = %v, missing = %missing.join("; "), "yt-dlp lacks extras (scripts/setup installs them)");
                            }
                            info.set_info(
                                &v,
                                caps.js_runtime.as_deref(),
                                caps.ejs.as_deref(),
                                caps.impersonate.as_deref(),
                            );
                            version = Some(v);
                        }
                        "available".to_owned()
                    }
                    Ok(_) => "unavailable: printed no version".to_owned(),
                    Err(e) => format!("unavailable: {e}"),
                };
                if now != ytdlp && now != "available" {
                    tracing::warn!(status = %now, "yt-dlp is not available");
                }
                ytdlp = now;
                last_ytdlp = Some(Instant::now());
            }
            let readings = Readings {
                redis: redis.as_ref().map_or_else(|| "disabled".to_owned(), RedisTier::status),
                ytdlp: ytdlp.clone(),
                ytdlp_version: version.clone(),
                ytdlp_caps: caps.clone(),
                memory: read_memory(),
                rss_bytes: read_rss(),
            };
            *self.readings.write().expect("readings lock") = Arc::new(readings);
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                // A switched release is read again even at the same version
                // (a SABR build keeps the release's).
                () = self.ytdlp_changed.notified() => (last_ytdlp, version) = (None, None),
            }
        }
    }
}

impl Readings {
    /// Healthy unless a dependency is known to be down. The first yt-dlp
    /// check runs in the background (a Python start takes most of a second),
    /// so until it answers the service counts as healthy and says `checking`.
    pub fn healthy(&self) -> bool {
        (self.redis == "healthy" || self.redis == "disabled") && (self.ytdlp == "available" || self.ytdlp == "checking")
    }

    /// What a balancer should wait for before routing here: each service
    /// not yet answering, as `name: state` (empty when ready). Stricter than
    /// [`Readings::healthy`] only at start: yt-dlp still `checking`.
    pub fn waiting_for(&self) -> Vec<String> {
        let mut waiting = Vec::new();
        if self.redis != "healthy" && self.redis != "disabled" {
            waiting.push(format!("redis: {}", self.redis));
        }
        if self.ytdlp != "available" {
            waiting.push(format!("yt-dlp: {}", self.ytdlp));
        }
        waiting
    }
}

/// jemalloc's counters, as of a fresh epoch (they are cached until one).
fn read_memory() -> Memory {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let mb = |bytes: Result<usize, _>| (bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0;
    Memory {
        alloc_mb: mb(stats::allocated::read()),
        total_alloc_mb: mb(stats::active::read()),
        sys_mb: mb(stats::mapped::read()),
        num_gc: 0,
    }
}

/// VmRSS from /proc, in bytes.
fn read_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `1h30m45s`, as Go prints a duration rounded to seconds.
pub fn format_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_like_go() {
        use std::time::Duration;
        assert_eq!(super::format_uptime(Duration::from_secs(5445)), "1h30m45s");
        assert_eq!(super::format_uptime(Duration::from_secs(61)), "1m1s");
        assert_eq!(super::format_uptime(Duration::from_secs(3)), "3s");
    }
}
