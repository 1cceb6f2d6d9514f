//! What every handler has: [`AppState`] (the server's parts, built by
//! `app`) and the [`Client`] the edge middleware found out.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::access::Access;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::redis::RedisTier;
use crate::service::health::Health;
use crate::service::media::Media;

/// Who is asking, as the edge middleware found out; in every request's
/// extensions.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address (see `TRUSTED_PROXIES`).
    pub ip: std::net::IpAddr,
    /// A digest of the client's valid API key, when it sent one.
    pub key: Option<String>,
}

impl Client {
    /// The rate-limit identity: `key:{digest}` with a valid API key, else `ip:{ip}`.
    pub fn id(&self) -> String {
        match &self.key {
            Some(k) => format!("key:{k}"),
            None => format!("ip:{}", self.ip),
        }
    }
}

/// Everything a handler needs, behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The operators' status board (sampled in the background).
    pub board: Arc<crate::service::status::Board>,
    /// The settings the server started with.
    pub config: Config,
    /// What the streaming use cases share: lookups, the relay, signed
    /// links, indexes, rendered text, muxed segments, subtitles, live.
    pub media: Media,
    /// `CORS_ORIGINS`, parsed once.
    pub cors: super::cors::Cors,
    /// `PROXY_COUNTRIES`, parsed once.
    pub proxy_countries: Vec<String>,
    /// Client addresses, IP lists and API keys.
    pub access: Access,
    /// The per-client request budget (`RATE_LIMIT_*`), when enabled.
    pub request_limit: Option<Limiter>,
    /// The shared tier, for the Redis gauge.
    pub redis: Option<RedisTier>,
    /// Requests being answered (until their head is sent), for load shedding.
    pub in_flight: AtomicU64,
    /// Counters for `/api/v2/stream/metrics` and `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Dependency readings for `/health`.
    pub health: Arc<Health>,
    /// Where request ids come from.
    pub request_ids: RequestIds,
    /// Every runtime of the process (the one that started it and the
    /// workers'), for the task count on `/metrics`.
    pub runtimes: Vec<tokio::runtime::Handle>,
}

/// Request ids: `{prefix}-{counter}`.
pub struct RequestIds {
    /// Random per process, so request ids from several instances differ.
    prefix: u32,
    /// Makes request ids unique within the process.
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds { prefix: uuid::Uuid::new_v4().as_u128() as u32, counter: AtomicU64::new(0) }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// `{prefix:08x}-{counter:x}`, written digit by digit: every request
    /// without an id of its own takes one (`format!` costs more than the rest
    /// of a `/health` answer's strings).
    pub fn next_request_id(&self) -> String {
        let ids = &self.request_ids;
        let counter = ids.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(8 + 1 + 16);
        push_hex(&mut id, u64::from(ids.prefix), 8);
        id.push('-');
        push_hex(&mut id, counter, 1);
        id
    }
}

/// `n` in lowercase hex, at least `width` digits.
fn push_hex(out: &mut String, n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - n.leading_zeros() as usize / 4).max(width);
    for i in (0..digits).rev() {
        out.push(char::from(DIGITS[((n >> (i * 4)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::push_hex;

    #[test]
    fn hex_as_format_writes_it() {
        for n in [0u64, 1, 0xf, 0x10, 0xabc, u64::from(u32::MAX), u64::MAX] {
            let (mut short, mut wide) = (String::new(), String::new());
            push_hex(&mut short, n, 1);
            push_hex(&mut wide, n, 8);
            assert_eq!(short, format!("{n:x}"));
            assert_eq!(wide, format!("{n:08x}"));
        }
    }
}
