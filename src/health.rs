//! Dependency status for `/health`, refreshed by a background task so that
//! a health request costs no Redis round trip, process spawn or /proc read.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cache::RedisTier;
use tokio::sync::Notify;

use crate::extract::Extractor;
use crate::extract::update::UpdateStatus;
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
    pub memory: Memory,
}

/// The reference's memory keys, read from /proc: Rust has no GC, so
/// `alloc_mb` and `sys_mb` are the resident set, `total_alloc_mb` its peak,
/// and `num_gc` is always 0.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Memory {
    pub alloc_mb: f64,
    pub total_alloc_mb: f64,
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
}

impl Health {
    pub fn new(redis_enabled: bool) -> Self {
        let readings = Readings {
            redis: if redis_enabled { "connecting".into() } else { "disabled".into() },
            ytdlp: "checking".into(),
            ytdlp_version: None,
            memory: read_memory(),
        };
        Health {
            readings: RwLock::new(Arc::new(readings)),
            update: Arc::default(),
            ytdlp_changed: Arc::default(),
            started: Instant::now(),
        }
    }

    pub fn readings(&self) -> Arc<Readings> {
        self.readings.read().expect("readings lock").clone()
    }

    /// Refreshes the readings until the server stops. Its first yt-dlp check
    /// runs at start-up; with `EXTRACTOR=worker` it starts the first worker,
    /// which stays in the pool, so the first cold miss finds yt_dlp loaded.
    /// `reelay_ytdlp_info` follows the version read.
    pub async fn refresh(self: Arc<Self>, redis: Option<RedisTier>, extractor: Arc<Extractor>, info: YtdlpMetrics) {
        let mut ytdlp = String::new();
        let mut version: Option<String> = None;
        let mut last_ytdlp: Option<Instant> = None;
        loop {
            if last_ytdlp.is_none_or(|t| t.elapsed() >= YTDLP_REFRESH) {
                let now = match extractor.version().await {
                    Ok(v) if !v.is_empty() => {
                        if version.as_deref() != Some(v.as_str()) {
                            info.set_version(&v);
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
                memory: read_memory(),
            };
            *self.readings.write().expect("readings lock") = Arc::new(readings);
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                () = self.ytdlp_changed.notified() => last_ytdlp = None,
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
}

fn read_memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mb = |k: f64| (k / 1024.0 * 10.0).round() / 10.0;
    Memory { alloc_mb: mb(kb("VmRSS:")), total_alloc_mb: mb(kb("VmHWM:")), sys_mb: mb(kb("VmRSS:")), num_gc: 0 }
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
