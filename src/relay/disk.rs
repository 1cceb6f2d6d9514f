//! The disk tier: completed blocks written under `STREAM_CACHE_DIR`, kept
//! across restarts, least recently used deleted past
//! `STREAM_CACHE_DISK_MAX`.
//!
//! Layout: one folder per object (the first 16 bytes of the SHA-256 of its
//! key, in hex), holding `meta.json` (length, type, validators) and one file
//! per block, `{block:08x}.blk`: a 16-byte header (`RLYB`, version, length,
//! CRC-32 of the data) and the data. A block is written to a temporary name
//! and renamed, so a crash leaves whole files or none; a file whose length or
//! checksum is wrong (torn, corrupt, truncated by hand) is deleted when read
//! and the block fetched again.
//!
//! A disk that fails (full, read-only, gone) never fails a stream: the tier
//! logs once, counts the error, and stays out of the way for a minute before
//! trying again; memory keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::Meta;
use crate::metrics::Metrics;

const MAGIC: &[u8; 4] = b"RLYB";
const VERSION: u32 = 1;
const HEADER: usize = 16;
/// How long a failed disk is left alone.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Block writes queued at once; more are skipped (the block stays in memory only).
const WRITES_IN_FLIGHT: usize = 16;

type Id = [u8; 16];

fn id_of(key: &str) -> Id {
    let digest = Sha256::digest(key.as_bytes());
    digest[..16].try_into().expect("a SHA-256 has 32 bytes")
}

fn hex(id: &Id) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Index {
    /// Blocks on disk: their size and last use.
    blocks: HashMap<(Id, u64), (u64, u64)>,
    /// Last use → block.
    lru: BTreeMap<u64, (Id, u64)>,
    metas: HashMap<Id, Meta>,
    used: u64,
    tick: u64,
}

impl Index {
    fn insert(&mut self, id: Id, b: u64, size: u64) {
        self.remove(id, b);
        self.tick += 1;
        self.blocks.insert((id, b), (size, self.tick));
        self.lru.insert(self.tick, (id, b));
        self.used += size;
    }

    fn remove(&mut self, id: Id, b: u64) -> bool {
        match self.blocks.remove(&(id, b)) {
            Some((size, tick)) => {
                self.lru.remove(&tick);
                self.used -= size;
                true
            }
            None => false,
        }
    }

    fn touch(&mut self, id: Id, b: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, t)) = self.blocks.get_mut(&(id, b)) {
            self.lru.remove(t);
            *t = tick;
            self.lru.insert(tick, (id, b));
        }
    }
}

/// Whether the disk can be used now.
#[derive(Default)]
struct Health {
    down_until: Option<Instant>,
}

pub struct Disk {
    dir: PathBuf,
    max: u64,
    index: Arc<Mutex<Index>>,
    health: Arc<Mutex<Health>>,
    writes: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Disk {
    /// Opens the tier, reading what an earlier run left. A folder that
    /// cannot be made or read leaves the tier down (logged), not the server.
    pub async fn open(dir: PathBuf, max: u64, metrics: Arc<Metrics>) -> std::io::Result<Disk> {
        let scan_dir = dir.clone();
        let scanned = tokio::task::spawn_blocking(move || scan(&scan_dir)).await.map_err(std::io::Error::other)?;
        let disk = Disk {
            dir,
            max,
            index: Arc::default(),
            health: Arc::default(),
            writes: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
            metrics,
        };
        match scanned {
            Ok(index) => {
                tracing::info!(dir = %disk.dir.display(), blocks = index.blocks.len(), bytes = index.used, "stream cache disk tier opened");
                *disk.index.lock().unwrap_or_else(PoisonError::into_inner) = index;
                disk.trim();
            }
            Err(e) => disk.failed(&e),
        }
        disk.metrics.relay.set_disk_bytes(disk.index().used);
        Ok(disk)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn object_dir(&self, id: &Id) -> PathBuf {
        self.dir.join(hex(id))
    }

    pub fn has(&self, key: &str, b: u64) -> bool {
        self.index().blocks.contains_key(&(id_of(key), b))
    }

    pub fn meta(&self, key: &str) -> Option<Meta> {
        self.index().metas.get(&id_of(key)).cloned()
    }

    fn is_down(&self) -> bool {
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match h.down_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                h.down_until = None;
                tracing::info!("stream cache disk tier: trying the disk again");
                false
            }
            None => false,
        }
    }

