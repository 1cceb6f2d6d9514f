//! Merged streams: separate video and audio (YouTube above 360p, Bilibili)
//! joined by ffmpeg without re-encoding into fragmented MP4, one ffmpeg per
//! (video, plan) at a time, its output an object in the store.
//!
//! - ffmpeg reads its inputs from the relay itself, over a loopback
//!   listener ([`super::internal`]): each input is fetched from the origin
//!   once, in ranges, resumed after drops, shared with viewers of the same
//!   format, and only the relay's URLs (never a local file) reach ffmpeg.
//! - Viewers join the output from byte 0 and follow it as it is written;
//!   ffmpeg runs at most a budget's quarter (≤ 64 MiB) ahead of the
//!   furthest of them, so a paused crowd does not pull a whole film.
//! - Once ffmpeg exits cleanly the object has a length and is served like a
//!   file: `Content-Length`, `Range`, `HEAD`, seeking.
//! - When its last viewer leaves an unfinished merge, ffmpeg is killed (with
//!   its process group) and what it wrote is dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;

use super::fetch::PUBLISH;
use super::store::{BLOCK, Block, BlockBuf, Fill, Kind, Object, Published};
use super::{Body, Meta, Reader, Relay, RelayError, Reply, Shared, Spec, Step, Visit};
use crate::process::GroupGuard;

/// How much of ffmpeg's stderr is kept for the log.
const STDERR_TAIL: usize = 4096;

/// A merge to serve: the object's key and its two inputs.
pub struct MergeSpec {
    pub key: String,
    pub video: Spec,
    pub audio: Spec,
}

/// The state of a merged object's production.
#[derive(Default)]
pub struct Production {
    /// Counts productions of this object, so a stopped one's task cannot
    /// touch its successor's state.
    generation: u64,
    /// The ffmpeg task while it runs.
    task: Option<JoinHandle<()>>,
    /// Bytes written so far.
    produced: u64,
    /// The furthest any viewer has read.
    furthest: u64,
    /// Woken when a viewer reads further (ffmpeg may be waiting).
    pub progress: Arc<Notify>,
    /// Woken when ffmpeg starts a new block (for viewers at the front).
    pub grow: Arc<Fill>,
}

impl Production {
    pub fn running(&self) -> bool {
        self.task.is_some()
    }

    /// The last viewer left: stops an unfinished merge. True if it stopped one.
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

    /// A viewer read up to `pos`.
    pub fn reached(&mut self, pos: u64) {
        if pos > self.furthest {
            self.furthest = pos;
            self.progress.notify_waiters();
        }
    }
}

/// What a viewer finds where the merge has no block.
pub(super) fn step_missing(p: &Production, b: u64, meta: Option<&Meta>) -> Step {
    match meta.and_then(|m| m.len) {
        Some(_) => Step::Fail(RelayError::Gone("this part of the merged stream is no longer stored".into())),
        None if p.running() && b * BLOCK >= p.produced => Step::Wait(p.grow.clone()),
        None if p.running() => {
            Step::Fail(RelayError::Gone("this part of the merged stream is no longer stored".into()))
        }
        None => Step::Fail(RelayError::Gone("the merge was stopped".into())),
    }
}

impl Relay {
    /// Serves a merged stream: from the store once complete, else the live
    /// output from byte 0, starting ffmpeg if no one has.
    pub async fn serve_merge(
        &self,
        spec: MergeSpec,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Reply, RelayError> {
        let shared = &self.0;
        let visit = shared.visit_merge(&spec.key);
        let meta = {
            let store = shared.lock();
            store.objects.get(&visit.key).and_then(|o| o.meta.clone())
        };
        if let Some(meta) = meta.filter(|m| m.len.is_some())
            && shared.merge_is_whole(&visit.key)
        {
            return super::serve::answer(visit, &meta, method, headers, true, false).await;
        }
        if method == Method::HEAD {
            return Ok(live_head(Body::Empty));
        }
        shared.start_merge(&visit.key, spec);
        let mut reader = Reader::new(visit, 0, None);
        match reader.next().await {
            Some(Err(e)) => Err(e),
            None => Err(RelayError::MergeFailed),
            Some(Ok(first)) => Ok(live_head(super::serve::streamed(&shared.metrics, first, reader, None, true))),
        }
    }
}

/// The head of a merge still being written: no length, no ranges.
fn live_head(body: Body) -> Reply {
    let mut reply = http::Response::new(body);
    let h = reply.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    *reply.status_mut() = StatusCode::OK;
    reply
}

impl Shared {
    /// Visits (creating it if new) the merged object `key`.
    fn visit_merge(self: &Arc<Self>, key: &str) -> Visit {
        let mut store = self.lock();
        let key: Arc<str> = match store.objects.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => key.into(),
        };
        let disk_meta = self.disk.as_ref().and_then(|d| d.meta(&key));
        let obj = store.objects.entry(key.clone()).or_insert_with(|| {
            let mut o = Object::new(Kind::Merged(Production::default()));
            o.meta = disk_meta;
            o
        });
        obj.readers += 1;
        drop(store);
        Visit { shared: self.clone(), key }
    }

