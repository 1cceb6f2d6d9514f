//! The relay engine: every byte a client gets through the server comes
//! from here.
//!
//! - [`store`]: the bytes of each object (a format of a video, an ffmpeg
//!   output, an HLS segment) in fixed blocks keyed by what they are, never
//!   by URL, under one memory budget (LRU); [`disk`] keeps them across
//!   restarts when `STREAM_CACHE_DIR` is set.
//! - [`fetch`]: a missing block starts one ranged upstream fetch
//!   (`http_chunk_size` or `STREAM_CHUNK_SIZE`, googlevideo's `range=`),
//!   which resumes from the next missing byte after a drop, a stall or a
//!   refused URL (re-extracted), and which every reader of those blocks
//!   follows as bytes arrive.
//! - [`merge`]: one ffmpeg per merged stream, reading its inputs from the
//!   relay itself ([`internal`]), writing an object that late viewers join
//!   and that, once complete, is served like a file.
//! - [`compose`]: files laid out over other objects' bytes from their
//!   indexes (`sidx`), with no ffmpeg: a DASH video and audio merged into
//!   one MP4 that has its length and seeks from the first request, or a
//!   clip of it; one subsegment of both as an MPEG-TS segment (muxed
//!   HLS); it reads a DASH file's index ([`compose::sidx`]) for the
//!   manifests too.
//! - `remux`: a muxed HLS segment, written in process by [`compose`] when
//!   it can be (H.264 with AAC), else ffmpeg reading that time range of
//!   both files from the relay.
//! - `seek`: a small range where the store holds nothing (a player's
//!   seek, a segment's fragments, an index) read from the origin exactly,
//!   once for everyone asking, instead of the blocks around it.
//! - [`sabr`]: a SABR session carried over the upstream's connections
//!   (the protocol itself is [`crate::sabr`]).
//! - [`serve`]: a client's request (`Range`, `If-Range`, `HEAD`,
//!   revalidation) answered from the store; [`range`] decides it. The
//!   server's own reads (`Relay::read`) take the same path without HTTP.
//! - [`writer`]: the one way bytes enter the store, for fetches and merges.
//! - [`pipe`] relays an origin response as it comes (`crate::upstream`),
//!   for what is not stored (thumbnails, playlists).
//!
//! A reader holds a position, not a buffer: a slow one costs its connection
//! and a slice of a shared block.
//!
//! Owns: every byte served. Knows nothing of yt-dlp: an object's bytes are
//! found through its [`Source`] (for a format, the service's extraction),
//! whose failure it carries as it is. May import `upstream`, `egress`,
//! `metrics`, `net` and `process`.

pub mod compose;
pub mod disk;
mod fetch;
pub mod internal;
pub mod merge;
pub mod pipe;
pub mod range;
mod read;
mod remux;
pub mod sabr;
mod seek;
mod serve;
mod store;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::StatusCode;

use crate::metrics::Metrics;
use crate::upstream::Headers;
pub use crate::upstream::{Fetched, ProxyError, Upstream};
pub use serve::{Body, Reply};
use store::{BLOCK, Fill, Kind, Look, Object, Store};

/// Why bytes could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RelayError {
    /// The URL, or a redirect, points at a private address.
    #[error("{0}")]
    Refused(String),
    /// The origin refused the URL, also after extracting the video again.
    #[error("the origin refused the stream URL, also after extracting the video again")]
    Expired,
    /// The origin answered an error status.
    #[error("the origin answered {0}")]
    Status(StatusCode),
    /// The origin could not be reached, or kept failing mid-body.
    #[error("{0}")]
    Unreachable(String),
    /// The object's [`Source`] could not say where its bytes are now (for a
    /// format: extracting the video again failed); the source's own error,
    /// which the layer that made the source reads back.
    #[error("{0}")]
    Source(Arc<dyn std::error::Error + Send + Sync>),
    /// The origin's bytes changed under a stream (another length).
    #[error("the origin's file changed while it was being relayed")]
    Changed,
    /// A block the stream needs is gone and cannot be made again.
    #[error("{0}")]
    Gone(String),
    /// ffmpeg could not be started.
    #[error("ffmpeg could not be started: {0}")]
    Spawn(String),
    /// ffmpeg failed before producing anything.
    #[error("merging the video and audio streams failed")]
    MergeFailed,
    /// A SABR session could not go on (refused, attestation required, the
    /// video to be loaded again, an unreadable answer).
    #[error("{0}")]
    Sabr(crate::sabr::SabrFailure),
    /// The source says its stream is over (a live channel gone offline):
    /// nothing will be had by asking again.
    #[error("{0}")]
    Ended(String),
}

