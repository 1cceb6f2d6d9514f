//! The use cases, with no HTTP in them. `VideoService` answers "what is this
//! video?" (and "what is in this playlist?") from the cache or one
//! extraction, spending the client's extraction budget on a miss; `play`
//! turns a stream request into what to serve; `health` and `signin` keep the
//! readings `/health` and the extractions need.
//!
//! Owns: lookups, the extraction gate, play plans. May import `cache`,
//! `extract`, `relay` (its object specs), `select`, `platform` and the leaves;
//! not `http`, `config` or `app`.

pub mod answer;
pub mod error;
pub mod health;
pub mod live_links;
pub mod manifests;
pub mod media;
pub mod play;
pub mod rewritten;
pub mod signin;
pub mod status;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

/// The clock every grant, link expiry and cache entry is read against
/// (Unix seconds).
pub use crate::cache::now_unix;
use crate::cache::{CachedInfo, PlaylistCache, Source, VideoCache};
/// The JSON shapes the API answers in (video info, its formats, playlist
/// pages), as the extraction makes them; `http::docs` lists them in OpenAPI.
pub use crate::extract::{ApiFormat, ApiVideo, PlaylistEntry, PlaylistPage};
use crate::extract::{ExtractError, Extractor, Format, Playlist, SabrFormat};
use crate::metrics::Metrics;
use crate::net;
use crate::platform::PlaylistRef;
use crate::platform::VideoRef;
use crate::ratelimit::Limiter;
use crate::relay::sabr::SabrSource;
use crate::relay::{Locator, RelayError, Source as BytesSource};
use crate::sabr;
use crate::service::signin::{CookieJar, Reading, SignIn};
use futures_util::future::BoxFuture;
use url::Url;

/// What a lookup is for; streams need younger URLs than metadata does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Info,
    Stream,
}

/// The client's extraction budget and its identity, asked just before the
/// extractor would run, so that cache hits never spend it.
pub type Gate<'a> = Option<(&'a Limiter, &'a str)>;

pub struct VideoService {
    /// Both cache tiers and the single-flight point.
    pub cache: VideoCache,
    /// Flat playlists, kept for `CACHE_TTL`.
    playlists: PlaylistCache,
    /// Runs yt-dlp; shared with the health check.
    pub extractor: Arc<Extractor>,
    /// `COOKIES_DIR`: which extractions run signed in, and their key scope.
    pub signin: SignIn,
    /// `ALLOW_PRIVATE_NETWORKS`.
    allow_private: bool,
    /// `VIDEO_INFO_TTL`: the oldest info served as metadata.
    info_ttl: Duration,
    /// `STREAM_URL_TTL`: the oldest info whose URLs are streamed.
    stream_ttl: Duration,
    /// The per-client budget of cache misses (`EXTRACT_RATE_LIMIT`).
    extract_limit: Option<Limiter>,
    /// Lookups by tier, and budget refusals.
    metrics: Arc<Metrics>,
    /// Videos extracted again in the last 10 s because their stream URL
    /// was refused: a fresh URL refused again that soon is the answer (the
    /// platform refuses this server, or SABR wants an attestation the new
    /// PO token did not bring), not a reason to run yt-dlp once more for
    /// each format and each reader.
    extracted_again: crate::lazy::Lazy<moka::sync::Cache<String, ()>>,
}

/// The settings of a [`VideoService`], from `Config`.
pub struct Settings {
    pub allow_private: bool,
    pub info_ttl: Duration,
    pub stream_ttl: Duration,
    /// `EXTRACT_RATE_LIMIT`, when set.
    pub extract_limit: Option<Limiter>,
    pub metrics: Arc<Metrics>,
}

