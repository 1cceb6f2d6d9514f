//! The one cache type: an in-process tier (moka: a byte budget, a lifetime
//! per entry, single-flight within the process) in front of an optional
//! shared one (Redis), optionally with a cross-instance lock so that N
//! instances run one load per key between them. Each use is a value type
//! ([`Entry`]) and [`Settings`]: video info, lasting refusals, playlists,
//! the manifests' file layouts.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use moka::Expiry;
use moka::future::Cache;

use crate::lazy::{Lazy, lazy};

use super::Source;
use crate::redis::RedisTier;

/// A value a [`Tiered`] cache keeps.
pub trait Entry: Send + Sync + Sized + 'static {
    /// Bytes it costs in memory (the key is added).
    fn weight(&self) -> u32;

    /// How long it may live from now, at most `max` (the cache's `ttl`)
    /// after it was made: a video lives less when its stream URLs expire.
    fn ttl(&self, max: Duration) -> Duration {
        max
    }

    /// Its bytes in the shared tier; `None`: kept in memory only.
    fn encode(&self) -> Option<Vec<u8>> {
        None
    }

    /// Read back from the shared tier under `key`.
    fn decode(_key: &str, _bytes: &[u8]) -> Option<Self> {
        None
    }
}

/// What a use of the cache sets.
#[derive(Clone)]
pub struct Settings {
    /// Bytes the in-process tier holds at most.
    pub capacity: u64,
    /// How long entries live (in both tiers), unless [`Entry::ttl`] says less.
    pub ttl: Duration,
    /// The shared tier, when there is one.
    pub redis: Option<RedisTier>,
    /// Before the key in Redis (`refusal:`), so uses never share a key.
    pub prefix: &'static str,
    /// Cross-instance single flight: how long another instance's load (its
    /// `lock:{key}`) is waited for; `None` loads without asking.
    pub lock: Option<Duration>,
}

pub struct Tiered<V> {
    /// The in-process tier and single-flight point.
    l1: Lazy<Cache<String, Arc<V>>>,
    settings: Settings,
}

/// Each entry lives for its own TTL, at most the cache's.
struct Lifetime(Duration);

impl<V: Entry> Expiry<String, Arc<V>> for Lifetime {
    fn expire_after_create(&self, _: &String, value: &Arc<V>, _: std::time::Instant) -> Option<Duration> {
        Some(value.ttl(self.0))
    }
}

impl<V: Entry> Tiered<V> {
    pub fn new(settings: Settings) -> Self {
        let (capacity, ttl) = (settings.capacity, settings.ttl.max(Duration::from_secs(1)));
        let l1 = lazy(move || {
            Cache::builder()
                .max_capacity(capacity)
                .weigher(|k: &String, v: &Arc<V>| (k.len() as u32).saturating_add(v.weight()))
                .expire_after(Lifetime(ttl))
                .build()
        });
        Tiered { l1, settings }
    }

    /// The in-process tier's value under `key`.
    pub async fn get(&self, key: &str) -> Option<Arc<V>> {
        self.l1.get(key).await
    }

    /// Keeps `value` under `key` in the in-process tier.
    pub async fn insert(&self, key: &str, value: Arc<V>) {
        self.l1.insert(key.to_owned(), value).await;
    }

    /// Forgets `key` in both tiers.
    pub async fn invalidate(&self, key: &str) {
        self.l1.invalidate(key).await;
        if let Some(redis) = &self.settings.redis
            && let Err(e) = redis.del(&self.shared_key(key)).await
        {
            tracing::debug!(key, error = %e, "redis invalidate failed");
        }
    }

    /// The value under `key` from either tier (one that `fresh` accepts),
    /// or from one `fetch` shared by every caller that misses at the same
    /// time (with a lock, by every instance).
    pub async fn get_or_fetch<E, F, Fut>(
        &self,
        key: &str,
        fresh: impl Fn(&V) -> bool,
        fetch: F,
    ) -> Result<(Arc<V>, Source), Arc<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(hit) = self.l1.get(key).await {
            if fresh(&hit) {
                return Ok((hit, Source::Memory));
            }
            self.l1.invalidate(key).await;
        }
        // Boxed: a miss's future holds the fetch's (an extraction's, a
        // shared tier's round trips), tens of KB that every hit's future
        // would otherwise carry and copy at each of its moves.
        Box::pin(self.miss(key, fresh, fetch)).await
    }

    /// The rest of [`Tiered::get_or_fetch`], once the in-process tier has
    /// nothing fresh.
    async fn miss<E, F, Fut>(&self, key: &str, fresh: impl Fn(&V) -> bool, fetch: F) -> Result<(Arc<V>, Source), Arc<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let from_redis = AtomicBool::new(false);
        let load = async {
            let Some(redis) = &self.settings.redis else { return fetch().await.map(Arc::new) };
            if let Some(found) = self.read_shared(redis, key, &fresh).await {
                from_redis.store(true, Ordering::Relaxed);
                return Ok(found);
            }
            let lock = self.settings.lock.map(|ttl| (format!("lock:{}", self.shared_key(key)), ttl));
            if let Some((lock, ttl)) = &lock
                && let Ok(false) = redis.try_lock(lock, *ttl).await
            {
                // Another instance is loading this key: wait for its result.
                let deadline = tokio::time::Instant::now() + *ttl;
                while tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(found) = self.read_shared(redis, key, &fresh).await {
                        from_redis.store(true, Ordering::Relaxed);
                        return Ok(found);
                    }
                    if !redis.exists(lock).await.unwrap_or(false) {
                        break; // its load failed, or Redis went away: do our own
                    }
                }
            }
            let result = fetch().await;
            if let Ok(value) = &result {
                self.write_shared(redis, key, value).await;
            }
            if let Some((lock, _)) = &lock {
                let _ = redis.del(lock).await;
            }
            result.map(Arc::new)
        };
        let entry = self.l1.entry_by_ref(key).or_try_insert_with(load).await?;
        let source = match (entry.is_fresh(), from_redis.load(Ordering::Relaxed)) {
            (false, _) => Source::Coalesced,
            (true, true) => Source::Redis,
            (true, false) => Source::Extracted,
        };
        Ok((entry.into_value(), source))
    }

    /// The shared tier's value under `key`, when it has one `fresh` accepts.
    pub async fn read_shared(&self, redis: &RedisTier, key: &str, fresh: impl Fn(&V) -> bool) -> Option<Arc<V>> {
        let bytes = match redis.get(&self.shared_key(key)).await {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::debug!(key, error = %e, "redis read failed");
                return None;
            }
        };
        V::decode(key, &bytes).filter(|v| fresh(v)).map(Arc::new)
    }

    /// Writes `value` to the shared tier for its lifetime (not when it has
    /// under a second left).
    pub async fn write_shared(&self, redis: &RedisTier, key: &str, value: &V) {
        let ttl = value.ttl(self.settings.ttl);
        let Some(bytes) = value.encode().filter(|_| ttl >= Duration::from_secs(1)) else { return };
        if let Err(e) = redis.set(&self.shared_key(key), &bytes, ttl).await {
            tracing::debug!(key, error = %e, "redis write failed");
        }
    }

    /// The shared tier, when there is one.
    pub fn redis(&self) -> Option<&RedisTier> {
        self.settings.redis.as_ref()
    }

    fn shared_key(&self, key: &str) -> String {
        format!("{}{key}", self.settings.prefix)
    }
}
