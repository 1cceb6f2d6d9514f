//! The operators' view (`/ui/status`, `/api/v2/system/status`): the
//! streams running now, one row each, the relay store against its budgets,
//! extractions, yt-dlp, Redis, and ten minutes of history for the charts.
//!
//! A task samples every [`SAMPLE_EVERY`]: the counters `/metrics` exports
//! (atomics), each video's bytes and viewers (`traffic`, atomics), the
//! store's memory use (the one lock it takes, once a sample, as a scrape
//! does). Rates are the differences between two samples. A status request
//! reads the last sample, so however often the page refreshes, no request
//! of it touches the byte path. The report names no client address.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::VideoService;
use super::health::Health;
use crate::cache::now_unix;
use crate::metrics::{Metrics, Totals};
use crate::platform::VideoRef;
use crate::relay::Relay;

/// How often the board samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The history kept: ten minutes.
const HISTORY: usize = 120;
/// A video nobody has watched for this long leaves the table.
const IDLE_SECS: u64 = 60;

/// One point of the charts.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Unix seconds.
    pub t: i64,
    /// Bytes per second to viewers, and from origins.
    pub out_bps: f64,
    pub origin_bps: f64,
    pub requests_ps: f64,
    pub errors_ps: f64,
    /// Extractions per minute.
    pub extractions_pm: f64,
    pub streams: i64,
    pub store_bytes: u64,
}

/// A stream running now.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRow {
    pub title: Option<String>,
    pub platform: String,
    pub live: bool,
    /// Streams being sent now (for a live: its players, estimated).
    pub viewers: i64,
    pub out_bps: f64,
    pub origin_bps: f64,
    /// The share of what viewers got that no origin fetch brought for them.
    pub store_share: Option<f64>,
}

/// The relay store against its budgets.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    pub memory_bytes: u64,
    pub memory_budget: u64,
    pub disk_bytes: Option<u64>,
    pub disk_budget: Option<u64>,
    pub evictions_memory: u64,
    pub evictions_disk: u64,
    pub disk_errors: u64,
    pub disk_corrupt_blocks: u64,
    /// Of all bytes sent by the relay, the share that was stored already.
    pub served_from_store_share: Option<f64>,
}

/// Extractions.
#[derive(Debug, Clone, Serialize)]
pub struct Extractions {
    pub per_minute: f64,
    pub in_flight: i64,
    /// Counts since start, by outcome (`ok`, `bot_check`, …).
    pub outcomes: Vec<(&'static str, u64)>,
    /// Refusals by egress and reason (`bot_check`, `unreachable`).
    pub egress_refusals: Vec<EgressRefusals>,
    /// Proxies resting after a refusal, with the seconds left.
    pub cooling: Vec<(String, u64)>,
    pub proxies: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EgressRefusals {
    pub egress: String,
    pub reason: &'static str,
    pub count: u64,
}

/// The extractor.
#[derive(Debug, Clone, Serialize)]
pub struct Ytdlp {
    pub state: String,
    pub version: Option<String>,
    pub js_runtime: Option<String>,
    pub last_update: Option<String>,
    pub last_check: Option<String>,
    pub last_outcome: Option<String>,
}

/// What `/api/v2/system/status` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: i64,
    pub version: &'static str,
    pub uptime_secs: u64,
    pub sample_every_secs: u64,
    pub streams: Vec<StreamRow>,
    pub totals: Now,
    pub store: Store,
    pub extractions: Extractions,
    pub ytdlp: Ytdlp,
    pub redis: String,
    pub history: Vec<Point>,
}

/// The latest rates, for the page's headline numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Now {
    pub out_bps: f64,
    pub origin_bps: f64,
    pub requests_ps: f64,
    pub errors_ps: f64,
    pub active_streams: i64,
    pub live_streams: i64,
    pub live_viewers: i64,
    pub merges: u64,
    pub transcodes: u64,
}

/// The board: samples, and what they add up to.
pub struct Board {
    metrics: Arc<Metrics>,
    relay: Relay,
    service: Arc<VideoService>,
    health: Arc<Health>,
    version: &'static str,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: Option<Taken>,
    history: VecDeque<Point>,
    rows: Vec<StreamRow>,
    now: Now,
    extractions_pm: f64,
}

/// What one sample read.
struct Taken {
    at: Instant,
    totals: Totals,
    videos: HashMap<Arc<str>, (u64, u64)>,
}

impl Board {
    pub fn new(
        metrics: Arc<Metrics>,
        relay: Relay,
        service: Arc<VideoService>,
        health: Arc<Health>,
        version: &'static str,
    ) -> Self {
        Board { metrics, relay, service, health, version, state: Mutex::default() }
    }