impl VideoService {
    pub fn new(
        cache: VideoCache,
        playlists: PlaylistCache,
        extractor: Arc<Extractor>,
        signin: SignIn,
        settings: Settings,
    ) -> Self {
        let Settings { allow_private, info_ttl, stream_ttl, extract_limit, metrics } = settings;
        VideoService {
            cache,
            playlists,
            extractor,
            signin,
            allow_private,
            info_ttl,
            stream_ttl,
            extract_limit,
            metrics,
            extracted_again: crate::lazy::lazy(|| {
                moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(10)).build()
            }),
        }
    }

    /// A client's lookup of a video: counted by the tier that answered, a
    /// miss spending the client's extraction budget (`client_id` is asked
    /// for only when there is one).
    pub async fn lookup(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        client_id: impl FnOnce() -> String,
    ) -> Result<Arc<CachedInfo>, Arc<ExtractError>> {
        let id = self.extract_limit.as_ref().map(|_| client_id());
        let result = self.info(video, purpose, self.gate(id.as_deref())).await;
        self.counted(result)
    }

    /// A client's lookup of a playlist, like [`VideoService::lookup`].
    pub async fn lookup_playlist(
        &self,
        list: &PlaylistRef,
        client_id: impl FnOnce() -> String,
    ) -> Result<Arc<Playlist>, Arc<ExtractError>> {
        let id = self.extract_limit.as_ref().map(|_| client_id());
        let result = self.playlist(list, self.gate(id.as_deref())).await;
        self.counted(result)
    }

    fn gate<'a>(&'a self, client_id: Option<&'a str>) -> Gate<'a> {
        self.extract_limit.as_ref().zip(client_id)
    }

    /// Counts a lookup's answer: its tier, or a spent budget.
    fn counted<T>(&self, result: Result<(T, Source), Arc<ExtractError>>) -> Result<T, Arc<ExtractError>> {
        match result {
            Ok((value, source)) => {
                self.metrics.record_lookup(source.hit_tier());
                Ok(value)
            }
            Err(e) => {
                if let ExtractError::RateLimited(_) = *e {
                    self.metrics.record_rate_limited(true);
                }
                Err(e)
            }
        }
    }

    /// Forgets the video in both tiers (its URLs stopped working).
    pub async fn invalidate(&self, video: &VideoRef) {
        let signin = self.signin.for_platform(video.platform()).await;
        self.cache.invalidate(&scoped(signin.as_deref(), video.cache_key())).await;
    }

    /// Drops `video`'s info so that the next lookup extracts it again,
    /// unless that was done in the last 10 s (`false`).
    pub async fn extract_again(&self, video: &VideoRef) -> bool {
        // Checked and marked at once: of readers refused together, one
        // extracts.
        let first = self.extracted_again.entry(video.cache_key().to_owned()).or_insert(()).is_fresh();
        if first {
            self.invalidate(video).await;
        }
        first
    }

    /// Notes that `video` was just extracted again for new URLs (renewed
    /// before they expired): one refused within 10 s is the answer too.
    pub fn extracted_now(&self, video: &VideoRef) {
        self.extracted_again.insert(video.cache_key().to_owned(), ());
    }

    /// The video's info, from a cache tier or one shared extraction.
    pub async fn info(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        gate: Gate<'_>,
    ) -> Result<(Arc<CachedInfo>, Source), Arc<ExtractError>> {
        let max_age = match purpose {
            Purpose::Info => self.info_ttl,
            Purpose::Stream => self.stream_ttl.min(self.info_ttl),
        };
        let signin = self.signin.for_platform(video.platform()).await;
        let key = scoped(signin.as_deref(), video.cache_key());
        let extract = || async {
            let generic = match video {
                VideoRef::Generic { url } => Some(url),
                VideoRef::Known { .. } => None,
            };
            let jar = self.before_extraction(gate, generic, signin.as_deref()).await?;
            let cookies = jar.as_ref().map(CookieJar::path);
            self.extractor.extract(&video.source_url(), video.platform_name(), cookies).await
        };
        let found = self.cache.get_or_fetch(&key, max_age, extract).await?;
        if self.extractor.egress().honours(&found.0.info.route) {
            return Ok(found);
        }
        // Extracted through a proxy or an address this server no longer has
        // (another instance's, or before a restart): its URLs may only work
        // from there, so it is extracted again.
        self.cache.invalidate(&key).await;
        self.cache.get_or_fetch(&key, max_age, extract).await
    }

    /// The playlist's entries, from a cache tier or one shared extraction.
    pub async fn playlist(
        &self,
        list: &PlaylistRef,
        gate: Gate<'_>,
    ) -> Result<(Arc<Playlist>, Source), Arc<ExtractError>> {
        let signin = self.signin.for_platform(list.platform()).await;
        let key = scoped(signin.as_deref(), list.cache_key());
        self.playlists
            .get_or_fetch(
                &key,
                |_| true,
                || async {
                    let generic = match list {
                        PlaylistRef::Generic { url } => Some(url),
                        _ => None,
                    };
                    let jar = self.before_extraction(gate, generic, signin.as_deref()).await?;
                    let cookies = jar.as_ref().map(CookieJar::path);
                    self.extractor.extract_playlist(&list.source_url(), list.platform_name(), cookies).await
                },
            )
            .await
    }

    /// What runs just before the extractor: the client's extraction budget
    /// is spent, another site's URL is checked against private networks, and
    /// the platform's cookie file is copied for the run.
    async fn before_extraction(
        &self,
        gate: Gate<'_>,
        generic: Option<&Url>,
        signin: Option<&Reading>,
    ) -> Result<Option<CookieJar>, ExtractError> {
        if let Some((limiter, client)) = gate {
            let d = limiter.check(client).await;
            if !d.allowed {
                return Err(ExtractError::RateLimited(d.retry_after.as_secs().max(1)));
            }
        }
        if let Some(url) = generic {
            net::check_url(url, self.allow_private).await.map_err(|e| match e {
                net::UrlRefusal::Private(why) => ExtractError::Refused(why),
                net::UrlRefusal::Unresolvable(why) => ExtractError::Unresolvable(why),
            })?;
        }
        Ok(match signin {
            Some(reading) => reading.jar().await,
            None => None,
        })
    }
}

