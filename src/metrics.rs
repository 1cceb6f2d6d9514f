//! The counters behind `GET /api/v2/stream/metrics` and `GET /metrics`.
//!
//! `/metrics` is rendered by the `prometheus-client` crate from one registry
//! per server (so several servers in one process, as in the tests, keep
//! their own figures). Counters bumped on every request are plain atomics:
//! the per-route HTTP series live in a map read without allocating and are
//! handed to the registry as a collector at scrape time.
//!
//! This module is a leaf: callers say what happened in its own words (a
//! cache tier's name, an extraction outcome), so it imports nothing of theirs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::traffic::{Traffic, VideoTraffic};

/// Latency buckets of HTTP requests, in seconds.
const HTTP_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Duration buckets of extractions, in seconds.
const EXTRACT_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];

/// Why an extraction ended, for `reelay_extractions_total{outcome}`.
pub const EXTRACT_OUTCOMES: [&str; 13] = [
    "ok",
    "unavailable",
    "not_live",
    "bot_check",
    "sign_in_required",
    "geo_blocked",
    "failed",
    "timeout",
    "not_runnable",
    "refused",
    "unresolvable",
    "rate_limited",
    "egress_cooling",
];

/// Cache tiers a hit can come from, for `reelay_cache_hits_total{tier}`.
pub const HIT_TIERS: [&str; 3] = ["memory", "redis", "coalesced"];

type Labels = [(&'static str, &'static str); 1];

/// One labelled counter of a family, kept by its label value.
fn counters(family: &Family<Labels, Counter>, label: &'static str, values: &[&'static str]) -> Vec<Counter> {
    values.iter().map(|v| family.get_or_create(&[(label, v)]).clone()).collect()
}

