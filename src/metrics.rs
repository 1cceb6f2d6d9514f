//! The counters behind `GET /api/v2/stream/metrics`. Plain atomics: they are
//! bumped on every request, so they must cost next to nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default)]
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
}

#[derive(Debug, Serialize)]
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

    pub fn record_lookup(&self, hit: bool) {
        if hit { &self.cache_hits } else { &self.cache_misses }.fetch_add(1, Relaxed);
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