impl From<ProxyError> for RelayError {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Refused(m) => RelayError::Refused(m),
            ProxyError::Expired(_) => RelayError::Expired,
            ProxyError::Status(s) => RelayError::Status(s),
            ProxyError::Connect(m) => RelayError::Unreachable(format!("the origin could not be reached: {m}")),
        }
    }
}

/// An object's length, type and validators, as the origin (or the merge)
/// gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// `None` while a merge is still being written.
    pub len: Option<u64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The origin answers ranges; when false the object is fetched whole.
    pub ranged: bool,
    /// The object is kept in blocks; when false each client gets its own
    /// pipe from the origin (it ignores ranges and is too big to store).
    pub stored: bool,
}

/// Where an object's bytes can be fetched now.
#[derive(Debug, Clone)]
pub struct Locator {
    pub url: String,
    pub headers: Headers,
    /// The way the extraction that gave `url` left; fetches leave the same way.
    pub route: crate::egress::Route,
    /// A SABR format: `url` takes the protocol's sessions, not GETs.
    pub sabr: Option<Arc<sabr::SabrSource>>,
}

impl Locator {
    pub fn via(&self) -> crate::upstream::Via<'_> {
        crate::upstream::Via { headers: &self.headers, route: &self.route }
    }
}

/// How an object finds its bytes' current URL: for a format, the cached
/// extraction, extracted again when the origin refused `stale`.
pub trait Source: Send + Sync + 'static {
    fn locate<'a>(&'a self, stale: Option<&'a str>) -> BoxFuture<'a, Result<Locator, RelayError>>;
}

/// A source that is one URL for good (an HLS segment behind a signed link).
pub struct Fixed(pub Locator);

impl Source for Fixed {
    fn locate<'a>(&'a self, _stale: Option<&'a str>) -> BoxFuture<'a, Result<Locator, RelayError>> {
        let found = self.0.clone();
        Box::pin(async move { Ok(found) })
    }
}

/// An object to serve: what it is and where its bytes come from.
#[derive(Clone)]
pub struct Spec {
    /// What the bytes are: the video's cache key (with its sign-in scope)
    /// and the format, or the merge plan, or the segment.
    pub key: String,
    pub source: Arc<dyn Source>,
    /// The format's `downloader_options.http_chunk_size`, when it has one.
    pub chunk_size: Option<u64>,
    /// Kept in memory only, and dropped by its owner when done with it (a
    /// live segment: never worth a disk write, gone within a minute).
    pub transient: bool,
}

/// The relay's settings, from `Config`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STREAM_CACHE_MEMORY`: bytes of blocks kept in memory.
    pub memory: u64,
    /// `STREAM_CHUNK_SIZE`: bytes per upstream range when the format names none.
    pub chunk: u64,
    /// `STREAM_IDLE_TIMEOUT`: an origin silent this long is asked again.
    pub idle: Duration,
    /// `STREAM_CACHE_DIR`.
    pub disk_dir: Option<PathBuf>,
    /// `STREAM_CACHE_DISK_MAX`.
    pub disk_max: u64,
    /// `FFMPEG_PATH`.
    pub ffmpeg: PathBuf,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Relay(Arc<Shared>);

pub(crate) struct Shared {
    store: Mutex<Store>,
    upstream: Arc<Upstream>,
    settings: Settings,
    metrics: Arc<Metrics>,
    disk: Option<disk::Disk>,
    /// The loopback server ffmpeg reads merge inputs from.
    internal: internal::Internal,
    /// Exact reads of seeks, one per range at a time ([`seek`]).
    seeks: seek::Seeks,
    /// Where SABR formats' segments were seen to sit ([`sabr`]).
    sabr_layouts: sabr::Layouts,
}

/// What a reader finds at its position.
enum Step {
    Data(Bytes),
    Wait(Arc<Fill>),
    End,
    Fail(RelayError),
}

impl Relay {
    /// Starts the engine: opens the disk tier (when set) and the loopback
    /// listener for ffmpeg.
    pub async fn start(settings: Settings, upstream: Arc<Upstream>, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let disk = match &settings.disk_dir {
            Some(dir) if settings.disk_max > 0 => {
                Some(disk::Disk::open(dir.clone(), settings.disk_max, metrics.clone()).await?)
            }
            _ => None,
        };
        let internal = internal::Internal::bind().await?;
        let relay = Relay(Arc::new(Shared {
            store: Mutex::new(Store::new(settings.memory)),
            upstream,
            settings,
            metrics,
            disk,
            internal,
            seeks: seek::Seeks::new(),
            sabr_layouts: sabr::Layouts::default(),
        }));
        relay.0.internal.serve(relay.clone());
        Ok(relay)
    }