    /// Logs the first failure of a spell, counts every one, and rests.
    fn failed(&self, e: &std::io::Error) {
        self.metrics.relay.disk_errors.inc();
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if h.down_until.is_none() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "stream cache disk tier unavailable; serving from memory only");
        }
        h.down_until = Some(Instant::now() + RETRY_AFTER);
    }

    /// Records the object's meta (once it is known or complete).
    pub fn save_meta(&self, key: &str, meta: &Meta) {
        if self.is_down() {
            return;
        }
        let id = id_of(key);
        self.index().metas.insert(id, meta.clone());
        let dir = self.object_dir(&id);
        let json = serde_json::to_vec(meta).expect("plain struct");
        let me = self.handle();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| write_atomic(&dir.join("meta.json"), &[&json]))
            {
                me.index().metas.remove(&id);
                me.failed(&e);
            }
        });
    }

    /// Writes a completed block, in the background; skipped when the disk is
    /// down or too many writes are queued.
    pub fn write(&self, key: &str, b: u64, pieces: Vec<Bytes>) {
        if self.is_down() {
            return;
        }
        let Ok(permit) = self.writes.clone().try_acquire_owned() else {
            self.metrics.relay.disk_skipped.inc();
            return;
        };
        let id = id_of(key);
        let dir = self.object_dir(&id);
        let me = self.handle();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let data: Vec<&[u8]> = pieces.iter().map(|p| p.as_ref()).collect();
            let len: usize = data.iter().map(|d| d.len()).sum();
            let mut crc = crc32fast::Hasher::new();
            for d in &data {
                crc.update(d);
            }
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&VERSION.to_le_bytes());
            header.extend_from_slice(&(len as u32).to_le_bytes());
            header.extend_from_slice(&crc.finalize().to_le_bytes());
            let mut parts = vec![header.as_slice()];
            parts.extend(data);
            let path = dir.join(format!("{b:08x}.blk"));
            match std::fs::create_dir_all(&dir).and_then(|()| write_atomic(&path, &parts)) {
                Ok(()) => {
                    me.index().insert(id, b, (HEADER + len) as u64);
                    me.metrics.relay.disk_writes.inc();
                    me.trim();
                }
                Err(e) => me.failed(&e),
            }
        });
    }

    /// Reads block `b` back, checking its length and checksum; a bad file
    /// is deleted and `None` returned (the block is fetched again).
    pub async fn load(&self, key: &str, b: u64, expected: u64) -> Option<Bytes> {
        let id = id_of(key);
        let path = self.object_dir(&id).join(format!("{b:08x}.blk"));
        let me = self.handle();
        tokio::task::spawn_blocking(move || {
            let found =
                std::fs::read(&path).map_err(|e| e.to_string()).and_then(|raw| check(&raw, expected).map(|()| raw));
            match found {
                Ok(mut raw) => {
                    me.index().touch(id, b);
                    let data = raw.split_off(HEADER);
                    Some(Bytes::from(data))
                }
                Err(why) => {
                    tracing::warn!(file = %path.display(), reason = %why, "stream cache: dropping a bad block file");
                    me.metrics.relay.disk_corrupt.inc();
                    let _ = std::fs::remove_file(&path);
                    me.index().remove(id, b);
                    me.metrics.relay.set_disk_bytes(me.index().used);
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Forgets every block of `key` (a merge being made again).
    pub fn forget(&self, key: &str) {
        let id = id_of(key);
        {
            let mut index = self.index();
            let blocks: Vec<u64> = index.blocks.keys().filter(|(i, _)| *i == id).map(|(_, b)| *b).collect();
            for b in blocks {
                index.remove(id, b);
            }
            index.metas.remove(&id);
        }
        let dir = self.object_dir(&id);
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(dir);
        });
    }

    /// Deletes least recently used blocks past the budget.
    fn trim(&self) {
        let mut victims = Vec::new();
        {
            let mut index = self.index();
            while index.used > self.max {
                let Some((_, (id, b))) = index.lru.pop_first() else { break };
                index.remove(id, b);
                victims.push((id, b));
                self.metrics.relay.evictions_disk.inc();
            }
            self.metrics.relay.set_disk_bytes(index.used);
        }
        for (id, b) in victims {
            let _ = std::fs::remove_file(self.object_dir(&id).join(format!("{b:08x}.blk")));
        }
    }

    /// A clone sharing everything, for background tasks.
    fn handle(&self) -> Disk {
        Disk {
            dir: self.dir.clone(),
            max: self.max,
            index: self.index.clone(),
            health: self.health.clone(),
            writes: self.writes.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Checks a block file: header, length, checksum.
fn check(raw: &[u8], expected: u64) -> Result<(), String> {
    if raw.len() < HEADER || &raw[..4] != MAGIC {
        return Err("not a block file".into());
    }
    let word = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().expect("four bytes"));
    if word(4) != VERSION {
        return Err("another version".into());
    }
    let len = word(8) as usize;
    if len != raw.len() - HEADER || len as u64 != expected {
        return Err(format!("{} bytes where {expected} were expected", raw.len() - HEADER));
    }
    if crc32fast::hash(&raw[HEADER..]) != word(12) {
        return Err("checksum mismatch".into());
    }
    Ok(())
}

/// Writes `parts` to a temporary file beside `path`, then renames it.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads what an earlier run left: metas and block files, oldest first by
/// modification time. Leftover temporary files are deleted.
fn scan(dir: &Path) -> std::io::Result<Index> {
    std::fs::create_dir_all(dir)?;
    let mut found: Vec<(std::time::SystemTime, Id, u64, u64)> = Vec::new();
    let mut index = Index::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = parse_id(&name) else { continue };
        let path = entry.path();
        match std::fs::read(path.join("meta.json")).ok().and_then(|j| serde_json::from_slice::<Meta>(&j).ok()) {
            Some(meta) => {
                index.metas.insert(id, meta);
            }
            None => {
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
        }
        for file in std::fs::read_dir(&path)? {
            let file = file?;
            let fname = file.file_name().to_string_lossy().into_owned();
            if fname.contains(".tmp-") {
                let _ = std::fs::remove_file(file.path());
                continue;
            }
            let Some(b) = fname.strip_suffix(".blk").and_then(|h| u64::from_str_radix(h, 16).ok()) else { continue };
            let md = file.metadata()?;
            found.push((md.modified().unwrap_or(std::time::UNIX_EPOCH), id, b, md.len()));
        }
    }
    found.sort_by_key(|f| f.0);
    for (_, id, b, size) in found {
        index.insert(id, b, size);
    }
    Ok(index)
}

fn parse_id(name: &str) -> Option<Id> {
    if name.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(name.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_files_are_checked() {
        let data = b"hello block";
        let mut raw = Vec::new();
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&VERSION.to_le_bytes());
        raw.extend_from_slice(&(data.len() as u32).to_le_bytes());
        raw.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        raw.extend_from_slice(data);
        assert!(check(&raw, data.len() as u64).is_ok());
        assert!(check(&raw, 5).is_err(), "wrong expected length");
        assert!(check(&raw[..raw.len() - 1], data.len() as u64).is_err(), "torn");
        let mut flipped = raw.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(check(&flipped, data.len() as u64).unwrap_err().contains("checksum"));
        assert_eq!(parse_id(&hex(&id_of("k"))), Some(id_of("k")));
    }
}