    /// Samples every [`SAMPLE_EVERY`] for as long as the board lives.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sample().await;
        }
    }

    /// Reads the counters and turns the change since the last sample into rates.
    pub async fn sample(&self) {
        let totals = self.metrics.totals();
        let traffic = self.metrics.traffic.snapshot(IDLE_SECS);
        let store_bytes = self.relay.memory_used();
        let at = Instant::now();
        let videos: HashMap<Arc<str>, (u64, u64)> = traffic
            .iter()
            .map(|(k, t)| (k.clone(), (t.to_viewers.load(Relaxed), t.from_origin.load(Relaxed))))
            .collect();
        let (previous, prev_at) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &state.last {
                Some(l) => (Some((l.totals.clone(), l.videos.clone())), Some(l.at)),
                None => (None, None),
            }
        };
        let secs = prev_at.map_or(0.0, |p| at.duration_since(p).as_secs_f64()).max(0.001);
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        let mut rows = Vec::new();
        for (key, t) in &traffic {
            let (out, origin) = videos[key];
            let (out_then, origin_then) =
                previous.as_ref().and_then(|(_, v)| v.get(key)).copied().unwrap_or((out, origin));
            let live = t.live_variants.load(Relaxed) > 0;
            let viewers = if live { t.live_viewers.load(Relaxed) } else { t.viewers.load(Relaxed) };
            let (out_bps, origin_bps) = (rate(out, out_then), rate(origin, origin_then));
            if viewers <= 0 && out_bps == 0.0 && origin_bps == 0.0 && !live {
                continue;
            }
            rows.push(self.row(key, live, viewers, out_bps, origin_bps, out, origin).await);
        }
        rows.sort_by(|a, b| b.viewers.cmp(&a.viewers).then(b.out_bps.total_cmp(&a.out_bps)));
        let (now, extractions_pm, point) = match &previous {
            Some((p, _)) => {
                let ex = |t: &Totals| t.extractions.iter().map(|(_, n)| n).sum::<u64>();
                let now = Now {
                    out_bps: rate(totals.bytes_to_viewers, p.bytes_to_viewers),
                    origin_bps: rate(totals.origin_bytes, p.origin_bytes),
                    requests_ps: rate(totals.requests, p.requests),
                    errors_ps: rate(totals.errors_5xx, p.errors_5xx),
                    active_streams: totals.active_streams,
                    live_streams: totals.live_streams,
                    live_viewers: totals.live_viewers,
                    merges: totals.merges,
                    transcodes: totals.transcodes,
                };
                let pm = rate(ex(&totals), ex(p)) * 60.0;
                let point = Point {
                    t: now_unix(),
                    out_bps: now.out_bps,
                    origin_bps: now.origin_bps,
                    requests_ps: now.requests_ps,
                    errors_ps: now.errors_ps,
                    extractions_pm: pm,
                    streams: totals.active_streams,
                    store_bytes,
                };
                (now, pm, Some(point))
            }
            None => (Now::default(), 0.0, None),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = point {
            state.history.push_back(p);
            while state.history.len() > HISTORY {
                state.history.pop_front();
            }
        }
        state.rows = rows;
        state.now = now;
        state.extractions_pm = extractions_pm;
        state.last = Some(Taken { at, totals, videos });
    }

    /// A table row: the video's title from the cache (never an extraction).
    #[allow(clippy::too_many_arguments)]
    async fn row(
        &self,
        key: &str,
        live: bool,
        viewers: i64,
        out_bps: f64,
        origin_bps: f64,
        out: u64,
        origin: u64,
    ) -> StreamRow {
        let plain = key.strip_prefix("auth:").and_then(|k| k.split_once(':')).map_or(key, |(_, rest)| rest);
        let video = VideoRef::from_cache_key(plain);
        let title = self.service.cache.peek(key).await.map(|c| c.info.title.clone());
        StreamRow {
            title,
            platform: video.as_ref().map_or("unknown", VideoRef::platform_name).to_owned(),
            live,
            viewers: viewers.max(0),
            out_bps,
            origin_bps,
            store_share: (out > 0).then(|| (1.0 - origin as f64 / out as f64).clamp(0.0, 1.0)),
        }
    }

    /// The report, from the last sample and the health readings.
    pub fn report(&self) -> Report {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let empty = Totals::default();
        let totals = state.last.as_ref().map_or(&empty, |l| &l.totals);
        let readings = self.health.readings();
        let update = self.health.update.read().unwrap_or_else(PoisonError::into_inner).clone();
        let (memory_budget, disk_budget) = self.relay.budgets();
        let served = totals.served_from_store + totals.served_following_origin;
        let proxies = self.service.extractor.egress().cooling();
        Report {
            generated_at: now_unix(),
            version: self.version,
            uptime_secs: self.health.started.elapsed().as_secs(),
            sample_every_secs: SAMPLE_EVERY.as_secs(),
            streams: state.rows.clone(),
            totals: state.now.clone(),
            store: Store {
                memory_bytes: state.history.back().map_or(0, |p| p.store_bytes),
                memory_budget,
                disk_bytes: disk_budget.map(|_| totals.disk_bytes),
                disk_budget,
                evictions_memory: totals.evictions_memory,
                evictions_disk: totals.evictions_disk,
                disk_errors: totals.disk_errors,
                disk_corrupt_blocks: totals.disk_corrupt,
                served_from_store_share: (served > 0).then(|| totals.served_from_store as f64 / served as f64),
            },
            extractions: Extractions {
                per_minute: state.extractions_pm,
                in_flight: totals.extractions_in_flight,
                outcomes: totals.extractions.iter().filter(|(_, n)| *n > 0).cloned().collect(),
                egress_refusals: totals
                    .egress_refusals
                    .iter()
                    .map(|(e, r, n)| EgressRefusals { egress: e.clone(), reason: r, count: *n })
                    .collect(),
                proxies: proxies.len(),
                cooling: proxies.into_iter().filter(|(_, s)| *s > 0).collect(),
            },
            ytdlp: Ytdlp {
                state: readings.ytdlp.clone(),
                version: readings.ytdlp_version.clone(),
                js_runtime: readings.ytdlp_caps.js_runtime.clone(),
                last_update: update.last_update,
                last_check: update.last_check,
                last_outcome: update.last_outcome,
            },
            redis: readings.redis.clone(),
            history: state.history.iter().cloned().collect(),
        }
    }
}
