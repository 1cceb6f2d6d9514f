//! `VideoService`: the core of a request, with no HTTP in it. It answers
//! "what is this video?" from the cache or one extraction, and "which
//! stream should be served?" by selecting over that one cached answer.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CachedInfo, Source, VideoCache};
use crate::extract::{ExtractError, Extractor};
use crate::net;
use crate::platform::VideoRef;
use crate::ratelimit::Limiter;

/// What a lookup is for; streams need younger URLs than metadata does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Info,
    Stream,
}

pub struct VideoService {
    /// Both cache tiers and the single-flight point.
    pub cache: VideoCache,
    /// Runs yt-dlp; shared with the health check.
    pub extractor: Arc<Extractor>,
    /// `ALLOW_PRIVATE_NETWORKS`.
    allow_private: bool,
    /// `VIDEO_INFO_TTL`: the oldest info served as metadata.
    info_ttl: Duration,
    /// `STREAM_URL_TTL`: the oldest info whose URLs are streamed.
    stream_ttl: Duration,
}

impl VideoService {
    pub fn new(
        cache: VideoCache,
        extractor: Arc<Extractor>,
        allow_private: bool,
        info_ttl: Duration,
        stream_ttl: Duration,
    ) -> Self {
        VideoService { cache, extractor, allow_private, info_ttl, stream_ttl }
    }

    /// The video's info, from a cache tier or one shared extraction. `gate`
    /// is asked just before the extractor would run (the client's
    /// extraction budget), so hits never spend it.
    pub async fn info(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        gate: Option<(&Limiter, &str)>,
    ) -> Result<(Arc<CachedInfo>, Source), Arc<ExtractError>> {
        let max_age = match purpose {
            Purpose::Info => self.info_ttl,
            Purpose::Stream => self.stream_ttl.min(self.info_ttl),
        };
        self.cache
            .get_or_fetch(&video.cache_key(), max_age, || async {
                if let Some((limiter, client)) = gate {
                    let d = limiter.check(client).await;
                    if !d.allowed {
                        return Err(ExtractError::RateLimited(d.retry_after.as_secs().max(1)));
                    }
                }
                if let VideoRef::Generic { url } = video {
                    net::check_url(url, self.allow_private).await.map_err(ExtractError::Refused)?;
                }
                self.extractor.extract(&video.source_url(), video.platform_name()).await
            })
            .await
    }
}