    /// True when every block of a finished merge is in memory or on disk.
    fn merge_is_whole(&self, key: &Arc<str>) -> bool {
        let store = self.lock();
        let Some(obj) = store.objects.get(key) else { return false };
        let Some(count) = obj.block_count() else { return false };
        (0..count).all(|b| obj.blocks.contains_key(&b) || self.on_disk(key, b))
    }

    /// Starts ffmpeg for `key` unless it runs; a finished merge with blocks
    /// missing is made again from the start.
    fn start_merge(self: &Arc<Self>, key: &Arc<str>, spec: MergeSpec) {
        let mut store = self.lock();
        let Some(obj) = store.objects.get_mut(key) else { return };
        let Kind::Merged(p) = &mut obj.kind else { return };
        if p.running() {
            self.metrics.relay.coalesced.inc();
            return;
        }
        *p = Production { generation: p.generation + 1, ..Production::default() };
        let generation = p.generation;
        obj.meta = Some(Meta {
            len: None,
            content_type: Some("video/mp4".into()),
            ranged: true,
            stored: true,
            ..Meta::default()
        });
        let stale: Vec<u64> = obj.blocks.keys().copied().collect();
        for b in stale {
            store.drop_block(key, b, None);
        }
        if let Some(disk) = &self.disk {
            disk.forget(key);
        }
        let Some(Object { kind: Kind::Merged(p), blocks, .. }) = store.objects.get_mut(key) else { return };
        let fill = Arc::new(Fill::default());
        blocks.insert(0, Block::Filling { pieces: Vec::new(), len: 0, fill });
        self.metrics.relay.merges.inc();
        p.task = Some(tokio::spawn(produce(self.clone(), key.clone(), generation, spec)));
    }
}

/// Runs ffmpeg and writes its output into the object.
async fn produce(shared: Arc<Shared>, key: Arc<str>, generation: u64, spec: MergeSpec) {
    let video = shared.internal.route(spec.video, "video.mp4");
    let audio = shared.internal.route(spec.audio, "audio.m4a");
    let result = match Ffmpeg::start(&shared.settings.ffmpeg, &video.url, &audio.url) {
        Ok(ffmpeg) => write_output(&shared, &key, generation, ffmpeg).await,
        Err(e) => Err(e),
    };
    let mut store = shared.lock();
    let Some(obj) = store.objects.get_mut(&key) else { return };
    let Kind::Merged(p) = &mut obj.kind else { return };
    if p.generation != generation {
        return;
    }
    p.task = None;
    p.grow.notify.notify_waiters();
    match result {
        Ok(len) => {
            if let Some(m) = &mut obj.meta {
                m.len = Some(len);
            }
            // The block ffmpeg was writing when it ended: complete, or empty.
            let last = len / BLOCK;
            if len % BLOCK == 0 {
                store.drop_block(&key, last, None);
            } else if let Some(pieces) = store.complete(&key, last)
                && let Some(disk) = &shared.disk
            {
                disk.write(&key, last, pieces);
            }
            if let (Some(disk), Some(meta)) = (&shared.disk, store.objects.get(&key).and_then(|o| o.meta.as_ref())) {
                disk.save_meta(&key, meta);
            }
            tracing::info!(key = %key, bytes = len, "merge complete");
        }
        Err(e) => {
            obj.meta = None;
            let blocks: Vec<u64> = obj.blocks.keys().copied().collect();
            for b in blocks {
                store.drop_block(&key, b, Some(&e));
            }
        }
    }
    store.forget_if_idle(&key);
}