/// Where a format's bytes are: its URL in the extraction the request was
/// served from, and a newer extraction when the origin refuses that URL (it
/// expired, or was revoked). The relay asks this whenever it fetches a range.
pub struct FormatSource {
    service: Arc<VideoService>,
    video: VideoRef,
    format_id: String,
    /// The extraction the URL comes from, and the URL with its headers.
    current: std::sync::Mutex<(Arc<CachedInfo>, Locator)>,
    /// When URLs about to expire were last renewed: at most once in 30 s,
    /// so that an origin whose URLs live less than the cache's minute is
    /// not extracted again before every fetch.
    renewed: std::sync::Mutex<Option<std::time::Instant>>,
}

impl FormatSource {
    /// The source of `format_id` in `cached`, the info a request was served from.
    pub fn new(service: Arc<VideoService>, video: VideoRef, cached: Arc<CachedInfo>, format_id: &str) -> Self {
        let locator = Self::locator(&cached, format_id).unwrap_or(Locator {
            url: String::new(),
            headers: Default::default(),
            route: Default::default(),
            sabr: None,
        });
        FormatSource {
            service,
            video,
            format_id: format_id.to_owned(),
            current: std::sync::Mutex::new((cached, locator)),
            renewed: std::sync::Mutex::new(None),
        }
    }

    fn locator(cached: &CachedInfo, format_id: &str) -> Option<Locator> {
        let f = cached.info.formats.iter().find(|f| f.format_id == format_id)?;
        let sabr = f.sabr.as_ref().and_then(|s| sabr_source(cached, f, s)).map(Arc::new);
        Some(Locator { url: f.url.clone(), headers: f.http_headers.clone(), route: cached.info.route.clone(), sabr })
    }

    fn current(&self) -> std::sync::MutexGuard<'_, (Arc<CachedInfo>, Locator)> {
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cache's info when it is newer than `old` (whose URLs are about
    /// to expire, so the cache let it go and a lookup extracts again);
    /// `None` keeps the old URL, still good for a while, when the lookup
    /// fails or brings nothing newer.
    async fn renew(&self, old: &Arc<CachedInfo>) -> Option<Locator> {
        {
            let mut renewed = self.renewed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if renewed.is_some_and(|t| t.elapsed() < Duration::from_secs(30)) {
                return None;
            }
            *renewed = Some(std::time::Instant::now());
        }
        let (cached, _) = self.service.info(&self.video, Purpose::Stream, None).await.ok()?;
        if Arc::ptr_eq(&cached, old) || cached.info.is_live != old.info.is_live {
            return None;
        }
        let locator = Self::locator(&cached, &self.format_id)?;
        self.service.extracted_now(&self.video);
        tracing::info!(key = %self.video.cache_key(), "stream URLs about to expire; renewed");
        *self.current() = (cached, locator.clone());
        Some(locator)
    }

