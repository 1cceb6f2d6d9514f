//! Live streams for crowds: one upstream session per (stream, variant)
//! being watched, shared by every viewer.
//!
//! - [`playlist`]: an origin's media playlist read into segments, with
//!   what a client must not see left out (low-latency and prefetch tags,
//!   URLs in attributes).
//! - [`window`]: the copies merged into reelay's own window: its own
//!   numbering (on across sessions), one link per segment for as long as
//!   the segment is listed, rendered once per change.
//! - `poller`: the task behind a variant: reloads the origin's playlist on
//!   the stream's clock (the segments' dates, else RFC 8216's schedule),
//!   fetches each new segment into the relay before anyone asks, renews the
//!   session when the origin refuses it or it is about to expire, and stops
//!   a while after its last viewer. A variant that comes over SABR (YouTube's
//!   own protocol) is one session following the stream's head instead.
//! - `sabr`: what such a session brings (segments, the init section) as
//!   copies the window merges; its segments go into the relay's store as
//!   they arrive.
//!
//! Players get the newest copy at once; a segment's bytes come from the
//! relay, where every viewer follows the one origin fetch. Owns: live
//! sessions. Knows nothing of yt-dlp or HTTP: a variant's playlist is found
//! through a relay [`Source`] (for a format, the service's extraction) and
//! its links are made by [`Links`]. May import `relay`, `upstream`, `hls`,
//! `sabr` and `metrics`.

pub mod playlist;
mod poller;
mod sabr;
pub mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use url::Url;

use crate::metrics::Metrics;
use crate::relay::{Fixed, Locator, Relay, RelayError, Source, Spec};
pub use window::Part;

/// Which variant of which stream: the video's cache key and the format id.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct VariantKey {
    pub stream: String,
    pub variant: String,
}

/// How the links in a live playlist are made (the HTTP layer signs them).
pub trait Links: Send + Sync + 'static {
    /// The link of a part of `key`'s window; `name` is the last path
    /// segment of its origin URL, kept for people reading logs.
    fn part(&self, key: &VariantKey, part: Part, name: &str) -> String;
}

/// The live sessions' settings, from `Config`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `LIVE_IDLE_TIMEOUT`: a variant nobody reloaded for this long stops
    /// being polled.
    pub idle: Duration,
}

/// What a player gets: the newest copy of the playlist.
#[derive(Debug, Clone)]
pub struct Playlist {
    pub body: Bytes,
    /// Seconds a cache may keep it: half a target duration, at most.
    pub max_age: u64,
}

/// Why a live playlist could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LiveError {
    /// The origin (or finding the variant's playlist, for a format: the
    /// extraction) failed before any copy was had.
    #[error("{0}")]
    Origin(RelayError),
    /// The origin answered something that is no HLS playlist.
    #[error("the origin's answer is not an HLS playlist")]
    NotPlaylist,
    /// No copy came within the wait.
    #[error("the live playlist did not arrive in time")]
    Timeout,
}

/// The live sessions; cheap to clone.
#[derive(Clone)]
pub struct Live(Arc<Hub>);

struct Hub {
    variants: Mutex<HashMap<VariantKey, Arc<Variant>>>,
    relay: Relay,
    metrics: Arc<Metrics>,
    links: Arc<dyn Links>,
    settings: Settings,
    /// What `Variant::last_request` counts from.
    epoch: Instant,
    /// Numbers pollers, so one's store objects never meet another's.
    pollers: AtomicU64,
}

/// One variant being watched: what its poller publishes, and how much it
/// is asked for.
struct Variant {
    key: VariantKey,
    state: watch::Sender<State>,
    /// Milliseconds after the hub's epoch of the last playlist request.
    last_request: AtomicU64,
    /// Playlist requests, for the viewer estimate.
    requests: AtomicU64,
}

#[derive(Clone)]
enum State {
    Starting,
    Ready(Arc<Snapshot>),
    Failed(LiveError),
}

/// One published copy: the playlist as players get it, and where each of
/// its parts is at the origin.
struct Snapshot {
    body: Bytes,
    max_age: u64,
    parts: Vec<(Part, Url)>,
    /// The session's headers and route, which segment fetches use too.
    locator: Locator,
    /// The poller's number, in the parts' store keys.
    poller: u64,
}

/// How long a request waits for a variant's first copy.
const FIRST_COPY_WAIT: Duration = Duration::from_secs(20);

impl Live {
    pub fn new(relay: Relay, metrics: Arc<Metrics>, links: Arc<dyn Links>, settings: Settings) -> Self {
        Live(Arc::new(Hub {
            variants: Mutex::default(),
            relay,
            metrics,
            links,
            settings,
            epoch: Instant::now(),
            pollers: AtomicU64::new(0),
        }))
    }

