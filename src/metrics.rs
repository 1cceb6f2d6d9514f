//! The counters behind `GET /api/v2/stream/metrics` and `GET /metrics`
//! (Prometheus text). Plain atomics, bumped on every request, so they cost
//! next to nothing; the registry belongs to one server, not to the process,
//! so several servers in one process (the tests) keep their own figures.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::cache::Source;

/// Latency buckets of HTTP requests, in seconds.
const HTTP_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Duration buckets of extractions, in seconds.
const EXTRACT_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];

/// A Prometheus histogram.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; summed when rendered.
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Requests of one route: counts by status, and latency.
#[derive(Debug)]
struct RouteSeries {
    statuses: RwLock<Vec<(u16, AtomicU64)>>,
    latency: Histogram,
}

/// Why an extraction ended, for `reelay_extractions_total{outcome}`.
pub const EXTRACT_OUTCOMES: [&str; 7] =
    ["ok", "unavailable", "failed", "timeout", "not_runnable", "refused", "rate_limited"];

#[derive(Debug)]
pub struct Metrics {
    /// Video and stream requests.
    total_requests: AtomicU64,
    /// Lookups answered without running the extractor for this request.
    cache_hits: AtomicU64,
    /// Lookups that ran the extractor.
    cache_misses: AtomicU64,
    /// Sum of the latencies of `total_requests`, in microseconds.
    latency_us: AtomicU64,
    /// Body bytes handed to clients by the proxy.
    bytes_served: AtomicU64,
    /// Proxy responses whose body is still being sent.
    active_streams: AtomicI64,
    /// Per route template: request counts by status and latency.
    routes: RwLock<HashMap<String, Arc<RouteSeries>>>,
    /// Hits by tier: memory, redis, coalesced.
    hits_by_tier: [AtomicU64; 3],
    /// Extractions by outcome, indexed as `EXTRACT_OUTCOMES`.
    extractions: [AtomicU64; 7],
    extract_duration: Histogram,
    extract_in_flight: AtomicI64,
    /// Refused by the request budget, and by the extraction budget.
    rate_limited: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            total_requests: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            bytes_served: AtomicU64::new(0),
            active_streams: AtomicI64::new(0),
            routes: RwLock::default(),
            hits_by_tier: Default::default(),
            extractions: Default::default(),
            extract_duration: Histogram::new(EXTRACT_BUCKETS),
            extract_in_flight: AtomicI64::new(0),
            rate_limited: Default::default(),
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

impl Metrics {
    pub fn record_request(&self, latency: Duration) {
        self.total_requests.fetch_add(1, Relaxed);
        self.latency_us.fetch_add(latency.as_micros() as u64, Relaxed);
    }

    pub fn record_lookup(&self, source: Source) {
        let tier = match source {
            Source::Memory => 0,
            Source::Redis => 1,
            Source::Coalesced => 2,
            Source::Extracted => {
                self.cache_misses.fetch_add(1, Relaxed);
                return;
            }
        };
        self.cache_hits.fetch_add(1, Relaxed);
        self.hits_by_tier[tier].fetch_add(1, Relaxed);
    }