/// A latency histogram of plain atomics (one per route; bumped per request).
#[derive(Debug)]
struct Latency {
    /// Per bucket, not cumulative; summed when encoded.
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    fn new() -> Self {
        Latency {
            counts: HTTP_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = HTTP_BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// Requests of one route: counts by status, and latency.
#[derive(Debug)]
struct RouteSeries {
    statuses: RwLock<Vec<(u16, AtomicU64)>>,
    latency: Latency,
}

/// The per-route series, encoded at scrape time.
#[derive(Debug, Default)]
struct Routes(RwLock<HashMap<String, Arc<RouteSeries>>>);

impl Collector for Routes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let routes = self.0.read().expect("routes lock");
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        let mut requests = encoder.encode_descriptor(
            "reelay_http_requests",
            "HTTP requests by route template and status.",
            None,
            MetricType::Counter,
        )?;
        for name in &names {
            for (status, c) in routes[*name].statuses.read().expect("status lock").iter() {
                let status = status.to_string();
                let labels = [("route", name.as_str()), ("status", status.as_str())];
                requests.encode_family(&labels)?.encode_counter::<Labels, _, u64>(&c.load(Relaxed), None)?;
            }
        }
        let mut latency = encoder.encode_descriptor(
            "reelay_http_request_duration_seconds",
            "Time to the response head, by route template.",
            None,
            MetricType::Histogram,
        )?;
        for name in &names {
            let l = &routes[*name].latency;
            let mut cumulative = 0;
            let mut buckets: Vec<(f64, u64)> = HTTP_BUCKETS
                .iter()
                .zip(&l.counts)
                .map(|(b, c)| {
                    cumulative += c.load(Relaxed);
                    (*b, cumulative)
                })
                .collect();
            let count = l.count.load(Relaxed);
            buckets.push((f64::INFINITY, count));
            let labels = [("route", name.as_str())];
            latency.encode_family(&labels)?.encode_histogram::<Labels>(
                l.sum_us.load(Relaxed) as f64 / 1e6,
                count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// The relay engine's figures.
#[derive(Debug)]
pub struct RelayMetrics {
    /// Bytes readers took from complete blocks (memory or disk).
    pub served_store: Counter,
    /// Bytes readers took from blocks still arriving from an origin.
    pub served_origin: Counter,
    /// Bytes received from origins.
    pub origin_bytes: Counter,
    /// Upstream requests (ranges, whole files).
    pub upstream_ranges: Counter,
    /// Fetches resumed after a drop, a stall or an error status.
    pub resumes_dropped: Counter,
    /// Fetches resumed with a new URL after a refusal (403/410).
    pub resumes_expired: Counter,
    /// Readers that joined a fetch or a merge someone else started.
    pub coalesced: Counter,
    pub evictions_memory: Counter,
    pub evictions_disk: Counter,
    pub disk_writes: Counter,
    pub disk_reads: Counter,
    /// Block writes skipped because the disk queue was full.
    pub disk_skipped: Counter,
    /// Disk failures (each spell is logged once).
    pub disk_errors: Counter,
    /// Block files found torn or corrupt and dropped.
    pub disk_corrupt: Counter,
    /// Bytes in the disk tier.
    disk_bytes: Gauge,
    /// ffmpeg merges started.
    pub merges: Counter,
    /// ffmpeg audio transcodes and mutes started (each once for all requesters).
    pub transcodes: Counter,
    /// Muxed HLS segments made by ffmpeg (each once for all viewers).
    pub remuxes: Counter,
    /// Muxed HLS segments written in process (no ffmpeg).
    pub muxed: Counter,
    /// Streams piped from an origin unstored (it ignores ranges, too big).
    pub pipes: Counter,
}

impl RelayMetrics {
    fn register(registry: &mut Registry) -> Self {
        let served = Family::<Labels, Counter>::default();
        let resumes = Family::<Labels, Counter>::default();
        let evictions = Family::<Labels, Counter>::default();
        let [served_store, served_origin] =
            <[Counter; 2]>::try_from(counters(&served, "from", &["store", "origin"])).expect("two");
        let [resumes_dropped, resumes_expired] =
            <[Counter; 2]>::try_from(counters(&resumes, "reason", &["dropped", "expired"])).expect("two");
        let [evictions_memory, evictions_disk] =
            <[Counter; 2]>::try_from(counters(&evictions, "tier", &["memory", "disk"])).expect("two");
        let m = RelayMetrics {
            served_store,
            served_origin,
            origin_bytes: Counter::default(),
            upstream_ranges: Counter::default(),
            resumes_dropped,
            resumes_expired,
            coalesced: Counter::default(),
            evictions_memory,
            evictions_disk,
            disk_writes: Counter::default(),
            disk_reads: Counter::default(),
            disk_skipped: Counter::default(),
            disk_errors: Counter::default(),
            disk_corrupt: Counter::default(),
            disk_bytes: Gauge::default(),
            merges: Counter::default(),
            transcodes: Counter::default(),
            remuxes: Counter::default(),
            muxed: Counter::default(),
            pipes: Counter::default(),
        };
        let r = registry;
        r.register(
            "reelay_relay_served_bytes",
            "Bytes sent to clients, by where they were: the store, or an origin fetch they followed.",
            served,
        );
        r.register("reelay_relay_origin_bytes", "Bytes received from origins.", m.origin_bytes.clone());
        r.register(
            "reelay_relay_upstream_ranges",
            "Upstream requests of the relay (one per range).",
            m.upstream_ranges.clone(),
        );
        r.register("reelay_relay_resumes", "Upstream fetches resumed from the next missing byte, by reason.", resumes);
        r.register(
            "reelay_relay_coalesced_readers",
            "Readers that joined a fetch or merge already running.",
            m.coalesced.clone(),
        );
        r.register("reelay_relay_evictions", "Blocks evicted, by tier.", evictions);
        r.register("reelay_relay_disk_writes", "Blocks written to the disk tier.", m.disk_writes.clone());
        r.register("reelay_relay_disk_reads", "Blocks read back from the disk tier.", m.disk_reads.clone());
        r.register(
            "reelay_relay_disk_skipped_writes",
            "Block writes skipped, the disk queue being full.",
            m.disk_skipped.clone(),
        );
        r.register(
            "reelay_relay_disk_errors",
            "Disk tier failures (the tier rests a minute after one).",
            m.disk_errors.clone(),
        );
        r.register(
            "reelay_relay_disk_corrupt_blocks",
            "Block files found torn or corrupt, dropped and fetched again.",
            m.disk_corrupt.clone(),
        );
        r.register("reelay_relay_disk_bytes", "Bytes held by the disk tier.", m.disk_bytes.clone());
        r.register("reelay_relay_merges", "ffmpeg merges started.", m.merges.clone());
        r.register("reelay_relay_transcodes", "ffmpeg audio transcodes and mutes started.", m.transcodes.clone());
        r.register("reelay_relay_remuxed_segments", "Muxed HLS segments made by ffmpeg.", m.remuxes.clone());
        r.register("reelay_relay_muxed_segments", "Muxed HLS segments written in process.", m.muxed.clone());
        r.register(
            "reelay_relay_pipes",
            "Streams piped unstored (the origin ignores ranges and the file is too big).",
            m.pipes.clone(),
        );
        m
    }

    pub fn set_disk_bytes(&self, bytes: u64) {
        self.disk_bytes.set(bytes as i64);
    }
}

/// Delay buckets of live segments behind the origin's edge, in seconds.
const LIVE_DELAY_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// The shared live sessions' figures.
#[derive(Debug)]
pub struct LiveMetrics {
    /// Live variants being polled now.
    pub streams: Gauge,
    /// Players of them, estimated from playlist reloads.
    pub viewers: Gauge,
    /// Origin playlist fetches, by outcome (`changed`, `unchanged`, `failed`).
    playlist_fetches: Family<Labels, Counter>,
    /// Segments fetched ahead of the viewers (one origin fetch each).
    pub segment_fetches: Counter,
    /// How long after a segment ended at the origin reelay listed it.
    pub edge_delay: Histogram,
    /// Sessions renewed (`ok`) or not (`failed`).
    renewals: Family<Labels, Counter>,
    /// Playlists answered to players from the shared copy.
    pub playlists_served: Counter,
}

impl LiveMetrics {
    fn register(r: &mut Registry) -> Self {
        let m = LiveMetrics {
            streams: Gauge::default(),
            viewers: Gauge::default(),
            playlist_fetches: Family::default(),
            segment_fetches: Counter::default(),
            edge_delay: Histogram::new(LIVE_DELAY_BUCKETS.iter().copied()),
            renewals: Family::default(),
            playlists_served: Counter::default(),
        };
        r.register("reelay_live_streams", "Live variants being polled, one shared session each.", m.streams.clone());
        r.register(
            "reelay_live_viewers",
            "Players of live streams, estimated from playlist reloads.",
            m.viewers.clone(),
        );
        r.register(
            "reelay_live_playlist_fetches",
            "Origin playlist fetches of live streams, by outcome (changed, unchanged, failed).",
            m.playlist_fetches.clone(),
        );
        r.register(
            "reelay_live_segment_fetches",
            "Live segments fetched from the origin, ahead of the players.",
            m.segment_fetches.clone(),
        );
        r.register(
            "reelay_live_edge_delay_seconds",
            "Time from a live segment's end at the origin (its date) to reelay listing it.",
            m.edge_delay.clone(),
        );
        r.register(
            "reelay_live_session_renewals",
            "Live sessions extracted again after the origin refused them or before they expired, by outcome.",
            m.renewals.clone(),
        );
        r.register(
            "reelay_live_playlists_served",
            "Live playlists answered to players from the shared copy.",
            m.playlists_served.clone(),
        );
        m
    }

    /// One origin playlist fetch: `changed`, `unchanged` or `failed`.
    pub fn count_fetch(&self, outcome: &'static str) {
        self.playlist_fetches.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// One renewal: `ok` or `failed`.
    pub fn count_renewal(&self, outcome: &'static str) {
        self.renewals.get_or_create(&[("outcome", outcome)]).inc();
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Video and stream requests.
    total_requests: AtomicU64,
    /// Sum of the latencies of `total_requests`, in microseconds.
    latency_us: AtomicU64,
    /// Lookups that ran the extractor.
    cache_misses: Counter,
    /// Hits by tier, as `HIT_TIERS`.
    hits: Vec<Counter>,
    /// Body bytes handed to clients by the proxy.
    bytes_served: Counter,
    /// Proxy responses whose body is still being sent.
    active_streams: Gauge,
    /// Per route template: request counts by status and latency.
    routes: Arc<Routes>,
    /// Extractions by outcome, as `EXTRACT_OUTCOMES`.
    extractions: Vec<Counter>,
    extract_duration: Histogram,
    extract_in_flight: Gauge,
    /// Refused by the request budget, and by the extraction budget.
    rate_limited: Vec<Counter>,
    pub relay: RelayMetrics,
    pub live: LiveMetrics,
    /// Extractions an egress lost (bot check, unreachable), by its label.
    egress_refusals: Family<Vec<(&'static str, String)>, Counter>,
    /// The yt-dlp in use: `reelay_ytdlp_info{version}`, and updates by outcome.
    pub ytdlp: YtdlpMetrics,
    /// Bytes and viewers by video, for the status page (not exported:
    /// one series per video would be unbounded).
    pub traffic: Traffic,
    /// `egress_refusals` again, readable: (egress, reason) -> count.
    egress_counts: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

/// The counters the status page charts, read together (the same ones
/// `/metrics` exports).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub errors_5xx: u64,
    pub bytes_to_viewers: u64,
    pub origin_bytes: u64,
    pub served_from_store: u64,
    pub served_following_origin: u64,
    pub evictions_memory: u64,
    pub evictions_disk: u64,
    pub disk_errors: u64,
    pub disk_corrupt: u64,
    pub disk_bytes: u64,
    pub extractions: Vec<(&'static str, u64)>,
    pub extractions_in_flight: i64,
    pub active_streams: i64,
    pub live_streams: i64,
    pub live_viewers: i64,
    pub merges: u64,
    pub transcodes: u64,
    /// (egress, reason, count).
    pub egress_refusals: Vec<(String, &'static str, u64)>,
}

/// Labels whose values are known only at run time.
type OwnedLabels = Vec<(&'static str, String)>;

/// yt-dlp's version and its updates (`YTDLP_UPDATE`).
#[derive(Debug, Clone, Default)]
pub struct YtdlpMetrics {
    info: Family<OwnedLabels, Gauge>,
    /// The labels `info` holds now.
    current: Arc<std::sync::Mutex<Option<OwnedLabels>>>,
    updates: Family<OwnedLabels, Counter>,
}

impl YtdlpMetrics {
    /// The release in use is `version`, with these extras (the old series
    /// goes): `reelay_ytdlp_info{version, js_runtime, ejs, impersonate}`,
    /// each extra `none` when missing.
    pub fn set_info(&self, version: &str, js_runtime: Option<&str>, ejs: Option<&str>, impersonate: Option<&str>) {
        let extra = |v: Option<&str>| v.unwrap_or("none").to_owned();
        let labels = vec![
            ("version", version.to_owned()),
            ("js_runtime", extra(js_runtime)),
            ("ejs", extra(ejs)),
            ("impersonate", extra(impersonate)),
        ];
        let mut current = self.current.lock().expect("version lock");
        if let Some(old) = current.take() {
            self.info.remove(&old);
        }
        self.info.get_or_create(&labels).set(1);
        *current = Some(labels);
    }

    /// An update check ended with `outcome` (`updated`, `current`,
    /// `install_failed`, `check_failed`, `canary_failed`).
    pub fn count_update(&self, outcome: &'static str) {
        self.updates.get_or_create(&vec![("outcome", outcome.to_owned())]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let routes = Arc::new(Routes::default());
        registry.register_collector(Box::new(routes.clone()));
        let hits_family = Family::<Labels, Counter>::default();
        let hits = counters(&hits_family, "tier", &HIT_TIERS);
        registry.register("reelay_cache_hits", "Lookups answered without a new extraction, by tier.", hits_family);
        let cache_misses = Counter::default();
        registry.register("reelay_cache_misses", "Lookups that ran the extractor.", cache_misses.clone());
        registry.register(
            "reelay_extraction_coalesced_waiters",
            "Requests that joined another request's extraction.",
            hits[2].clone(),
        );
        let outcomes = Family::<Labels, Counter>::default();
        let extractions = counters(&outcomes, "outcome", &EXTRACT_OUTCOMES);
        registry.register("reelay_extractions", "Extractions by outcome.", outcomes);
        let extract_duration = Histogram::new(EXTRACT_BUCKETS.iter().copied());
        registry.register("reelay_extraction_duration_seconds", "Extractor run time.", extract_duration.clone());
        let extract_in_flight = Gauge::default();
        registry.register("reelay_extractions_in_flight", "Extractions running now.", extract_in_flight.clone());
        let active_streams = Gauge::default();
        registry.register("reelay_active_streams", "Proxy responses being sent.", active_streams.clone());
        let bytes_served = Counter::default();
        registry.register("reelay_bytes_served", "Body bytes sent by the proxy.", bytes_served.clone());
        let limited = Family::<Labels, Counter>::default();
        let rate_limited = counters(&limited, "limit", &["requests", "extractions"]);
        registry.register("reelay_rate_limited", "Requests refused by a rate limit.", limited);
        let relay = RelayMetrics::register(&mut registry);
        let live = LiveMetrics::register(&mut registry);
        let egress_refusals = Family::default();
        registry.register(
            "reelay_egress_refusals",
            "Extractions lost to the egress (reason: bot_check, unreachable), by egress (proxy host:port, source block, or direct).",
            egress_refusals.clone(),
        );
        let ytdlp = YtdlpMetrics::default();
        registry.register(
            "reelay_ytdlp_info",
            "The yt-dlp release in use and its extras (JavaScript runtime, yt-dlp-ejs, impersonation).",
            ytdlp.info.clone(),
        );
        registry.register(
            "reelay_ytdlp_updates",
            "yt-dlp update checks (YTDLP_UPDATE) by outcome.",
            ytdlp.updates.clone(),
        );
        Metrics {
            registry,
            total_requests: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            cache_misses,
            hits,
            bytes_served,
            active_streams,
            routes,
            extractions,
            extract_duration,
            extract_in_flight,
            rate_limited,
            relay,
            live,
            egress_refusals,
            ytdlp,
            traffic: Traffic::default(),
            egress_counts: Default::default(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsSnapshot {
    pub total_requests: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_hit_rate: f64,
    pub average_latency_ms: f64,
    pub total_bytes_served: u64,
    pub active_streams: i64,
}

/// What `/metrics` reads at scrape time rather than counting.
pub struct Readings {
    /// `None` without Redis.
    pub redis_up: Option<bool>,
    pub rss_bytes: u64,
    /// Bytes of blocks in the relay's memory tier.
    pub store_memory_bytes: u64,
    /// Tasks alive in the runtime: requests, streams, fetches, upkeep. Flat
    /// under steady load, so growth is a leak (the soak watches it).
    pub tasks: u64,
    /// File descriptors open: sockets, disk blocks, child pipes.
    pub open_fds: u64,
}

impl Metrics {
    pub fn record_request(&self, latency: Duration) {
        self.total_requests.fetch_add(1, Relaxed);
        self.latency_us.fetch_add(latency.as_micros() as u64, Relaxed);
    }

    /// A lookup answered by a cache tier (`Some` of a [`HIT_TIERS`] name) or
    /// by a new extraction (`None`).
    pub fn record_lookup(&self, hit: Option<&str>) {
        match hit.and_then(|tier| HIT_TIERS.iter().position(|t| *t == tier)) {
            Some(i) => {
                self.hits[i].inc();
            }
            None => {
                self.cache_misses.inc();
            }
        }
    }

    /// One HTTP request, by route template (`None`: no route matched).
    pub fn record_http(&self, route: Option<&str>, status: u16, latency: Duration) {
        let route = route.unwrap_or("unmatched");
        let found = self.routes.0.read().expect("routes lock").get(route).cloned();
        let series = found.unwrap_or_else(|| {
            let mut routes = self.routes.0.write().expect("routes lock");
            routes
                .entry(route.to_owned())
                .or_insert_with(|| Arc::new(RouteSeries { statuses: RwLock::default(), latency: Latency::new() }))
                .clone()
        });
        series.latency.observe(latency);
        if let Some((_, c)) = series.statuses.read().expect("status lock").iter().find(|(s, _)| *s == status) {
            c.fetch_add(1, Relaxed);
            return;
        }
        let mut statuses = series.statuses.write().expect("status lock");
        match statuses.iter().find(|(s, _)| *s == status) {
            Some((_, c)) => c.fetch_add(1, Relaxed),
            None => {
                statuses.push((status, AtomicU64::new(1)));
                0
            }
        };
    }

    /// An extraction starts; the guard records its end.
    pub fn extraction_started(self: &Arc<Self>) -> ExtractionTimer {
        self.extract_in_flight.inc();
        ExtractionTimer { metrics: self.clone(), started: std::time::Instant::now() }
    }

    pub fn record_rate_limited(&self, extraction: bool) {
        self.rate_limited[extraction as usize].inc();
    }

    /// An extraction through `egress` was refused for `reason`
    /// (`bot_check`, `unreachable`).
    pub fn egress_refused(&self, egress: &str, reason: &'static str) {
        self.egress_refusals.get_or_create(&vec![("egress", egress.to_owned()), ("reason", reason.to_owned())]).inc();
        let mut counts = self.egress_counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry((egress.to_owned(), reason)).or_default() += 1;
    }

    /// The counters the status page charts, read now.
    pub fn totals(&self) -> Totals {
        let (mut requests, mut errors_5xx) = (0, 0);
        for series in self.routes.0.read().expect("routes lock").values() {
            for (status, c) in series.statuses.read().expect("status lock").iter() {
                let n = c.load(Relaxed);
                requests += n;
                if *status >= 500 {
                    errors_5xx += n;
                }
            }
        }
        let r = &self.relay;
        let egress = self.egress_counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Totals {
            requests,
            errors_5xx,
            bytes_to_viewers: self.bytes_served.get(),
            origin_bytes: r.origin_bytes.get(),
            served_from_store: r.served_store.get(),
            served_following_origin: r.served_origin.get(),
            evictions_memory: r.evictions_memory.get(),
            evictions_disk: r.evictions_disk.get(),
            disk_errors: r.disk_errors.get(),
            disk_corrupt: r.disk_corrupt.get(),
            disk_bytes: r.disk_bytes.get().max(0) as u64,
            extractions: EXTRACT_OUTCOMES.iter().copied().zip(self.extractions.iter().map(Counter::get)).collect(),
            extractions_in_flight: self.extract_in_flight.get(),
            active_streams: self.active_streams.get(),
            live_streams: self.live.streams.get(),
            live_viewers: self.live.viewers.get(),
            merges: r.merges.get(),
            transcodes: r.transcodes.get(),
            egress_refusals: egress.iter().map(|((e, why), n)| (e.clone(), *why, *n)).collect(),
        }
    }

    pub fn count_extraction(&self, outcome: &str) {
        if let Some(i) = EXTRACT_OUTCOMES.iter().position(|o| *o == outcome) {
            self.extractions[i].inc();
        }
    }

    /// Everything, in the Prometheus text format (0.0.4).
    pub fn render_prometheus(&self, readings: &Readings) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).expect("writing to a String");
        let mut now = Registry::default();
        if let Some(up) = readings.redis_up {
            now.register("reelay_redis_up", "1 when Redis answers.", ConstGauge::new(up as i64));
        }
        now.register(
            "reelay_relay_store_bytes",
            "Bytes of blocks held in the relay's memory tier.",
            ConstGauge::new(readings.store_memory_bytes as i64),
        );
        now.register("process_resident_memory_bytes", "Resident memory.", ConstGauge::new(readings.rss_bytes as i64));
        now.register("process_open_fds", "Open file descriptors.", ConstGauge::new(readings.open_fds as i64));
        now.register(
            "reelay_runtime_tasks",
            "Tasks alive in the async runtimes (the workers' and the main thread's).",
            ConstGauge::new(readings.tasks as i64),
        );
        prometheus_client::encoding::prometheus_text::encode(&mut out, &now).expect("writing to a String");
        out
    }

    pub fn active_streams(&self) -> i64 {
        self.active_streams.get()
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes_served.inc_by(n);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let hits: u64 = self.hits.iter().map(Counter::get).sum();
        let misses = self.cache_misses.get();
        let total = self.total_requests.load(Relaxed);
        let round2 = |x: f64| (x * 100.0).round() / 100.0;
        MetricsSnapshot {
            total_requests: total,
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: if hits + misses == 0 { 0.0 } else { round2(hits as f64 * 100.0 / (hits + misses) as f64) },
            average_latency_ms: if total == 0 {
                0.0
            } else {
                round2(self.latency_us.load(Relaxed) as f64 / total as f64 / 1000.0)
            },
            total_bytes_served: self.bytes_served.get(),
            active_streams: self.active_streams.get(),
        }
    }
}

/// Records an extraction's outcome and duration when finished.
pub struct ExtractionTimer {
    metrics: Arc<Metrics>,
    started: std::time::Instant,
}

impl ExtractionTimer {
    pub fn finish(self, outcome: &str) {
        self.metrics.extract_duration.observe(self.started.elapsed().as_secs_f64());
        self.metrics.count_extraction(outcome);
    }
}

impl Drop for ExtractionTimer {
    fn drop(&mut self) {
        self.metrics.extract_in_flight.dec();
    }
}

/// Counts one active stream for as long as it lives; dropping it (the body
/// finished, or the client hung up) counts the stream out.
pub struct StreamGuard(Arc<Metrics>, Option<Arc<VideoTraffic>>);

impl StreamGuard {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        metrics.active_streams.inc();
        StreamGuard(metrics, None)
    }

    /// A stream of the relay object `key`, counted for its video too.
    pub fn of(metrics: Arc<Metrics>, key: &str) -> Self {
        let video = metrics.traffic.video(key);
        video.viewers.fetch_add(1, Relaxed);
        metrics.active_streams.inc();
        StreamGuard(metrics, Some(video))
    }

    pub fn add_bytes(&self, n: u64) {
        self.0.add_bytes(n);
        if let Some(v) = &self.1 {
            v.sent(n);
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.active_streams.dec();
        if let Some(v) = &self.1 {
            v.viewers.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_known_names() {
        let m = Metrics::default();
        m.record_http(Some("/health"), 200, Duration::from_millis(2));
        m.record_lookup(Some("memory"));
        m.record_lookup(None);
        m.relay.served_store.inc_by(5);
        let text = m.render_prometheus(&Readings {
            redis_up: Some(true),
            rss_bytes: 1,
            store_memory_bytes: 2,
            tasks: 3,
            open_fds: 4,
        });
        for want in [
            "reelay_http_requests_total{route=\"/health\",status=\"200\"} 1",
            "reelay_http_request_duration_seconds_count{route=\"/health\"} 1",
            "reelay_cache_hits_total{tier=\"memory\"} 1",
            "reelay_cache_misses_total 1",
            "reelay_relay_served_bytes_total{from=\"store\"} 5",
            "reelay_redis_up 1",
            "reelay_relay_store_bytes 2",
            "process_resident_memory_bytes 1",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }
}