    pub fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    /// How long an origin may send nothing before its connection is given
    /// up (`Settings::idle`).
    pub fn idle(&self) -> Duration {
        self.0.settings.idle
    }

    /// Bytes of blocks held in memory now.
    pub fn memory_used(&self) -> u64 {
        self.0.lock().used
    }

    /// The memory budget, and the disk tier's (`None`: no disk tier).
    pub fn budgets(&self) -> (u64, Option<u64>) {
        let s = &self.0.settings;
        (s.memory, self.0.disk.as_ref().map(|_| s.disk_max))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere must not take every stream down with it.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or refreshes the source of) a fetched object, and visits it.
    fn register(self: &Arc<Self>, spec: Spec) -> Visit {
        let range_blocks = spec.chunk_size.unwrap_or(self.settings.chunk).div_ceil(BLOCK).max(1);
        let disk = self.disk.as_ref().filter(|_| !spec.transient);
        let disk_meta = disk.and_then(|d| d.meta(&spec.key));
        let transient = spec.transient;
        let mut store = self.lock();
        let (key, obj) = store.visit(&spec.key, || {
            let mut o = Object::new(Kind::Fetched { source: spec.source.clone(), range_blocks, transient });
            o.meta = disk_meta;
            o
        });
        if let Kind::Fetched { source, range_blocks: r, .. } = &mut obj.kind {
            *source = spec.source;
            *r = range_blocks;
        }
        let following = obj.jobs > 0;
        drop(store);
        Visit { shared: self.clone(), key, following }
    }

    /// What the reader at `pos` of `key` can do now. `entering` is true on
    /// its first look at a block: the block counts as used, and the rest of
    /// its range and the next range are fetched ahead.
    ///
    /// `run` is how many blocks the reader has read in a row, this one
    /// included: what it is fetched ahead grows with it (see [`ahead`]).
    fn step(self: &Arc<Self>, key: &Arc<str>, pos: u64, entering: bool, run: u64, counted: bool) -> Step {
        let mut store = self.lock();
        let Some(obj) = store.get_mut(key) else {
            return Step::Fail(RelayError::Gone("the stream ended".into()));
        };
        if obj.meta.as_ref().and_then(|m| m.len).is_some_and(|len| pos >= len) {
            return Step::End;
        }
        let b = pos / BLOCK;
        if let Some(data) = obj.published(pos) {
            let ready = obj.is_ready(b);
            if let Kind::Merged(p) = &mut obj.kind {
                p.reached(pos + data.len() as u64);
            }
            if counted {
                let from = if ready { &self.metrics.relay.served_store } else { &self.metrics.relay.served_origin };
                from.inc_by(data.len() as u64);
            }
            if entering {
                if ready {
                    store.touch(key, b);
                }
                self.read_ahead(&mut store, key, b, run);
            }
            return Step::Data(data);
        }
        match obj.look(b) {
            Some(Look::Wait(fill)) => Step::Wait(fill),
            Some(Look::Ready) => Step::End,
            None => {
                if let Kind::Merged(p) = &obj.kind {
                    return merge::step_missing(p, b, obj.meta.as_ref());
                }
                let blocks = match &obj.kind {
                    Kind::Fetched { range_blocks, .. } => ahead(run, *range_blocks),
                    Kind::Merged(_) => 1,
                };
                if let Some(fill) = self.load_from_disk(&mut store, key, b) {
                    return Step::Wait(fill);
                }
                match self.claim(&mut store, key, b, blocks) {
                    Some(fill) => Step::Wait(fill),
                    None => Step::End,
                }
            }
        }
    }

    /// Fetches ahead of a reader in block `b` that has read `run` blocks in
    /// a row: from the first missing block after it, [`ahead`] blocks, and
    /// never past the end of the next range. A reader's first block (a
    /// seek, an index read) fetches nothing ahead.
    fn read_ahead(self: &Arc<Self>, store: &mut Store, key: &Arc<str>, b: u64, run: u64) {
        if run < 2 {
            return;
        }
        let Some(obj) = store.get(key) else { return };
        let Kind::Fetched { range_blocks, .. } = obj.kind else { return };
        let Some(count) = obj.block_count() else { return };
        let want = ahead(run, range_blocks);
        let horizon = (b + 1 + want).min((b / range_blocks + 2) * range_blocks).min(count);
        let missing = (b + 1..horizon).find(|j| !obj.has(*j) && !self.on_disk(key, *j));
        if let Some(j) = missing {
            // As much as the reader has earned, within `j`'s range: fetches
            // stay range-sized once it reads on, not a block at a time.
            self.claim(store, key, j, want);
        }
    }

