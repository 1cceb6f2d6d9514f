//! The memory tier of the block store: every object's bytes in blocks of
//! [`BLOCK`] bytes, with a byte budget over all of them and least recently
//! used blocks evicted first.
//!
//! A block is one of:
//!
//! - `Filling`: claimed by one writer (a ranged fetch, a merge), which
//!   publishes pieces as they arrive. Readers take published pieces at once
//!   and wait on the block's [`Fill`] for more: one upstream fetch, any
//!   number of readers, first bytes as early as for a lone reader.
//! - `Ready`: complete; evictable.
//! - `Loading`: being read back from the disk tier.
//!
//! A missing block was never fetched, or was evicted. Pieces are the
//! frames the origin's connection produced (`Bytes` sharing its read
//! buffers, no copy), gathered into one buffer when a block completes in
//! many small ones, so later readers send it in few large writes.
//!
//! The store is the only owner of its blocks: writers (fetches and merges,
//! through [`super::writer`]) claim a missing block with [`Store::open`],
//! publish into it and complete it through the store, and readers look at
//! a block only through [`Object::look`] and [`Object::published`], so the
//! byte count and the LRU are right by construction.
//!
//! Everything here runs under the relay's one lock and never waits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Meta, RelayError, Source};

/// Bytes per block: the unit of caching, eviction and disk files. A seek
/// waits for at most one block from its block's start (1 MiB: ~10–100 ms
/// from a CDN), and a 256 MiB budget holds 256 of them.
pub const BLOCK: u64 = 1 << 20;

/// A completed block in more pieces than this is gathered into one buffer.
const MAX_PIECES: usize = 8;

/// Progress of one filling block, shared with the readers waiting on it.
#[derive(Debug, Default)]
pub struct Fill {
    /// Woken when pieces are published, the block completes, the object's
    /// length becomes known, or the fill fails.
    pub notify: Notify,
    /// Why the writer gave up, for those who waited.
    pub error: OnceLock<RelayError>,
}

enum Block {
    /// Being written; `len` bytes published so far, in order.
    Filling { pieces: Vec<Bytes>, len: u64, fill: Arc<Fill> },
    /// Complete and in memory; `tick` orders the LRU.
    Ready { pieces: Vec<Bytes>, tick: u64 },
    /// Being read from the disk tier.
    Loading { fill: Arc<Fill> },
}

impl Block {
    /// The published piece holding block offset `off`, sliced from there.
    fn slice_at(pieces: &[Bytes], off: u64) -> Option<Bytes> {
        let mut start = 0u64;
        for p in pieces {
            let end = start + p.len() as u64;
            if off < end {
                return Some(p.slice((off - start) as usize..));
            }
            start = end;
        }
        None
    }
}

/// What an object is and how its bytes are made.
pub enum Kind {
    /// A file at an origin, fetched in ranges.
    Fetched {
        /// Where the bytes are now; the latest request's.
        source: Arc<dyn Source>,
        /// Blocks per upstream range (`http_chunk_size` or `STREAM_CHUNK_SIZE`).
        range_blocks: u64,
        /// Memory only (`Spec::transient`).
        transient: bool,
    },
    /// An ffmpeg output, written once from start to end.
    Merged(Production),
}

/// The state of an object written once from start to end (a merge's
/// output): its writer's task and how far it and its readers are.
#[derive(Default)]
pub struct Production {
    /// Counts productions of this object, so a stopped one's task cannot
    /// touch its successor's state.
    pub generation: u64,
    /// The writing task while it runs.
    pub task: Option<JoinHandle<()>>,
    /// Bytes written so far.
    pub produced: u64,
    /// The furthest any reader has read.
    pub furthest: u64,
    /// Woken when a reader reads further (the writer may be waiting).
    pub progress: Arc<Notify>,
    /// Woken when the writer starts a new block (for readers at the front).
    pub grow: Arc<Fill>,
}

impl Production {
    pub fn running(&self) -> bool {
        self.task.is_some()
    }

    /// The last reader left: stops an unfinished production. True if it
    /// stopped one.
    pub fn abandon(&mut self) -> bool {
        match self.task.take() {
            Some(task) => {
                task.abort();
                self.produced = 0;
                self.furthest = 0;
                true
            }
            None => false,
        }
    }