/// Copies ffmpeg's stdout into the object's blocks; returns its length.
async fn write_output(
    shared: &Arc<Shared>,
    key: &Arc<str>,
    generation: u64,
    mut ffmpeg: Ffmpeg,
) -> Result<u64, RelayError> {
    let ahead = (shared.settings.memory / 4).clamp(4 * BLOCK, 64 * BLOCK);
    let mut out = Output { shared: shared.clone(), key: key.clone(), generation, cur: BlockBuf::new(0, 0, BLOCK) };
    let mut produced = 0u64;
    loop {
        let next = match ffmpeg.stdout.next().now_or_never() {
            Some(next) => next,
            None => {
                out.flush()?;
                ffmpeg.stdout.next().await
            }
        };
        let Some(Ok(data)) = next else { break };
        let mut data = &data[..];
        while !data.is_empty() {
            let n = out.cur.room().min(data.len());
            out.cur.push(&data[..n]);
            data = &data[n..];
            produced += n as u64;
            if out.cur.room() == 0 || out.cur.pending() >= PUBLISH {
                out.flush()?;
            }
        }
        // Too far ahead of every viewer: wait for one to read on.
        loop {
            let progress = {
                let mut store = shared.lock();
                let Some(Object { kind: Kind::Merged(p), .. }) = store.objects.get_mut(key) else { break };
                if p.generation != generation {
                    return Err(RelayError::Gone("the merge was stopped".into()));
                }
                p.produced = produced;
                if produced <= p.furthest + ahead {
                    break;
                }
                p.progress.clone()
            };
            out.flush()?;
            let wait = progress.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            let caught_up = {
                let store = shared.lock();
                matches!(store.objects.get(key), Some(Object { kind: Kind::Merged(p), .. }) if produced <= p.furthest + ahead)
            };
            if !caught_up {
                wait.await;
            }
        }
    }
    out.flush()?;
    ffmpeg.finish(produced).await?;
    Ok(produced)
}

/// ffmpeg's output being copied into the object, a block at a time.
struct Output {
    shared: Arc<Shared>,
    key: Arc<str>,
    generation: u64,
    cur: BlockBuf,
}

impl Output {
    /// Publishes what the current block holds; a full block completes and
    /// the next one opens.
    fn flush(&mut self) -> Result<(), RelayError> {
        if self.cur.pending() == 0 {
            return Ok(());
        }
        let stopped = || RelayError::Gone("the merge was stopped".into());
        let b = self.cur.b;
        let fill = {
            let store = self.shared.lock();
            match store.objects.get(&self.key) {
                Some(Object { kind: Kind::Merged(p), blocks, .. }) if p.generation == self.generation => {
                    match blocks.get(&b) {
                        Some(Block::Filling { fill, .. }) => fill.clone(),
                        _ => return Err(stopped()),
                    }
                }
                _ => return Err(stopped()),
            }
        };
        match self.shared.publish(&self.key, &mut self.cur, &fill) {
            Published::Taken => Ok(()),
            Published::Lost => Err(stopped()),
            Published::Complete => {
                let mut store = self.shared.lock();
                if let Some(Object { kind: Kind::Merged(p), blocks, .. }) = store.objects.get_mut(&self.key)
                    && p.generation == self.generation
                {
                    blocks
                        .insert(b + 1, Block::Filling { pieces: Vec::new(), len: 0, fill: Arc::new(Fill::default()) });
                    p.grow.notify.notify_waiters();
                }
                self.cur = BlockBuf::new(b + 1, 0, BLOCK);
                Ok(())
            }
        }
    }
}

/// A running ffmpeg: its output, and what must live as long as it runs.
struct Ffmpeg {
    stdout: ReaderStream<tokio::process::ChildStdout>,
    child: tokio::process::Child,
    group: GroupGuard,
    stderr: JoinHandle<Vec<u8>>,
}

impl Ffmpeg {
    fn start(program: &PathBuf, video: &str, audio: &str) -> Result<Ffmpeg, RelayError> {
        let mut cmd = Command::new(program);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            // The relay's loopback listener only: never a file, never another host.
            .args(["-protocol_whitelist", "http,tcp"])
            .args(["-rw_timeout", "60000000", "-i", video])
            .args(["-rw_timeout", "60000000", "-i", audio])
            .args(["-map", "0:v:0", "-map", "1:a:0", "-c", "copy"])
            .args(["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| RelayError::Spawn(format!("{}: {e}", program.display())))?;
        let group = GroupGuard::new(&child);
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > STDERR_TAIL {
                    buf.drain(..buf.len() - STDERR_TAIL);
                }
            }
            buf
        });
        let stdout = ReaderStream::with_capacity(child.stdout.take().expect("stdout is piped"), 256 * 1024);
        Ok(Ffmpeg { stdout, child, group, stderr })
    }

    /// Reaps ffmpeg; an error if it failed (logged with its stderr).
    async fn finish(mut self, produced: u64) -> Result<(), RelayError> {
        let status = self.child.wait().await;
        self.group.disarm();
        let stderr = String::from_utf8_lossy(&self.stderr.await.unwrap_or_default()).trim().to_owned();
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => {
                tracing::warn!(status = %s, stderr = %stderr, produced, "ffmpeg failed");
                Err(RelayError::MergeFailed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ffmpeg could not be reaped");
                Err(RelayError::MergeFailed)
            }
        }
    }
}