    fn on_disk(&self, key: &str, b: u64) -> bool {
        self.disk.as_ref().is_some_and(|d| d.has(key, b))
    }

    /// The disk tier, unless the object is kept in memory only.
    fn disk_for(&self, obj: Option<&Object>) -> Option<&disk::Disk> {
        let transient = matches!(obj.map(|o| &o.kind), Some(Kind::Fetched { transient: true, .. }));
        self.disk.as_ref().filter(|_| !transient)
    }

    /// Claims missing block `b` and those after it that one fetch should
    /// bring (up to `blocks`, within its range; everything missing when the
    /// origin ignores ranges), and starts the fetch. Returns `b`'s fill.
    fn claim(self: &Arc<Self>, store: &mut Store, key: &Arc<str>, b: u64, blocks: u64) -> Option<Arc<Fill>> {
        let obj = store.get(key)?;
        let Kind::Fetched { range_blocks, .. } = obj.kind else { return None };
        let count = obj.block_count();
        if count.is_some_and(|n| b >= n) {
            return None;
        }
        let whole = obj.meta.as_ref().is_some_and(|m| !m.ranged);
        let (first, last) = if whole {
            (0, count.unwrap_or(b + 1))
        } else {
            (b, (((b / range_blocks) + 1) * range_blocks).min(b + blocks.max(1)))
        };
        let last = count.map_or(last, |n| last.min(n));
        let mut claims = std::collections::BTreeMap::new();
        if obj.meta.as_ref().is_some_and(|m| !m.stored) {
            return None;
        }
        for j in first..last {
            let taken = store.get(key).is_some_and(|o| o.has(j)) || (j != b && self.on_disk(key, j));
            match taken {
                true if whole => continue,
                true => break,
                false => {
                    if let Some(fill) = store.open(key, j) {
                        claims.insert(j, fill);
                    }
                }
            }
        }
        let fill = claims.get(&b).cloned()?;
        tracing::debug!(key = %key, from = b, blocks = claims.len(), "fetching");
        store.get_mut(key)?.jobs += 1;
        tokio::spawn(fetch::run(self.clone(), key.clone(), claims));
        Some(fill)
    }

    /// Starts reading block `b` back from disk, when the disk tier has it.
    fn load_from_disk(self: &Arc<Self>, store: &mut Store, key: &Arc<str>, b: u64) -> Option<Arc<Fill>> {
        let disk = self.disk.as_ref()?;
        if !disk.has(key, b) {
            return None;
        }
        let fill = store.start_loading(key, b)?;
        let shared = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let expected = {
                let store = shared.lock();
                store.get(&key).map(|o| o.block_len(b))
            };
            let loaded = match (expected, shared.disk.as_ref()) {
                (Some(len), Some(disk)) => disk.load(&key, b, len).await,
                _ => None,
            };
            let mut store = shared.lock();
            match loaded {
                Some(data) => {
                    shared.metrics.relay.disk_reads.inc();
                    store.insert_ready(&key, b, data);
                    shared.evict(&mut store);
                }
                // Torn, corrupt or gone: drop it, and the waiters fetch it again.
                None => store.drop_block(&key, b, None),
            }
        });
        Some(fill)
    }

    /// Publishes what `buf` holds for block `buf.b` (owned by `fill`);
    /// completes the block (and writes it to disk) when it is full.
    fn publish(&self, key: &Arc<str>, buf: &mut store::BlockBuf, fill: &Arc<Fill>) -> store::Published {
        let (off, piece) = buf.take();
        if piece.is_empty() {
            return store::Published::Taken;
        }
        let mut store = self.lock();
        let published = store.publish(key, buf.b, off, fill, piece);
        match published {
            store::Published::Taken => fill.notify.notify_waiters(),
            store::Published::Complete => {
                if let Some(pieces) = store.complete(key, buf.b)
                    && let Some(disk) = self.disk_for(store.get(key))
                {
                    disk.write(key, buf.b, pieces);
                }
            }
            store::Published::Lost => {}
        }
        self.evict(&mut store);
        published
    }

    /// Evicts down to the budget and counts what left.
    fn evict(&self, store: &mut Store) {
        let evicted = store.make_room();
        if evicted > 0 {
            self.metrics.relay.evictions_memory.inc_by(evicted);
        }
    }
}

