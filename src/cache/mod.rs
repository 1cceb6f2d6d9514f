//! The video-info cache: an in-process tier (moka) in front of an optional
//! shared one (Redis), with single-flight on misses.
//!
//! - In one process, moka's `entry().or_try_insert_with` runs one load per
//!   key and hands its result to every concurrent caller.
//! - Across instances, the loader takes a short Redis lock (`lock:{key}`);
//!   the others poll for the value the lock holder writes.
//! - An entry lives for `VIDEO_INFO_TTL`, but never past the earliest expiry
//!   of the stream URLs in it (minus a margin), in either tier.
//! - A lasting refusal (removed, private, country, age) is remembered for
//!   `ERROR_CACHE_TTL` in both tiers (`refusal:{key}` in Redis), so repeated
//!   lookups of a removed video run yt-dlp once.
//!
//! Owns: cached video info, playlists and refusals. May import `extract`
//! (what it caches) and `redis`.

mod ttl;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use serde::{Deserialize, Serialize};

pub use self::ttl::TtlCache;
use crate::extract::{ExtractError, VideoInfo};
use crate::redis::RedisTier;

/// Stream URLs are dropped this long before they say they expire, so that a
/// client handed one still has time to use it.
const EXPIRY_MARGIN_SECS: i64 = 60;

/// A cached video: the info, and the client JSON serialised once.
#[derive(Debug)]
pub struct CachedInfo {
    /// The key it is cached under (with its sign-in scope): what the bytes
    /// of its formats are stored under too.
    pub key: String,
    pub info: VideoInfo,
    /// `to_api_json()` of `info`: hits are served from these bytes.
    pub api_json: Bytes,
    /// Unix time of the extraction, so streams can refuse old URLs.
    pub fetched_at: i64,
    /// How long the in-process tier keeps it.
    ttl: Duration,
    /// Where this value was loaded from when it entered the in-process tier.
    loaded_from: Source,
}

/// Where a lookup was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The in-process tier.
    Memory,
    /// The shared tier.
    Redis,
    /// Another request's extraction, joined while it ran.
    Coalesced,
    /// A new extraction by this request.
    Extracted,
}

impl Source {
    /// The cache tier that answered, as the metrics name it; `None` for a
    /// new extraction.
    pub fn hit_tier(self) -> Option<&'static str> {
        match self {
            Source::Memory => Some("memory"),
            Source::Redis => Some("redis"),
            Source::Coalesced => Some("coalesced"),
            Source::Extracted => None,
        }
    }
}

/// The Redis value: the info and when it was extracted.
#[derive(Serialize, Deserialize)]
struct Stored {
    fetched_at: i64,
    info: VideoInfo,
}

struct PerEntryTtl;

impl Expiry<String, Arc<CachedInfo>> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Arc<CachedInfo>, _: std::time::Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub struct VideoCache {
    /// The in-process tier; also the single-flight point within a process.
    l1: Cache<String, Arc<CachedInfo>>,
    /// The shared tier, when `CACHE_BACKEND=redis`.
    redis: Option<RedisTier>,
    /// `VIDEO_INFO_TTL`: the longest any entry lives.
    info_ttl: Duration,
    /// How long another instance's extraction lock is waited for.
    lock_ttl: Duration,
    /// Lasting refusals, for `ERROR_CACHE_TTL`; `None` when it is 0.
    refusals: Option<Cache<String, Arc<ExtractError>>>,
    /// `ERROR_CACHE_TTL`.
    error_ttl: Duration,
}

/// A refusal as the shared tier keeps it.
#[derive(Serialize, Deserialize)]
struct StoredRefusal {
    /// `ExtractError::outcome`.
    kind: String,
    message: String,
}

impl StoredRefusal {
    fn of(e: &ExtractError) -> Self {
        StoredRefusal { kind: e.outcome().to_owned(), message: e.to_string() }
    }

