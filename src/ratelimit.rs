//! Per-client rate limits: GCRA (a leaky bucket that allows a burst of
//! `limit` and refills one request every `window / limit`).
//!
//! The same arithmetic runs in process (per-client state in a bounded moka
//! cache that forgets idle clients) and in Redis (one Lua script, one key per
//! client, so every instance shares one budget and it works on Redis
//! Cluster). When Redis fails, the in-process limiter answers instead of
//! letting everything through or refusing everything.

use std::time::{Duration, Instant};

use moka::ops::compute::Op;

use crate::redis::RedisTier;

/// The answer for one request, with what the `RateLimit-*` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until the next request would be allowed (zero when allowed).
    pub retry_after: Duration,
}

pub struct Limiter {
    /// Requests per window.
    limit: u32,
    /// Time one request "costs": window / limit, in microseconds.
    interval_us: u64,
    /// Per client: the theoretical arrival time, in µs since `epoch`.
    local: moka::sync::Cache<String, u64>,
    epoch: Instant,
    /// The shared tier, when the cache backend is Redis.
    redis: Option<RedisTier>,
    /// Names this limiter's keys in Redis (`rl:{name}:{client}`).
    name: &'static str,
}

impl Limiter {
    pub fn new(name: &'static str, limit: u32, window: Duration, redis: Option<RedisTier>) -> Self {
        let limit = limit.max(1);
        let interval_us = (window.as_micros() as u64 / limit as u64).max(1);
        let local = moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            // A client idle for a whole window has a full bucket: forget it.
            .time_to_idle(window.max(Duration::from_secs(1)))
            .build();
        Limiter { limit, interval_us, local, epoch: Instant::now(), redis, name }
    }

    /// Spends one request of `client`'s budget, if there is one.
    pub async fn check(&self, client: &str) -> Decision {
        if let Some(redis) = &self.redis {
            let key = format!("rl:{}:{client}", self.name);
            match redis.gcra(&key, self.interval_us, self.limit).await {
                Ok([allowed, remaining, retry_us, reset_us]) => {
                    return self.decision(allowed == 1, remaining, retry_us, reset_us);
                }
                Err(e) => tracing::debug!(error = %e, "redis rate limit failed; limiting in process"),
            }
        }
        self.check_local(client)
    }

    fn check_local(&self, client: &str) -> Decision {
        let now = self.epoch.elapsed().as_micros() as u64;
        let (t, tau) = (self.interval_us, self.interval_us * (self.limit as u64 - 1));
        let mut out = None;
        self.local.entry_by_ref(client).and_compute_with(|entry| {
            let tat = entry.map_or(now, |e| e.into_value()).max(now);
            if tat - now > tau {
                out = Some((false, 0, tat - now - tau, tat - now));
                Op::Nop
            } else {
                let new_tat = tat + t;
                out = Some((true, (now + tau + t - new_tat) / t, 0, new_tat - now));
                Op::Put(new_tat)
            }
        });
        let (allowed, remaining, retry, reset) = out.expect("the closure always runs");
        self.decision(allowed, remaining as i64, retry as i64, reset as i64)
    }

    fn decision(&self, allowed: bool, remaining: i64, retry_us: i64, reset_us: i64) -> Decision {
        let us = |v: i64| Duration::from_micros(v.max(0) as u64);
        Decision {
            allowed,
            limit: self.limit,
            remaining: remaining.clamp(0, self.limit as i64) as u32,
            reset: us(reset_us),
            retry_after: us(retry_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_a_burst_then_refuses() {
        let l = Limiter::new("t", 3, Duration::from_secs(60), None);
        let d: Vec<Decision> = [l.check("a").await, l.check("a").await, l.check("a").await, l.check("a").await].into();
        assert_eq!(d.iter().map(|d| d.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert!(d[..3].iter().all(|d| d.allowed) && !d[3].allowed);
        assert!(d[3].retry_after > Duration::from_secs(19) && d[3].retry_after <= Duration::from_secs(20));
        assert!(l.check("b").await.allowed, "clients have their own budgets");
    }
}
