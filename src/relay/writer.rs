//! The one way bytes enter the store. A writer owns some filling blocks
//! (claimed with [`Store::open`](super::store::Store::open)), copies what
//! arrives into the block at its position (one allocation per block, see
//! [`BlockBuf`]) and publishes it to readers in pieces as it lands.
//!
//! A fetch owns the blocks its range covers and may skip some (a whole-file
//! answer passing a stored block); a merge's writer is sequential: it owns
//! the block at the front of its output, and the next one is opened as each
//! completes, while its production is the one it writes for.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Shared;
use super::store::{BLOCK, BlockBuf, Fill, Kind, Object, Published};

/// Bytes copied before they are published to readers, when more arrive at
/// once: large pieces for fast origins (few, big writes to clients), every
/// frame at once for slow ones.
pub(super) const PUBLISH: usize = 256 * 1024;

pub(super) struct Writer {
    shared: Arc<Shared>,
    key: Arc<str>,
    /// The blocks this writer owns, and their fills.
    pub owned: BTreeMap<u64, Arc<Fill>>,
    /// The block being copied into.
    cur: Option<BlockBuf>,
    /// For a production's writer, its generation: the block after one that
    /// completes is opened.
    sequential: Option<u64>,
}

impl Writer {
    /// A writer of the blocks `owned` (a fetch's claims).
    pub fn new(shared: Arc<Shared>, key: Arc<str>, owned: BTreeMap<u64, Arc<Fill>>) -> Self {
        Writer { shared, key, owned, cur: None, sequential: None }
    }

    /// A writer from byte 0 to the end for production `generation`, which
    /// owns block 0 (`first`).
    pub fn sequential(shared: Arc<Shared>, key: Arc<str>, generation: u64, first: Arc<Fill>) -> Self {
        Writer { shared, key, owned: BTreeMap::from([(0, first)]), cur: None, sequential: Some(generation) }
    }

    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// Copies `data`, which starts at object offset `pos`, into the owned
    /// blocks it covers, publishing whole pieces. Returns false when the
    /// writer owns nothing more (its blocks are complete, or were taken).
    pub fn write(&mut self, mut pos: u64, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let (b, off) = (pos / BLOCK, pos % BLOCK);
            if self.cur.as_ref().is_none_or(|c| c.b != b) {
                self.flush();
                self.cur = None;
                if !self.owned.contains_key(&b) {
                    // Not this writer's block (a whole-file answer passing a stored one).
                    let n = ((BLOCK - off) as usize).min(data.len());
                    data = &data[n..];
                    pos += n as u64;
                    continue;
                }
                let len = self.shared.lock().get(&self.key).map_or(BLOCK, |o| o.block_len(b));
                self.cur = Some(BlockBuf::new(b, off, len));
            }
            let cur = self.cur.as_mut().expect("set above");
            let n = cur.room().min(data.len());
            cur.push(&data[..n]);
            data = &data[n..];
            pos += n as u64;
            if cur.room() == 0 || cur.pending() >= PUBLISH {
                self.flush();
            }
            if n == 0 {
                // A block with no room left that is not complete: the length changed.
                self.cur = None;
                break;
            }
        }
        !self.owned.is_empty()
    }

    /// Publishes what the current block holds. A block that completes (or
    /// was taken from the writer) is no longer owned; a sequential writer
    /// then opens the next.
    pub fn flush(&mut self) {
        let Some(cur) = self.cur.as_mut() else { return };
        if cur.pending() == 0 {
            return;
        }
        let b = cur.b;
        let Some(fill) = self.owned.get(&b).cloned() else {
            self.cur = None;
            return;
        };
        match self.shared.publish(&self.key, cur, &fill) {
            Published::Taken => {}
            Published::Lost => {
                self.owned.remove(&b);
                self.cur = None;
            }
            Published::Complete => {
                self.owned.remove(&b);
                self.cur = None;
                if let Some(generation) = self.sequential {
                    self.open_next(b + 1, generation);
                }
            }
        }
    }

    /// Opens block `b` of the production `generation`, if it is still the
    /// object's, and wakes the readers waiting at the front.
    fn open_next(&mut self, b: u64, generation: u64) {
        let mut store = self.shared.lock();
        let current =
            matches!(store.get(&self.key), Some(Object { kind: Kind::Merged(p), .. }) if p.generation == generation);
        if !current {
            return;
        }
        if let Some(fill) = store.open(&self.key, b) {
            self.owned.insert(b, fill);
        }
        if let Some(Object { kind: Kind::Merged(p), .. }) = store.get(&self.key) {
            p.grow.notify.notify_waiters();
        }
    }
}
