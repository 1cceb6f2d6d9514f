//! [`Media`]: the parts the streaming use cases share (lookups, the relay,
//! signed links, DASH indexes, rendered text, muxed segments, subtitles and
//! live sessions), built once by `app` and borrowed by every use case.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, header};

use super::answer::{Answer, Keep, Text};
use super::error::ApiError;
use super::{Purpose, VideoService};
use crate::cache::{CachedInfo, Entry, Settings, Tiered};
use crate::extract::{Headers, Subtitles};
use crate::hls::Signer;
use crate::manifest::Indexes;
use crate::metrics::StreamGuard;
use crate::platform::VideoRef;
use crate::relay::Relay;
use crate::relay::pipe::pipe;
use crate::upstream::Via;

pub struct Media {
    /// Cache, single flight and extraction.
    pub service: Arc<VideoService>,
    /// Every byte served through the server: the block store, ranged
    /// fetches, merges, and the pooled upstream client.
    pub relay: Relay,
    /// Signs and checks the HLS links of rewritten playlists, manifests'
    /// parts and live streams' links (shared with the live links' maker).
    pub signer: Arc<Signer>,
    /// Live streams: one shared session per variant being watched.
    pub live: crate::live::Live,
    /// The layout of DASH files, for the manifests reelay builds.
    pub indexes: Indexes,
    /// Manifests and media playlists as rendered, kept briefly per video
    /// (and extraction) and request.
    pub rendered: Tiered<Rendered>,
    /// Muxed HLS segments as made, by video, plan and segment: each made
    /// once however many ask at once (single flight), kept under a byte
    /// budget.
    pub muxed: crate::lazy::Lazy<moka::future::Cache<String, Bytes>>,
    /// Subtitle tracks converted to WebVTT.
    pub subtitles: crate::subtitles::SubtitleCache,
}

impl Media {
    /// The video's info for a client (`who` gives its identity, asked only
    /// when an extraction budget needs it).
    pub async fn lookup(
        &self,
        video: &VideoRef,
        purpose: Purpose,
        who: impl FnOnce() -> String,
    ) -> Result<Arc<CachedInfo>, ApiError> {
        Ok(self.service.lookup(video, purpose, who).await?)
    }

    /// A subtitle track of the video, as WebVTT (converted once, kept).
    pub async fn webvtt(&self, cached: &CachedInfo, track: &Subtitles) -> Result<Bytes, ApiError> {
        Ok(self.subtitles.webvtt(self.relay.upstream(), &cached.key, &cached.info, track).await?)
    }

    /// The video's thumbnail through the server, for clients that cannot
    /// reach the image host: piped as it comes (`idle`: how long a stalled
    /// origin is waited for), counted as a stream while it lasts. Images
    /// change rarely, so clients may keep them a day.
    pub async fn thumbnail(
        &self,
        cached: &CachedInfo,
        method: &Method,
        guard: StreamGuard,
        idle: Duration,
    ) -> Result<Answer, ApiError> {
        let url = cached.info.thumbnail.as_deref().ok_or_else(|| ApiError::NotFound {
            error: "No thumbnail",
            detail: "the extractor found no thumbnail for this video".into(),
        })?;
        let via = Via { headers: &Headers::new(), route: &cached.info.route };
        let upstream = self
            .relay
            .upstream()
            .open(method, url, &via, &HeaderMap::new())
            .await
            .map_err(|e| ApiError::from_upstream(e, "the URL"))?;
        let is_image =
            upstream.response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"image/"));
        if !is_image {
            return Err(ApiError::BadGateway {
                error: "Upstream error",
                detail: "the thumbnail URL did not answer an image".into(),
            });
        }
        Ok(Answer { keep: Keep::Public(86_400), ..Answer::relay(pipe(upstream, Some(guard), idle)) })
    }

    /// The text under `key` in the rendered cache, if it is there.
    pub async fn rendered_hit(&self, key: &str) -> Option<Text> {
        self.rendered.get(key).await.and_then(|r| r.text.clone())
    }

    /// The text a signed link rendered, under `key`, with the link's expiry
    /// (set by [`Media::rendered`] when it rendered it for that link).
    pub async fn linked_hit(&self, key: &str) -> Option<(Text, i64)> {
        let r = self.rendered.get(key).await?;
        Some((r.text.clone()?, r.expires?))
    }

    /// The text under `key` in the rendered cache, or `render`'s, kept
    /// briefly (`None`: nothing to render); `expires`: the expiry of the
    /// signed link it is rendered for, if it is. Concurrent misses render
    /// once.
    pub async fn rendered<F, Fut>(&self, key: &str, expires: Option<i64>, render: F) -> Result<Option<Text>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, ApiError>>,
    {
        let load = || async { render().await.map(|text| Rendered { text: text.map(Text::new), expires }) };
        let (found, _) = self.rendered.get_or_fetch(key, |_| true, load).await.map_err(Arc::unwrap_or_clone)?;
        Ok(found.text.clone())
    }
}

/// A rendered manifest or media playlist.
pub struct Rendered {
    /// `None`: the video has no DASH files to list.
    pub text: Option<Text>,
    /// For the text of a signed link: when the link expires.
    pub expires: Option<i64>,
}

impl Entry for Rendered {
    fn weight(&self) -> u32 {
        self.text.as_ref().map_or(64, |t| t.body.len() as u32 + 128)
    }
}

/// Rendered manifests: 16 MiB, each for 30 s (the links inside are signed
/// for a day; a new extraction is a new key).
pub fn rendered_cache() -> Tiered<Rendered> {
    Tiered::new(Settings {
        capacity: 16 * 1024 * 1024,
        ttl: std::time::Duration::from_secs(30),
        redis: None,
        prefix: "",
        lock: None,
    })
}