    /// One HTTP request, by route template (`None`: no route matched).
    pub fn record_http(&self, route: Option<&str>, status: u16, latency: Duration) {
        let route = route.unwrap_or("unmatched");
        let found = self.routes.read().expect("routes lock").get(route).cloned();
        let series = found.unwrap_or_else(|| {
            let mut routes = self.routes.write().expect("routes lock");
            routes
                .entry(route.to_owned())
                .or_insert_with(|| {
                    Arc::new(RouteSeries { statuses: RwLock::default(), latency: Histogram::new(HTTP_BUCKETS) })
                })
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
        self.extract_in_flight.fetch_add(1, Relaxed);
        ExtractionTimer { metrics: self.clone(), started: std::time::Instant::now() }
    }

    pub fn record_rate_limited(&self, extraction: bool) {
        self.rate_limited[extraction as usize].fetch_add(1, Relaxed);
    }

    pub fn count_extraction(&self, outcome: &str) {
        if let Some(i) = EXTRACT_OUTCOMES.iter().position(|o| *o == outcome) {
            self.extractions[i].fetch_add(1, Relaxed);
        }
    }

    /// Everything in Prometheus text format. `redis_up` is `None` without Redis.
    pub fn render_prometheus(&self, redis_up: Option<bool>, rss_bytes: u64) -> String {
        let mut o = String::with_capacity(8192);
        let _ = writeln!(o, "# HELP reelay_http_requests_total HTTP requests by route template and status.");
        let _ = writeln!(o, "# TYPE reelay_http_requests_total counter");
        let routes = self.routes.read().expect("routes lock");
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        for name in &names {
            for (status, c) in routes[*name].statuses.read().expect("status lock").iter() {
                let _ = writeln!(
                    o,
                    "reelay_http_requests_total{{route=\"{name}\",status=\"{status}\"}} {}",
                    c.load(Relaxed)
                );
            }
        }
        let _ =
            writeln!(o, "# HELP reelay_http_request_duration_seconds Time to the response head, by route template.");
        let _ = writeln!(o, "# TYPE reelay_http_request_duration_seconds histogram");
        for name in &names {
            routes[*name].latency.render(&mut o, "reelay_http_request_duration_seconds", &format!("route=\"{name}\""));
        }
        drop(routes);
        let _ = writeln!(o, "# HELP reelay_cache_hits_total Lookups answered without a new extraction, by tier.");
        let _ = writeln!(o, "# TYPE reelay_cache_hits_total counter");
        for (tier, c) in ["memory", "redis", "coalesced"].iter().zip(&self.hits_by_tier) {
            let _ = writeln!(o, "reelay_cache_hits_total{{tier=\"{tier}\"}} {}", c.load(Relaxed));
        }
        let simple = |o: &mut String, name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        simple(
            &mut o,
            "reelay_cache_misses_total",
            "counter",
            "Lookups that ran the extractor.",
            self.cache_misses.load(Relaxed).to_string(),
        );
        simple(
            &mut o,
            "reelay_extraction_coalesced_waiters_total",
            "counter",
            "Requests that joined another request's extraction.",
            self.hits_by_tier[2].load(Relaxed).to_string(),
        );
        let _ = writeln!(o, "# HELP reelay_extractions_total Extractions by outcome.");
        let _ = writeln!(o, "# TYPE reelay_extractions_total counter");
        for (outcome, c) in EXTRACT_OUTCOMES.iter().zip(&self.extractions) {
            let _ = writeln!(o, "reelay_extractions_total{{outcome=\"{outcome}\"}} {}", c.load(Relaxed));
        }
        let _ = writeln!(o, "# HELP reelay_extraction_duration_seconds Extractor run time.");
        let _ = writeln!(o, "# TYPE reelay_extraction_duration_seconds histogram");
        self.extract_duration.render(&mut o, "reelay_extraction_duration_seconds", "");
        simple(
            &mut o,
            "reelay_extractions_in_flight",
            "gauge",
            "Extractions running now.",
            self.extract_in_flight.load(Relaxed).to_string(),
        );
        simple(
            &mut o,
            "reelay_active_streams",
            "gauge",
            "Proxy responses being sent.",
            self.active_streams.load(Relaxed).to_string(),
        );
        simple(
            &mut o,
            "reelay_bytes_served_total",
            "counter",
            "Body bytes sent by the proxy.",
            self.bytes_served.load(Relaxed).to_string(),
        );
        let _ = writeln!(o, "# HELP reelay_rate_limited_total Requests refused by a rate limit.");
        let _ = writeln!(o, "# TYPE reelay_rate_limited_total counter");
        for (limit, c) in ["requests", "extractions"].iter().zip(&self.rate_limited) {
            let _ = writeln!(o, "reelay_rate_limited_total{{limit=\"{limit}\"}} {}", c.load(Relaxed));
        }
        if let Some(up) = redis_up {
            simple(&mut o, "reelay_redis_up", "gauge", "1 when Redis answers.", (up as u8).to_string());
        }
        simple(&mut o, "process_resident_memory_bytes", "gauge", "Resident memory.", rss_bytes.to_string());
        o
    }

    pub fn active_streams(&self) -> i64 {
        self.active_streams.load(Relaxed)
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes_served.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let (hits, misses) = (self.cache_hits.load(Relaxed), self.cache_misses.load(Relaxed));
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
            total_bytes_served: self.bytes_served.load(Relaxed),
            active_streams: self.active_streams.load(Relaxed),
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
        self.metrics.extract_duration.observe(self.started.elapsed());
        self.metrics.count_extraction(outcome);
    }
}

impl Drop for ExtractionTimer {
    fn drop(&mut self) {
        self.metrics.extract_in_flight.fetch_sub(1, Relaxed);
    }
}

/// Counts one active stream for as long as it lives; dropping it (the body
/// finished, or the client hung up) counts the stream out.
pub struct StreamGuard(Arc<Metrics>);

impl StreamGuard {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        metrics.active_streams.fetch_add(1, Relaxed);
        StreamGuard(metrics)
    }

    pub fn add_bytes(&self, n: u64) {
        self.0.add_bytes(n);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.active_streams.fetch_sub(1, Relaxed);
    }
}