    fn error(self) -> Option<ExtractError> {
        match self.kind.as_str() {
            "unavailable" => Some(ExtractError::Unavailable(self.message)),
            "sign_in_required" => Some(ExtractError::SignInRequired(self.message)),
            "geo_blocked" => Some(ExtractError::GeoBlocked(self.message)),
            _ => None,
        }
    }
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl VideoCache {
    pub fn new(redis: Option<RedisTier>, info_ttl: Duration, extract_timeout: Duration, error_ttl: Duration) -> Self {
        let l1 = Cache::builder()
            .max_capacity(128 * 1024 * 1024)
            // What an entry really costs, measured: ~4× its client JSON
            // (the parsed info, its URLs, the JSON itself) plus ~1 KiB.
            .weigher(|k: &String, v: &Arc<CachedInfo>| {
                (k.len() + v.api_json.len() * 4 + 1024).try_into().unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        let refusals =
            (!error_ttl.is_zero()).then(|| Cache::builder().max_capacity(100_000).time_to_live(error_ttl).build());
        VideoCache { l1, redis, info_ttl, lock_ttl: extract_timeout + Duration::from_secs(5), refusals, error_ttl }
    }

    /// Looks `key` up in both tiers, or runs `fetch` once for every caller
    /// that misses at the same time. Entries older than `max_age` are not
    /// used (streams want younger URLs than metadata needs).
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: &str,
        max_age: Duration,
        fetch: F,
    ) -> Result<(Arc<CachedInfo>, Source), Arc<ExtractError>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<VideoInfo, ExtractError>>,
    {
        let max_age = max_age.as_secs() as i64;
        if let Some(hit) = self.l1.get(key).await {
            if now_unix() - hit.fetched_at <= max_age {
                return Ok((hit, Source::Memory));
            }
            self.l1.invalidate(key).await;
        }
        if let Some(refused) = self.refused(key).await {
            return Err(refused);
        }
        let entry = match self.l1.entry_by_ref(key).or_try_insert_with(self.load(key, max_age, fetch)).await {
            Ok(entry) => entry,
            Err(e) => {
                if let (Some(refusals), true) = (&self.refusals, e.is_lasting()) {
                    refusals.insert(key.to_owned(), e.clone()).await;
                }
                return Err(e);
            }
        };
        let source = if entry.is_fresh() { entry.value().loaded_from } else { Source::Coalesced };
        Ok((entry.into_value(), source))
    }

    /// A lasting refusal of `key` remembered in this process.
    async fn refused(&self, key: &str) -> Option<Arc<ExtractError>> {
        self.refusals.as_ref()?.get(key).await
    }

    /// A lasting refusal of `key` another instance remembered in Redis.
    async fn refused_shared(&self, redis: &RedisTier, key: &str) -> Option<ExtractError> {
        self.refusals.as_ref()?;
        let bytes = redis.get(&format!("refusal:{key}")).await.ok()??;
        serde_json::from_slice::<StoredRefusal>(&bytes).ok()?.error()
    }

    /// Forgets `key` in both tiers (its URLs stopped working).
    pub async fn invalidate(&self, key: &str) {
        self.l1.invalidate(key).await;
        if let Some(Err(e)) = match &self.redis {
            Some(r) => Some(r.del(key).await),
            None => None,
        } {
            tracing::debug!(key, error = %e, "redis invalidate failed");
        }
    }

    async fn load<F, Fut>(&self, key: &str, max_age: i64, fetch: F) -> Result<Arc<CachedInfo>, ExtractError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<VideoInfo, ExtractError>>,
    {
        let Some(redis) = &self.redis else {
            return Ok(self.entry(key, fetch().await?, now_unix(), Source::Extracted));
        };
        if let Some(found) = self.read_shared(redis, key, max_age).await {
            return Ok(found);
        }
        if let Some(refused) = self.refused_shared(redis, key).await {
            return Err(refused);
        }
        let lock = format!("lock:{key}");
        if let Ok(false) = redis.try_lock(&lock, self.lock_ttl).await {
            // Another instance is extracting this video: wait for its result.
            let deadline = tokio::time::Instant::now() + self.lock_ttl;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(found) = self.read_shared(redis, key, max_age).await {
                    return Ok(found);
                }
                if let Some(refused) = self.refused_shared(redis, key).await {
                    return Err(refused);
                }
                if !redis.exists(&lock).await.unwrap_or(false) {
                    break; // its extraction failed, or Redis went away: do our own
                }
            }
        }
        let result = fetch().await;
        let stored = match &result {
            Ok(info) => self.write_shared(redis, key, info).await,
            Err(e) if e.is_lasting() && self.refusals.is_some() => {
                let bytes = serde_json::to_vec(&StoredRefusal::of(e)).expect("plain struct");
                if let Err(e) = redis.set(&format!("refusal:{key}"), &bytes, self.error_ttl).await {
                    tracing::debug!(key, error = %e, "redis write failed");
                }
                None
            }
            Err(_) => None,
        };
        let _ = redis.del(&lock).await;
        Ok(self.entry(key, result?, stored.unwrap_or_else(now_unix), Source::Extracted))
    }

    async fn read_shared(&self, redis: &RedisTier, key: &str, max_age: i64) -> Option<Arc<CachedInfo>> {
        let bytes = match redis.get(key).await {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(key, error = %e, "redis read failed");
                return None;
            }
        };
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        (now_unix() - stored.fetched_at <= max_age)
            .then(|| self.entry(key, stored.info, stored.fetched_at, Source::Redis))
    }

    /// Writes the info to Redis; returns its `fetched_at`.
    async fn write_shared(&self, redis: &RedisTier, key: &str, info: &VideoInfo) -> Option<i64> {
        let fetched_at = now_unix();
        let ttl = self.ttl_for(info, fetched_at);
        if ttl >= Duration::from_secs(1) {
            let bytes = serde_json::to_vec(&Stored { fetched_at, info: info.clone() }).ok()?;
            if let Err(e) = redis.set(key, &bytes, ttl).await {
                tracing::debug!(key, error = %e, "redis write failed");
            }
        }
        Some(fetched_at)
    }

    fn ttl_for(&self, info: &VideoInfo, fetched_at: i64) -> Duration {
        let mut ttl = self.info_ttl;
        if let Some(expires) = info.expires_at {
            let left = (expires - EXPIRY_MARGIN_SECS - fetched_at).max(0) as u64;
            ttl = ttl.min(Duration::from_secs(left));
        }
        ttl
    }

    fn entry(&self, key: &str, info: VideoInfo, fetched_at: i64, loaded_from: Source) -> Arc<CachedInfo> {
        let age = Duration::from_secs((now_unix() - fetched_at).max(0) as u64);
        let ttl = self.ttl_for(&info, fetched_at).saturating_sub(age);
        let api_json = Bytes::from(info.to_api_json());
        Arc::new(CachedInfo { key: key.to_owned(), info, api_json, fetched_at, ttl, loaded_from })
    }
}
