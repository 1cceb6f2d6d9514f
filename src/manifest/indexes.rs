//! The layout of each DASH file, read once and kept: a manifest served
//! from a warm cache costs no upstream request.
//!
//! The first bytes are read through the relay, so the origin's quirks
//! (ignored ranges, expired URLs) are handled where they are for every
//! other byte: exactly the first 64 KiB when the store holds none of them
//! (see `read`), through the store's blocks past that. Indexes are keyed like the relay's objects (the video's
//! key with its sign-in scope, and the format), not by URL: a new
//! extraction changes the URL, not the bytes.

use std::sync::Arc;

use super::{Index, IndexError};
use crate::cache::{Entry, Settings, Tiered};
use crate::relay::{Relay, RelayError, Spec};

/// Bytes asked for first: YouTube's heads (ftyp, moov, sidx) of films of
/// a few hours fit.
const FIRST_READ: u64 = 64 * 1024;

/// The most bytes read for a head; past this a file is not laid out for
/// streaming.
const MAX_HEAD: u64 = 2 * 1024 * 1024;

/// Why a file has no index.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexFailure {
    /// The file is not a DASH MP4 with a `sidx` (a progressive MP4, WebM).
    #[error("{0}")]
    NotDash(String),
    /// Its bytes could not be had.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

/// The kept indexes: a memory-only use of the one cache type.
pub struct Indexes {
    cache: Tiered<Index>,
}

impl Entry for Index {
    fn weight(&self) -> u32 {
        Index::weight(self)
    }
}

impl Indexes {
    /// Keeps up to `budget` bytes of indexes (a 2-hour film's is ~35 KB),
    /// each for `ttl` (the bytes of a format do not change; the TTL only
    /// bounds how long a removed video's layout lingers).
    pub fn new(budget: u64, ttl: std::time::Duration) -> Self {
        Indexes { cache: Tiered::new(Settings { capacity: budget, ttl, redis: None, prefix: "", lock: None }) }
    }

    /// The index of the object `spec()` names, read once however many
    /// ask at the same time.
    pub async fn get(&self, relay: &Relay, spec: impl Fn() -> Spec) -> Result<Arc<Index>, Arc<IndexFailure>> {
        let key = spec().key;
        self.cache.get_or_fetch(&key, |_| true, || read(relay, &spec)).await.map(|(index, _)| index)
    }
}

async fn read(relay: &Relay, spec: &impl Fn() -> Spec) -> Result<Index, IndexFailure> {
    let mut want = FIRST_READ;
    // The first read asks the origin for just the head (unless the store
    // holds it): a master lists every rendition and reads each one's index,
    // and most renditions are never played; a played one's first block is
    // then fetched by its first player (the head twice, 64 KiB, against a
    // 1 MiB block per rendition read for its index alone). A head that
    // needs more goes through the store, whose fetches share.
    let mut head = relay.read_exact(spec(), 0..want).await?;
    loop {
        match Index::parse(&head) {
            Ok(index) => return Ok(index),
            Err(IndexError::NeedMore(n)) if n <= MAX_HEAD && (head.len() as u64) >= want => want = n,
            Err(IndexError::NeedMore(_)) => {
                return Err(IndexFailure::NotDash("no sidx box near the start of the file".into()));
            }
            Err(IndexError::NotDash(why)) => return Err(IndexFailure::NotDash(why.into())),
        }
        head = relay.read(spec(), 0..want).await?;
    }
}
