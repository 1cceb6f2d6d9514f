//! The caches, each a use of the one [`Tiered`] type (an in-process tier in
//! front of an optional Redis tier, single-flight on misses):
//!
//! - video info ([`VideoCache`]): an entry lives for `VIDEO_INFO_TTL`, but
//!   never past the earliest expiry of the stream URLs in it (minus a
//!   margin), in either tier; across instances the loader takes a short
//!   Redis lock (`lock:{key}`) and the others wait for what it writes;
//! - lasting refusals (removed, private, country, age), remembered for
//!   `ERROR_CACHE_TTL` in both tiers (`refusal:{key}` in Redis), so repeated
//!   lookups of a removed video run yt-dlp once;
//! - playlists ([`PlaylistCache`]), for `CACHE_TTL`, without a lock (a flat
//!   listing is cheap next to a video extraction);
//! - and, memory only, the manifests' file layouts (`manifest::Indexes`).
//!
//! Owns: cached video info, playlists and refusals. May import `extract`
//! (what it caches) and `redis`.

mod tiered;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use self::tiered::{Entry, Settings, Tiered};
use crate::extract::{ExtractError, Playlist, VideoInfo};
use crate::redis::RedisTier;

/// Stream URLs are dropped this long before they say they expire, so that a
/// client handed one still has time to use it.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

/// A cached video: the info, and the client JSON serialised once.
#[derive(Debug)]
pub struct CachedInfo {
    /// The key it is cached under (with its sign-in scope): what the bytes
    /// of its formats are stored under too.
    pub key: String,
    pub info: VideoInfo,
    /// `to_api_json()` of `info`: hits are served from these bytes.
    pub api_json: Bytes,
    /// A digest of `api_json` (hex), worked out once: the info's entity tag.
    pub api_digest: String,
    /// Unix time of the extraction, so streams can refuse old URLs.
    pub fetched_at: i64,
}

impl CachedInfo {
    fn new(key: &str, info: VideoInfo, fetched_at: i64) -> Self {
        let api_json = Bytes::from(info.to_api_json());
        let api_digest = sha2::Sha256::digest(&api_json)[..12].iter().map(|b| format!("{b:02x}")).collect();
        CachedInfo { key: key.to_owned(), info, api_json, api_digest, fetched_at }
    }
}

/// The Redis value: the info and when it was extracted.
#[derive(Serialize, Deserialize)]
struct Stored {
    fetched_at: i64,
    info: VideoInfo,
}

impl Entry for CachedInfo {
    /// What an entry really costs, measured: ~4× its client JSON (the
    /// parsed info, its URLs, the JSON itself) plus ~1 KiB.
    fn weight(&self) -> u32 {
        (self.api_json.len() * 4 + 1024).try_into().unwrap_or(u32::MAX)
    }

    /// `max` (`VIDEO_INFO_TTL`) from the extraction, or until its first
    /// stream URL expires (less the margin), whichever is sooner.
    fn ttl(&self, max: Duration) -> Duration {
        let mut ttl = max;
        if let Some(expires) = self.info.expires_at {
            let left = (expires - EXPIRY_MARGIN_SECS - self.fetched_at).max(0) as u64;
            ttl = ttl.min(Duration::from_secs(left));
        }
        let age = Duration::from_secs((now_unix() - self.fetched_at).max(0) as u64);
        ttl.saturating_sub(age)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&Stored { fetched_at: self.fetched_at, info: self.info.clone() }).ok()
    }

    fn decode(key: &str, bytes: &[u8]) -> Option<Self> {
        let stored: Stored = serde_json::from_slice(bytes).ok()?;
        Some(CachedInfo::new(key, stored.info, stored.fetched_at))
    }
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

/// A lasting refusal, as both tiers keep it.
#[derive(Debug)]
struct Refusal(ExtractError);

/// A refusal as the shared tier keeps it.
#[derive(Serialize, Deserialize)]
struct StoredRefusal {
    /// `ExtractError::outcome`.
    kind: String,
    message: String,
}

/// How long a channel that is not live is remembered so: it may go live
/// any moment, but a crowd asking for it should not run yt-dlp each time.
const NOT_LIVE_TTL: Duration = Duration::from_secs(5);

impl Entry for Refusal {
    fn weight(&self) -> u32 {
        (self.0.to_string().len() + 128) as u32
    }