/// A client's claim on an object: while it lives, the object is kept (its
/// meta, and an unfinished merge's ffmpeg). Dropping the last one of a
/// merge that is still running stops it.
pub(crate) struct Visit {
    shared: Arc<Shared>,
    key: Arc<str>,
    /// A fetch of the object was running when the visit began: its reader
    /// follows that fetch (a coalesced reader), even where the first block
    /// it reads is already in the store.
    following: bool,
}

impl Drop for Visit {
    fn drop(&mut self) {
        let mut store = self.shared.lock();
        if let Some(obj) = store.get_mut(&self.key) {
            obj.readers -= 1;
            if obj.readers == 0
                && let Kind::Merged(p) = &mut obj.kind
                && p.abandon()
            {
                // Nobody watches an unfinished merge any more: ffmpeg stops,
                // and what it wrote is dropped.
                store.drop_all(&self.key, Some(&RelayError::Gone("the merge was stopped".into())));
            }
        }
        store.forget_if_idle(&self.key);
    }
}

/// Blocks fetched for (and ahead of) a reader that has read `run` blocks in
/// a row: one for its first (a seek or an index read costs a block, not a
/// range), then doubling while it reads on, up to the object's range
/// (`http_chunk_size`).
fn ahead(run: u64, range_blocks: u64) -> u64 {
    (1u64 << run.saturating_sub(1).min(20)).min(range_blocks.max(1))
}

/// A client's position in an object, and the bytes from there as they can
/// be had. Dropping it is how a client leaves.
pub struct Reader {
    visit: Visit,
    pos: u64,
    /// One past the last byte wanted; `None`: to the object's end.
    end: Option<u64>,
    /// The block of the last step, to tell when a new one is entered.
    block: Option<u64>,
    /// Blocks read in a row up to this one: what is fetched ahead of the
    /// reader grows while it reads on, and starts small after a seek.
    run: u64,
    /// Its bytes count as served (not for the server's own prefetches).
    counted: bool,
}

impl Reader {
    /// The key of the object it reads.
    pub(crate) fn key(&self) -> &str {
        &self.visit.key
    }

    /// Carries on from another reader of the same object that stopped
    /// where this one starts (a composed file reads each input in pieces):
    /// its last block and run, so what is fetched ahead keeps growing.
    pub(crate) fn carry_on(&mut self, last_block: Option<u64>, run: u64) {
        self.block = last_block;
        self.run = run;
    }

    /// Where it is: its last block and its run (see [`Reader::carry_on`]).
    pub(crate) fn progress(&self) -> (Option<u64>, u64) {
        (self.block, self.run)
    }

    fn new(visit: Visit, pos: u64, end: Option<u64>) -> Self {
        Reader { visit, pos, end, block: None, run: 0, counted: true }
    }

    /// The next bytes, as many as can be had at once; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Bytes, RelayError>> {
        let Visit { shared, key, .. } = &self.visit;
        let (shared, key) = (shared.clone(), key.clone());
        loop {
            if self.end.is_some_and(|end| self.pos >= end) {
                return None;
            }
            let b = self.pos / BLOCK;
            let entering = self.block != Some(b);
            if entering {
                self.run = if self.block.is_some_and(|last| last + 1 == b) { self.run + 1 } else { 1 };
            }
            let fill = match shared.step(&key, self.pos, entering, self.run, self.counted) {
                Step::Data(data) => return Some(Ok(self.take(b, data))),
                Step::End => return None,
                Step::Fail(e) => return Some(Err(e)),
                Step::Wait(fill) => fill,
            };
            self.block = Some(b);
            let notified = fill.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Published between the look and the registration: no wait.
            match shared.step(&key, self.pos, false, self.run, self.counted) {
                Step::Data(data) => return Some(Ok(self.take(b, data))),
                Step::End => return None,
                Step::Fail(e) => return Some(Err(e)),
                Step::Wait(again) if Arc::ptr_eq(&again, &fill) => notified.await,
                Step::Wait(_) => continue,
            }
            if let Some(e) = fill.error.get() {
                return Some(Err(e.clone()));
            }
        }
    }

    fn take(&mut self, b: u64, mut data: Bytes) -> Bytes {
        self.block = Some(b);
        if let Some(end) = self.end {
            data.truncate((end - self.pos).min(data.len() as u64) as usize);
        }
        self.pos += data.len() as u64;
        data
    }
}