    /// A reader read up to `pos`.
    pub fn reached(&mut self, pos: u64) {
        if pos > self.furthest {
            self.furthest = pos;
            self.progress.notify_waiters();
        }
    }
}

/// What a reader finds in a block that has no bytes for it yet.
pub enum Look {
    /// Complete: there is nothing past its end.
    Ready,
    /// Being written or read back from disk: wait on its fill.
    Wait(Arc<Fill>),
}

pub struct Object {
    /// Length, type and validators, once an origin (or the merge) said.
    pub meta: Option<Meta>,
    blocks: HashMap<u64, Block>,
    pub kind: Kind,
    /// Readers alive: an object with readers, jobs or blocks is kept.
    pub readers: usize,
    /// Fetch jobs running.
    pub jobs: usize,
    /// Kept whatever the budget says: its blocks stay out of the LRU until
    /// it is unpinned (a listed live segment, until it leaves its window:
    /// the window is small, and a segment evicted while listed would be
    /// fetched from the origin again).
    pinned: bool,
}

impl Object {
    pub fn new(kind: Kind) -> Self {
        let pinned = matches!(kind, Kind::Fetched { transient: true, .. });
        Object { meta: None, blocks: HashMap::new(), kind, readers: 0, jobs: 0, pinned }
    }

    /// Blocks in the object, when its length is known.
    pub fn block_count(&self) -> Option<u64> {
        self.meta.as_ref().and_then(|m| m.len).map(|len| len.div_ceil(BLOCK))
    }

    /// Bytes block `b` holds when complete (a full block while the length
    /// is unknown).
    pub fn block_len(&self, b: u64) -> u64 {
        match self.meta.as_ref().and_then(|m| m.len) {
            Some(len) => len.saturating_sub(b * BLOCK).min(BLOCK),
            None => BLOCK,
        }
    }

    /// Whether block `b` is in memory in any state.
    pub fn has(&self, b: u64) -> bool {
        self.blocks.contains_key(&b)
    }

    /// Whether block `b` is complete and in memory.
    pub fn is_ready(&self, b: u64) -> bool {
        matches!(self.blocks.get(&b), Some(Block::Ready { .. }))
    }

    /// Block `b`'s state for a reader, when it is in memory.
    pub fn look(&self, b: u64) -> Option<Look> {
        match self.blocks.get(&b)? {
            Block::Ready { .. } => Some(Look::Ready),
            Block::Filling { fill, .. } | Block::Loading { fill } => Some(Look::Wait(fill.clone())),
        }
    }

    /// Bytes published so far into block `b` while it is being written.
    pub fn filled(&self, b: u64) -> Option<u64> {
        match self.blocks.get(&b)? {
            Block::Filling { len, .. } => Some(*len),
            _ => None,
        }
    }

    /// Bytes from `pos` that can be read now, if any.
    pub fn published(&self, pos: u64) -> Option<Bytes> {
        let (b, off) = (pos / BLOCK, pos % BLOCK);
        match self.blocks.get(&b)? {
            Block::Ready { pieces, .. } | Block::Filling { pieces, .. } => Block::slice_at(pieces, off),
            Block::Loading { .. } => None,
        }
    }
}

/// The objects and the memory budget.
pub struct Store {
    objects: HashMap<Arc<str>, Object>,
    /// Ready blocks by last use: tick → (object, block).
    lru: BTreeMap<u64, (Arc<str>, u64)>,
    tick: u64,
    /// Bytes of every block in memory (filling ones included).
    pub used: u64,
    /// `STREAM_CACHE_MEMORY`.
    budget: u64,
}

impl Store {
    pub fn new(budget: u64) -> Self {
        Store { objects: HashMap::new(), lru: BTreeMap::new(), tick: 0, used: 0, budget }
    }

    pub fn get(&self, key: &str) -> Option<&Object> {
        self.objects.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Object> {
        self.objects.get_mut(key)
    }

    /// The key `key`'s object is held under.
    pub fn key_of(&self, key: &str) -> Option<Arc<str>> {
        self.objects.get_key_value(key).map(|(k, _)| k.clone())
    }

    /// Counts a reader of `key`, made by `make` when new; returns the key
    /// the store holds it under and the object.
    pub fn visit(&mut self, key: &str, make: impl FnOnce() -> Object) -> (Arc<str>, &mut Object) {
        let key: Arc<str> = match self.objects.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => key.into(),
        };
        let obj = self.objects.entry(key.clone()).or_insert_with(make);
        obj.readers += 1;
        (key, obj)
    }