    /// A newer extraction than the one whose URL was refused: the cache's,
    /// when it already holds another, else a new one.
    async fn refresh(&self, refused: &Arc<CachedInfo>) -> Result<Locator, RelayError> {
        let lookup = || self.service.info(&self.video, Purpose::Stream, None);
        let (mut cached, _) = lookup().await.map_err(source_error)?;
        if Arc::ptr_eq(&cached, refused) {
            if !self.service.extract_again(&self.video).await {
                // Refused again right after a new extraction: that is the answer.
                return Err(RelayError::Expired);
            }
            tracing::info!(key = %self.video.cache_key(), "origin refused a cached stream URL; extracted again");
            cached = lookup().await.map_err(source_error)?.0;
        }
        if refused.info.is_live && !cached.info.is_live {
            return Err(RelayError::Ended(format!("{} is no longer live", self.video.route_key())));
        }
        let locator = Self::locator(&cached, &self.format_id)
            .ok_or_else(|| RelayError::Gone(format!("format {} is no longer offered", self.format_id)))?;
        *self.current() = (cached, locator.clone());
        Ok(locator)
    }
}

/// Whether `cached`'s stream URLs expire within the cache's margin: a
/// fetch that starts now (the rest of a two-hour film, a seek) asks for
/// new ones first rather than meet a refusal mid-body. URLs that came
/// with less than that margin to live (never cached) are left to the
/// refusal: renewing them would extract the video before every fetch.
fn expiring(cached: &CachedInfo) -> bool {
    use crate::cache::{EXPIRY_MARGIN_SECS, now_unix};
    cached
        .info
        .expires_at
        .is_some_and(|e| e - cached.fetched_at > EXPIRY_MARGIN_SECS && e - now_unix() <= EXPIRY_MARGIN_SECS)
}

/// An extraction's failure as the relay sees it: the channel gone offline
/// ends a stream; anything else may pass.
fn source_error(e: Arc<ExtractError>) -> RelayError {
    match &*e {
        ExtractError::NotLive(line) => RelayError::Ended(line.clone()),
        _ => RelayError::Source(e),
    }
}

impl BytesSource for FormatSource {
    fn locate<'a>(&'a self, stale: Option<&'a str>) -> BoxFuture<'a, Result<Locator, RelayError>> {
        Box::pin(async move {
            let (info, locator) = self.current().clone();
            match stale {
                Some(url) if url == locator.url => self.refresh(&info).await,
                _ if expiring(&info) => Ok(self.renew(&info).await.unwrap_or(locator)),
                _ => Ok(locator),
            }
        })
    }
}

/// A SABR format's session for the relay: its parameters, a format of the
/// other kind from the same session (the protocol names both), the file's
/// length and type.
fn sabr_source(cached: &CachedInfo, f: &Format, s: &SabrFormat) -> Option<SabrSource> {
    let partners = cached.info.formats.iter().filter(|p| p.has_video != f.has_video);
    let partner = partners.filter_map(|p| Some((p.url == f.url, p.sabr.as_ref()?))).max_by_key(|(same, _)| *same)?.1;
    let format = |s: &SabrFormat| sabr::Format { itag: s.itag, last_modified: s.last_modified, xtags: s.xtags.clone() };
    let config = sabr::Config {
        url: f.url.clone(),
        ustreamer_config: s.ustreamer_bytes(),
        po_token: s.po_token_bytes(),
        client: sabr::Client {
            name: s.client_name,
            version: s.client_version.clone(),
            os_name: s.os_name.clone(),
            os_version: s.os_version.clone(),
        },
        video_id: s.video_id.clone(),
    };
    let (track, kind) = if f.has_video { (sabr::Track::Video, "video") } else { (sabr::Track::Audio, "audio") };
    let container = if f.ext == "webm" { "webm" } else { "mp4" };
    Some(SabrSource {
        config,
        format: format(s),
        partner: format(partner),
        track,
        len: if cached.info.is_live { 0 } else { f.filesize? },
        duration_ms: cached.info.duration.map_or(0, |d| (d * 1000.0) as i64),
        content_type: format!("{kind}/{container}"),
    })
}

/// The key an entry is cached under: the reference's `video:{platform}:{id}`
/// (or `playlist:…`) for anonymous extractions, `auth:{digest}:…` for
/// signed-in ones.
fn scoped(signin: Option<&Reading>, key: String) -> String {
    match signin.and_then(Reading::scope) {
        Some(scope) => format!("auth:{scope}:{key}"),
        None => key,
    }
}