    /// The newest copy of `key`'s playlist. Starts its poller when nobody
    /// watched it, with `source` saying where the variant's playlist is
    /// (and asked again when the origin refuses the session).
    pub async fn playlist(
        &self,
        key: &VariantKey,
        source: impl FnOnce() -> Arc<dyn Source>,
    ) -> Result<Playlist, LiveError> {
        let variant = self.0.variant(key, source);
        variant.last_request.store(self.0.now_ms(), Ordering::Relaxed);
        variant.requests.fetch_add(1, Ordering::Relaxed);
        let mut rx = variant.state.subscribe();
        let waited = tokio::time::timeout(FIRST_COPY_WAIT, rx.wait_for(|s| !matches!(s, State::Starting))).await;
        let state = match waited {
            Ok(Ok(state)) => state.clone(),
            Ok(Err(_)) | Err(_) => return Err(LiveError::Timeout),
        };
        match state {
            State::Ready(snap) => {
                self.0.metrics.live.playlists_served.inc();
                Ok(Playlist { body: snap.body.clone(), max_age: snap.max_age })
            }
            State::Failed(e) => Err(e),
            State::Starting => Err(LiveError::Timeout),
        }
    }

    /// The newest copy of `key`'s playlist when its poller has one, without
    /// starting any: a variant's link keeps its window (and its ending)
    /// while it is polled, whatever the video's lookup says now.
    pub fn polled(&self, key: &VariantKey) -> Option<Playlist> {
        let variant = self.0.lock().get(key).cloned()?;
        let playlist = match &*variant.state.borrow() {
            State::Ready(s) => Playlist { body: s.body.clone(), max_age: s.max_age },
            _ => return None,
        };
        variant.last_request.store(self.0.now_ms(), Ordering::Relaxed);
        variant.requests.fetch_add(1, Ordering::Relaxed);
        self.0.metrics.live.playlists_served.inc();
        Some(playlist)
    }

    /// The relay object behind a part of `key`'s window; `None` when the
    /// part has left it, or nobody polls the variant any more.
    pub fn part(&self, key: &VariantKey, part: Part) -> Option<Spec> {
        let variant = self.0.lock().get(key).cloned()?;
        let state = variant.state.borrow();
        let State::Ready(snap) = &*state else { return None };
        let url = snap.parts.iter().find(|(p, _)| *p == part).map(|(_, u)| u.clone())?;
        Some(self.0.spec(key, snap.poller, part, url, &snap.locator))
    }

    /// The newest copy of a stream being polled, of its most asked-for
    /// variant: what its players get when the video can no longer be looked
    /// up (it stopped being live, the extraction fails) while its poller
    /// renews the session or, failing that, ends the window.
    ///
    /// A player reloading it is still watching: the variant's poller stays
    /// (and its window with it) while they do.
    pub fn latest(&self, stream: &str) -> Option<Playlist> {
        let variants = self.0.lock();
        let (variant, playlist) = variants
            .values()
            .filter(|v| v.key.stream == stream)
            .filter_map(|v| match &*v.state.borrow() {
                State::Ready(s) => Some((v, Playlist { body: s.body.clone(), max_age: s.max_age })),
                _ => None,
            })
            .max_by_key(|(v, _)| v.requests.load(Ordering::Relaxed))?;
        variant.last_request.store(self.0.now_ms(), Ordering::Relaxed);
        variant.requests.fetch_add(1, Ordering::Relaxed);
        Some(playlist)
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VariantKey, Arc<Variant>>> {
        self.variants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The variant, its poller started when it had none.
    fn variant(self: &Arc<Self>, key: &VariantKey, source: impl FnOnce() -> Arc<dyn Source>) -> Arc<Variant> {
        let mut variants = self.lock();
        if let Some(v) = variants.get(key) {
            return v.clone();
        }
        let variant = Arc::new(Variant {
            key: key.clone(),
            state: watch::channel(State::Starting).0,
            last_request: AtomicU64::new(self.now_ms()),
            requests: AtomicU64::new(0),
        });
        variants.insert(key.clone(), variant.clone());
        drop(variants);
        let number = self.pollers.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(poller::run(self.clone(), variant.clone(), source(), number));
        variant
    }

    /// A part's relay object: memory only, keyed by the poller and the
    /// part, fetched with the session's headers.
    fn spec(&self, key: &VariantKey, poller: u64, part: Part, url: Url, session: &Locator) -> Spec {
        Spec {
            key: self.store_key(key, poller, part),
            source: Arc::new(Fixed(Locator {
                url: url.to_string(),
                headers: session.headers.clone(),
                route: session.route.clone(),
                sabr: None,
            })),
            chunk_size: None,
            transient: true,
        }
    }

    /// A part's key in the relay store.
    fn store_key(&self, key: &VariantKey, poller: u64, part: Part) -> String {
        let name = match part {
            Part::Segment(n) => format!("s{n}"),
            Part::Aux(n) => format!("a{n}"),
        };
        format!("live|{}|{}|{poller}|{name}", key.stream, key.variant)
    }

    /// Removes `variant` from the map, if it is still the one there.
    fn remove(&self, variant: &Arc<Variant>) {
        let mut variants = self.lock();
        if variants.get(&variant.key).is_some_and(|v| Arc::ptr_eq(v, variant)) {
            variants.remove(&variant.key);
        }
    }
}