    /// Claims missing block `b` of `key` for a writer: the block is filling,
    /// and its readers wait on the returned fill. `None` when the object is
    /// gone or the block exists.
    pub fn open(&mut self, key: &str, b: u64) -> Option<Arc<Fill>> {
        let obj = self.objects.get_mut(key)?;
        if obj.blocks.contains_key(&b) {
            return None;
        }
        let fill = Arc::new(Fill::default());
        obj.blocks.insert(b, Block::Filling { pieces: Vec::new(), len: 0, fill: fill.clone() });
        Some(fill)
    }

    /// Marks missing block `b` as being read back from disk.
    pub fn start_loading(&mut self, key: &str, b: u64) -> Option<Arc<Fill>> {
        let obj = self.objects.get_mut(key)?;
        if obj.blocks.contains_key(&b) {
            return None;
        }
        let fill = Arc::new(Fill::default());
        obj.blocks.insert(b, Block::Loading { fill: fill.clone() });
        Some(fill)
    }

    /// Drops every block of `key` (see [`Store::drop_block`]).
    pub fn drop_all(&mut self, key: &str, error: Option<&RelayError>) {
        let Some(obj) = self.objects.get(key) else { return };
        let blocks: Vec<u64> = obj.blocks.keys().copied().collect();
        for b in blocks {
            self.drop_block(key, b, error);
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Marks a ready block as just used.
    pub fn touch(&mut self, key: &Arc<str>, b: u64) {
        let tick = self.next_tick();
        let Some(obj) = self.objects.get_mut(key).filter(|o| !o.pinned) else { return };
        if let Some(Block::Ready { tick: t, .. }) = obj.blocks.get_mut(&b) {
            self.lru.remove(t);
            *t = tick;
            self.lru.insert(tick, (key.clone(), b));
        }
    }

    /// Lets the budget take a pinned object's blocks from now on (see
    /// [`Object`]'s `pinned`), as the least recently used.
    pub fn unpin(&mut self, key: &Arc<str>) {
        let Some(obj) = self.objects.get_mut(key).filter(|o| o.pinned) else { return };
        obj.pinned = false;
        let ready: Vec<u64> =
            obj.blocks.iter().filter(|(_, b)| matches!(b, Block::Ready { .. })).map(|(b, _)| *b).collect();
        for b in ready {
            self.touch(key, b);
        }
    }

    /// Appends `data` at block offset `off` of block `b` if `fill` still
    /// owns it and `off` is where it stands. Returns whether it was taken
    /// and whether the block is now complete.
    pub fn publish(&mut self, key: &str, b: u64, off: u64, fill: &Arc<Fill>, data: Bytes) -> Published {
        let Some(obj) = self.objects.get_mut(key) else { return Published::Lost };
        let full = obj.block_len(b);
        match obj.blocks.get_mut(&b) {
            Some(Block::Filling { pieces, len, fill: f }) if Arc::ptr_eq(f, fill) && *len == off => {
                let n = data.len() as u64;
                pieces.push(data);
                *len += n;
                self.used += n;
                if *len >= full { Published::Complete } else { Published::Taken }
            }
            _ => Published::Lost,
        }
    }

    /// Turns a filling block into a ready one (gathering small pieces);
    /// returns its bytes, for the disk tier.
    pub fn complete(&mut self, key: &Arc<str>, b: u64) -> Option<Vec<Bytes>> {
        let tick = self.next_tick();
        let obj = self.objects.get_mut(key)?;
        let Some(Block::Filling { pieces, len, fill }) = obj.blocks.remove(&b) else { return None };
        let pieces = if pieces.len() > MAX_PIECES {
            let mut one = BytesMut::with_capacity(len as usize);
            for p in &pieces {
                one.extend_from_slice(p);
            }
            vec![one.freeze()]
        } else {
            pieces
        };
        obj.blocks.insert(b, Block::Ready { pieces: pieces.clone(), tick });
        if !obj.pinned {
            self.lru.insert(tick, (key.clone(), b));
        }
        fill.notify.notify_waiters();
        Some(pieces)
    }

    /// Puts a block read back from disk in memory as ready.
    pub fn insert_ready(&mut self, key: &Arc<str>, b: u64, data: Bytes) {
        let tick = self.next_tick();
        let Some(obj) = self.objects.get_mut(key) else { return };
        let n = data.len() as u64;
        if let Some(Block::Loading { fill }) = obj.blocks.insert(b, Block::Ready { pieces: vec![data], tick }) {
            fill.notify.notify_waiters();
        }
        self.used += n;
        if !obj.pinned {
            self.lru.insert(tick, (key.clone(), b));
        }
    }

    /// Drops a block whatever its state; waiters of a filling or loading one
    /// are told `error` (or just woken, to look again, when `None`).
    pub fn drop_block(&mut self, key: &str, b: u64, error: Option<&RelayError>) {
        let Some(obj) = self.objects.get_mut(key) else { return };
        match obj.blocks.remove(&b) {
            Some(Block::Filling { len, fill, .. }) => {
                self.used -= len;
                if let Some(e) = error {
                    let _ = fill.error.set(e.clone());
                }
                fill.notify.notify_waiters();
            }
            Some(Block::Loading { fill }) => {
                if let Some(e) = error {
                    let _ = fill.error.set(e.clone());
                }
                fill.notify.notify_waiters();
            }
            Some(Block::Ready { pieces, tick }) => {
                self.used -= pieces.iter().map(|p| p.len() as u64).sum::<u64>();
                self.lru.remove(&tick);
            }
            None => {}
        }
    }

    /// Evicts least recently used ready blocks until the budget holds,
    /// sparing the one used last (a lone reader is still in it when the
    /// budget is 0). Returns how many left.
    pub fn make_room(&mut self) -> u64 {
        let mut out = 0;
        while self.used > self.budget && self.lru.len() > 1 {
            let Some((_, (key, b))) = self.lru.pop_first() else { break };
            let Some(obj) = self.objects.get_mut(&key) else { continue };
            if let Some(Block::Ready { pieces, .. }) = obj.blocks.remove(&b) {
                let bytes = pieces.iter().map(|p| p.len() as u64).sum::<u64>();
                self.used -= bytes;
                out += 1;
            }
            self.forget_if_idle(&key);
        }
        out
    }

    /// Removes an object nobody reads, fetches or stores any more.
    pub fn forget_if_idle(&mut self, key: &str) {
        let idle = self.objects.get(key).is_some_and(|o| {
            o.blocks.is_empty()
                && o.readers == 0
                && o.jobs == 0
                && !matches!(o.kind, Kind::Merged(ref p) if p.running())
        });
        if idle {
            self.objects.remove(key);
        }
    }
}

/// The bytes a writer copied for block `b` and has not published yet, in one
/// allocation of the rest of the block's size: published pieces are slices
/// of it, so a block costs its own length whatever the origin's frames were
/// (frames are copied once, and the connection's buffer is reused).
pub struct BlockBuf {
    pub b: u64,
    /// Block offset of the first unpublished byte.
    off: u64,
    buf: BytesMut,
}

impl BlockBuf {
    /// For block `b` from offset `off`, `len` bytes long when complete.
    pub fn new(b: u64, off: u64, len: u64) -> Self {
        BlockBuf { b, off, buf: BytesMut::with_capacity(len.saturating_sub(off) as usize) }
    }

    /// Bytes the block can still take.
    pub fn room(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The unpublished bytes and their block offset.
    pub fn take(&mut self) -> (u64, Bytes) {
        let off = self.off;
        let piece = self.buf.split().freeze();
        self.off += piece.len() as u64;
        (off, piece)
    }
}

/// The outcome of [`Store::publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Taken,
    Complete,
    /// The block is no longer this writer's (the object changed or went).
    Lost,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_sliced_where_asked() {
        let pieces = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        assert_eq!(Block::slice_at(&pieces, 0).unwrap(), "abc");
        assert_eq!(Block::slice_at(&pieces, 2).unwrap(), "c");
        assert_eq!(Block::slice_at(&pieces, 3).unwrap(), "defg");
        assert_eq!(Block::slice_at(&pieces, 6).unwrap(), "g");
        assert!(Block::slice_at(&pieces, 7).is_none());
    }
}
