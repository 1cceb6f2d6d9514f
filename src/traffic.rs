//! Traffic by video, for the operators' status page: bytes sent to viewers
//! and fetched from origins, and the viewers now, per video.
//!
//! The byte path pays atomics only: a stream or a fetch looks its video's
//! counters up once, when it starts (the one lock here, never taken per
//! chunk), and adds to them as bytes go by. The status page reads the same
//! atomics; pruning and listing take the lock, not the byte path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One video's counters.
#[derive(Debug)]
pub struct VideoTraffic {
    /// Bytes handed to viewers.
    pub to_viewers: AtomicU64,
    /// Bytes received from origins for it.
    pub from_origin: AtomicU64,
    /// Streams of it being sent now.
    pub viewers: AtomicI64,
    /// A live stream's players, as its pollers estimate them.
    pub live_viewers: AtomicI64,
    /// Its variants being polled now (a live stream when above 0).
    pub live_variants: AtomicI64,
    /// Seconds since `Traffic`'s start when it last saw a stream or fetch
    /// start, to prune videos nobody watches.
    touched: AtomicU64,
}

/// Every video's counters, keyed by the video part of relay keys.
#[derive(Debug)]
pub struct Traffic {
    videos: Mutex<HashMap<Arc<str>, Arc<VideoTraffic>>>,
    started: Instant,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic { videos: Mutex::default(), started: Instant::now() }
    }
}

/// The video a relay key belongs to: what comes before its first `|`
/// (`video:youtube:…`, with any sign-in scope), or a live stream's key.
pub fn video_of(key: &str) -> &str {
    match key.strip_prefix("live|") {
        Some(rest) => rest.split('|').next().unwrap_or(rest),
        None => key.split('|').next().unwrap_or(key),
    }
}

impl Traffic {
    /// The counters of the video that relay key `key` belongs to.
    pub fn video(&self, key: &str) -> Arc<VideoTraffic> {
        let video = video_of(key);
        let now = self.started.elapsed().as_secs();
        let mut videos = self.videos.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = videos.get(video) {
            known.touched.store(now, Relaxed);
            return known.clone();
        }
        let entry = videos.entry(Arc::from(video)).or_insert_with(|| {
            Arc::new(VideoTraffic {
                to_viewers: AtomicU64::new(0),
                from_origin: AtomicU64::new(0),
                viewers: AtomicI64::new(0),
                live_viewers: AtomicI64::new(0),
                live_variants: AtomicI64::new(0),
                touched: AtomicU64::new(now),
            })
        });
        entry.touched.store(now, Relaxed);
        entry.clone()
    }

    /// Every video with its counters, dropping those idle for `idle_secs`
    /// with no viewer and nobody holding their counters.
    pub fn snapshot(&self, idle_secs: u64) -> Vec<(Arc<str>, Arc<VideoTraffic>)> {
        let now = self.started.elapsed().as_secs();
        let mut videos = self.videos.lock().unwrap_or_else(PoisonError::into_inner);
        videos.retain(|_, t| {
            Arc::strong_count(t) > 1
                || t.viewers.load(Relaxed) > 0
                || t.live_variants.load(Relaxed) > 0
                || now.saturating_sub(t.touched.load(Relaxed)) < idle_secs
        });
        videos.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl VideoTraffic {
    pub fn sent(&self, n: u64) {
        self.to_viewers.fetch_add(n, Relaxed);
    }

    pub fn fetched(&self, n: u64) {
        self.from_origin.fetch_add(n, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_video() {
        assert_eq!(video_of("video:youtube:abc|140"), "video:youtube:abc");
        assert_eq!(video_of("auth:s1:video:youtube:abc|merge:136+140"), "auth:s1:video:youtube:abc");
        assert_eq!(video_of("live|video:twitch:chan|720p60|3|s12"), "video:twitch:chan");
        let t = Traffic::default();
        let a = t.video("video:youtube:abc|140");
        a.sent(10);
        t.video("video:youtube:abc|137").sent(5);
        assert_eq!(a.to_viewers.load(Relaxed), 15, "one video's formats add up");
        drop(a);
        assert_eq!(t.snapshot(60).len(), 1, "recent videos stay");
        assert_eq!(t.snapshot(0).len(), 0, "idle ones go");
    }
}