    fn ttl(&self, max: Duration) -> Duration {
        match self.0 {
            ExtractError::NotLive(_) => max.min(NOT_LIVE_TTL),
            _ => max,
        }
    }

    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&StoredRefusal { kind: self.0.outcome().to_owned(), message: self.0.to_string() }).ok()
    }

    fn decode(_key: &str, bytes: &[u8]) -> Option<Self> {
        let stored: StoredRefusal = serde_json::from_slice(bytes).ok()?;
        let message = stored.message;
        match stored.kind.as_str() {
            "unavailable" => Some(Refusal(ExtractError::Unavailable(message))),
            "not_live" => Some(Refusal(ExtractError::NotLive(message))),
            "sign_in_required" => Some(Refusal(ExtractError::SignInRequired(message))),
            "geo_blocked" => Some(Refusal(ExtractError::GeoBlocked(message))),
            _ => None,
        }
    }
}

impl Entry for Playlist {
    fn weight(&self) -> u32 {
        (self.entries.len() * 512 + 1024).try_into().unwrap_or(u32::MAX)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    fn decode(_key: &str, bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Flat playlists, for `CACHE_TTL`.
pub type PlaylistCache = Tiered<Playlist>;

/// Playlists: 64 MiB in process, `ttl` in both tiers, no lock.
pub fn playlists(redis: Option<RedisTier>, ttl: Duration) -> PlaylistCache {
    Tiered::new(Settings { capacity: 64 * 1024 * 1024, ttl, redis, prefix: "", lock: None })
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Video info and the lasting refusals of videos.
pub struct VideoCache {
    info: Tiered<CachedInfo>,
    /// Lasting refusals, for `ERROR_CACHE_TTL`; `None` when it is 0.
    refusals: Option<Tiered<Refusal>>,
}

impl VideoCache {
    pub fn new(redis: Option<RedisTier>, info_ttl: Duration, extract_timeout: Duration, error_ttl: Duration) -> Self {
        let info = Tiered::new(Settings {
            capacity: 128 * 1024 * 1024,
            ttl: info_ttl,
            redis: redis.clone(),
            prefix: "",
            lock: Some(extract_timeout + Duration::from_secs(5)),
        });
        let refusals = (!error_ttl.is_zero()).then(|| {
            Tiered::new(Settings { capacity: 32 * 1024 * 1024, ttl: error_ttl, redis, prefix: "refusal:", lock: None })
        });
        VideoCache { info, refusals }
    }

    /// Looks `key` up in both tiers, or runs `fetch` once for every caller
    /// that misses at the same time (with Redis, across instances). Entries
    /// older than `max_age` are not used (streams want younger URLs than
    /// metadata needs).
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
        let fresh = |c: &CachedInfo| now_unix() - c.fetched_at <= max_age;
        if let Some(hit) = self.info.get(key).await
            && fresh(&hit)
        {
            return Ok((hit, Source::Memory));
        }
        if let Some(refusals) = &self.refusals
            && let Some(refused) = refusals.get(key).await
        {
            return Err(Arc::new(refused.0.clone()));
        }
        let load = || async {
            // Another instance may have found the video refused.
            if let Some(refused) = self.refused_shared(key).await {
                return Err(refused);
            }
            match fetch().await {
                Ok(info) => Ok(CachedInfo::new(key, info, now_unix())),
                Err(e) => {
                    if let Some(refusals) = &self.refusals
                        && let Some(redis) = refusals.redis()
                        && e.is_lasting()
                    {
                        let refusal = Refusal(e);
                        refusals.write_shared(redis, key, &refusal).await;
                        return Err(refusal.0);
                    }
                    Err(e)
                }
            }
        };
        let result = self.info.get_or_fetch(key, fresh, load).await;
        if let (Err(e), Some(refusals)) = (&result, &self.refusals)
            && e.is_lasting()
        {
            refusals.insert(key, Arc::new(Refusal((**e).clone()))).await;
        }
        result
    }

    /// A lasting refusal of `key` another instance remembered in Redis.
    async fn refused_shared(&self, key: &str) -> Option<ExtractError> {
        let refusals = self.refusals.as_ref()?;
        let redis = refusals.redis()?;
        refusals.read_shared(redis, key, |_| true).await.map(|r| r.0.clone())
    }

    /// Forgets `key` in both tiers (its URLs stopped working).
    /// The entry under `key` in the in-process tier, if any: never Redis,
    /// never an extraction (the status page's titles).
    pub async fn peek(&self, key: &str) -> Option<Arc<CachedInfo>> {
        self.info.get(key).await
    }

    pub async fn invalidate(&self, key: &str) {
        self.info.invalidate(key).await;
    }
}
