//! A cache for values with one fixed lifetime (`CACHE_TTL`): playlists.
//! The same two tiers as video info, and single-flight within a process;
//! no per-entry expiry (playlists carry no stream URLs) and no cross-instance
//! lock (a flat playlist listing is cheap next to a video extraction).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use moka::future::Cache;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Source;
use crate::extract::ExtractError;
use crate::redis::RedisTier;

pub struct TtlCache<V> {
    /// The in-process tier and single-flight point.
    l1: Cache<String, Arc<V>>,
    /// The shared tier, when `CACHE_BACKEND=redis`.
    redis: Option<RedisTier>,
    /// How long entries live in both tiers.
    ttl: Duration,
}

impl<V> TtlCache<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// `weight` estimates an entry's size in bytes; the in-process tier
    /// holds at most `capacity` of them.
    pub fn new(redis: Option<RedisTier>, ttl: Duration, capacity: u64, weight: fn(&V) -> u32) -> Self {
        let l1 = Cache::builder()
            .max_capacity(capacity)
            .weigher(move |k: &String, v: &Arc<V>| (k.len() as u32).saturating_add(weight(v)))
            .time_to_live(ttl.max(Duration::from_secs(1)))
            .build();
        TtlCache { l1, redis, ttl }
    }

    /// The value under `key` from either tier, or from one `fetch` shared by
    /// every caller that misses at the same time.
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> Result<(Arc<V>, Source), Arc<ExtractError>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ExtractError>>,
    {
        if let Some(hit) = self.l1.get(key).await {
            return Ok((hit, Source::Memory));
        }
        let from_redis = AtomicBool::new(false);
        let load = async {
            if let Some(redis) = &self.redis {
                match redis.get(key).await {
                    Ok(Some(bytes)) => {
                        if let Ok(value) = serde_json::from_slice::<V>(&bytes) {
                            from_redis.store(true, Ordering::Relaxed);
                            return Ok(Arc::new(value));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(key, error = %e, "redis read failed"),
                }
            }
            let value = fetch().await?;
            if let Some(redis) = &self.redis
                && let Ok(bytes) = serde_json::to_vec(&value)
                && let Err(e) = redis.set(key, &bytes, self.ttl).await
            {
                tracing::debug!(key, error = %e, "redis write failed");
            }
            Ok(Arc::new(value))
        };
        let entry = self.l1.entry_by_ref(key).or_try_insert_with(load).await?;
        let source = match (entry.is_fresh(), from_redis.load(Ordering::Relaxed)) {
            (false, _) => Source::Coalesced,
            (true, true) => Source::Redis,
            (true, false) => Source::Extracted,
        };
        Ok((entry.into_value(), source))
    }
}
