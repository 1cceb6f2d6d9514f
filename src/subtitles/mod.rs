//! Subtitles as WebVTT: a video's track picked by language (the uploader's
//! before the automatic captions), its file fetched the way the video's
//! extraction left, converted from the platform's format ([`webvtt`]) and
//! kept for an hour.
//!
//! Owns: subtitle tracks and their conversion. May import `cache`,
//! `extract` (the tracks the info lists) and `upstream`.

mod webvtt;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::cache::{Entry, Settings, Tiered};
use std::path::PathBuf;
use std::sync::Arc;

use crate::egress::{Egress, Route};
use crate::extract::{Headers, SUBTITLE_EXTS, SubtitleFile, Subtitles, VideoInfo, impersonate};
use crate::net;
use crate::upstream::{ProxyError, Upstream, Via, read_limited};

pub use webvtt::to_webvtt;

/// The largest subtitle file fetched (a film's are a few hundred KB).
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// Why no WebVTT could be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubtitleError {
    /// The video has no track in that language (404); the message lists
    /// those it has.
    #[error("{0}")]
    NoTrack(String),
    /// The origin refused or failed.
    #[error("{0}")]
    Upstream(ProxyError),
    /// The file was too big, cut, or not in the format it said (502).
    #[error("{0}")]
    Unreadable(String),
}

/// A converted track, as the cache keeps it.
pub struct Vtt(pub Bytes);

impl Entry for Vtt {
    fn weight(&self) -> u32 {
        self.0.len() as u32 + 64
    }
}

/// Converted tracks, kept for an hour (32 MiB), and how files yt-dlp marks
/// `impersonate` are fetched.
pub struct SubtitleCache(Tiered<Vtt>, Option<Impersonation>);

/// Fetching as a browser (`extract::impersonate`): yt-dlp's Python, the
/// proxies the videos' routes name, and the private-address rule.
pub struct Impersonation {
    pub python: PathBuf,
    pub egress: Arc<Egress>,
    pub allow_private: bool,
}

impl Default for SubtitleCache {
    fn default() -> Self {
        SubtitleCache::new(None)
    }
}

impl SubtitleCache {
    pub fn new(impersonation: Option<Impersonation>) -> Self {
        let settings = Settings {
            capacity: 32 * 1024 * 1024,
            ttl: Duration::from_secs(3600),
            redis: None,
            prefix: "",
            lock: None,
        };
        SubtitleCache(Tiered::new(settings), impersonation)
    }

    /// A file marked `impersonate`, fetched as a browser; `None` when that
    /// cannot be done here (no curl_cffi, a source-address route), and the
    /// server's own client is tried instead.
    async fn as_browser(&self, file: &SubtitleFile, route: &Route) -> Option<Result<Vec<u8>, SubtitleError>> {
        let imp = self.1.as_ref().filter(|_| file.impersonate && route.source.is_none())?;
        let url = url::Url::parse(&file.url).ok()?;
        match net::check_url(&url, imp.allow_private).await {
            Ok(()) => {}
            Err(net::UrlRefusal::Private(m) | net::UrlRefusal::Unresolvable(m)) => {
                return Some(Err(SubtitleError::Upstream(ProxyError::Refused(m))));
            }
        }
        let proxy = imp.egress.proxy_url(route);
        match impersonate::fetch(&imp.python, &file.url, proxy.as_deref(), MAX_BYTES).await {
            Ok(body) => Some(Ok(body)),
            Err(e) if e.contains("No module named") => {
                tracing::warn!(python = %imp.python.display(), "curl_cffi is missing; subtitles fetched without impersonation");
                None
            }
            Err(e) => {
                // curl's messages name the host and URL: logged, never answered.
                tracing::warn!(error = %e, "fetching subtitles as a browser failed");
                Some(Err(SubtitleError::Unreadable("the subtitles could not be fetched as a browser".into())))
            }
        }
    }
}

/// The track of `info` for `lang` (any when `None`): the uploader's unless
/// `auto` asks for the automatic captions (`Some(true)`) or forbids them.
pub fn pick<'a>(info: &'a VideoInfo, lang: Option<&str>, auto: Option<bool>) -> Result<&'a Subtitles, SubtitleError> {
    let fits = |s: &&Subtitles| lang.is_none_or(|l| s.lang.eq_ignore_ascii_case(l)) && auto.is_none_or(|a| s.auto == a);
    let mut tracks: Vec<&Subtitles> = info.subtitles.iter().filter(fits).collect();
    tracks.sort_by_key(|s| s.auto);
    tracks.first().copied().ok_or_else(|| {
        let have: Vec<String> =
            info.subtitles.iter().map(|s| if s.auto { format!("{} (auto)", s.lang) } else { s.lang.clone() }).collect();
        SubtitleError::NoTrack(if have.is_empty() {
            "this video has no subtitles".to_owned()
        } else {
            format!("no such subtitles; this video has {}", have.join(", "))
        })
    })
}

impl SubtitleCache {
    /// `track` of the video cached under `video_key`, as WebVTT.
    pub async fn webvtt(
        &self,
        upstream: &Upstream,
        video_key: &str,
        info: &VideoInfo,
        track: &Subtitles,
    ) -> Result<Bytes, SubtitleError> {
        let key = format!("{video_key}|{}|{}", track.lang, track.auto);
        let load = || async {
            let file = SUBTITLE_EXTS
                .iter()
                .find_map(|ext| track.files.iter().find(|f| f.ext == *ext))
                .ok_or_else(|| SubtitleError::NoTrack("this track comes in no format reelay reads".into()))?;
            let body = match self.as_browser(file, &info.route).await {
                Some(fetched) => fetched?,
                None => {
                    let via = Via { headers: &Headers::new(), route: &info.route };
                    let fetched = upstream
                        .open(&Method::GET, &file.url, &via, &HeaderMap::new())
                        .await
                        .map_err(SubtitleError::Upstream)?;
                    read_limited(fetched.response.into_body(), MAX_BYTES).await.map_err(SubtitleError::Unreadable)?
                }
            };
            let text = String::from_utf8_lossy(&body);
            let vtt = to_webvtt(&file.ext, &text)
                .ok_or_else(|| SubtitleError::Unreadable(format!("the {} file is not what it says", file.ext)))?;
            Ok::<_, SubtitleError>(Vtt(Bytes::from(vtt)))
        };
        let (vtt, _) = self.0.get_or_fetch(&key, |_| true, load).await.map_err(std::sync::Arc::unwrap_or_clone)?;
        Ok(vtt.0.clone())
    }
}
