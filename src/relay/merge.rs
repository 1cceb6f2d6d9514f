//! Produced streams: what ffmpeg makes of one or two of the relay's
//! objects, without re-encoding where it can — separate video and audio
//! joined into fragmented MP4 (YouTube above 360p, Bilibili), a video with
//! its audio left out (mute), or audio transcoded to another codec (mp3,
//! Ogg Vorbis, Opus, WAV). One ffmpeg per (video, recipe) at a time, its
//! output an object in the store.
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
//! - When its last viewer leaves an unfinished production, ffmpeg is killed
//!   (with its process group) and what it wrote is dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;

use super::store::{BLOCK, Kind, Object, Production};
use super::writer::Writer;
use super::{Body, Meta, Reader, Relay, RelayError, Reply, Shared, Spec, Step, Visit};
use crate::process::GroupGuard;

/// How much of ffmpeg's stderr is kept for the log.
const STDERR_TAIL: usize = 4096;

/// A production to serve: the object's key, its inputs and what ffmpeg
/// makes of them. The key must name everything that changes the bytes
/// (the inputs, the recipe, its bitrate and tags).
pub struct MergeSpec {
    pub key: String,
    pub inputs: Inputs,
    pub recipe: Recipe,
    /// A subtitle track written into the file with the video (the key
    /// names it too); only a recipe with video takes one.
    pub text: Option<TextTrack>,
}

/// A subtitle track to embed: WebVTT, and its language as the platform
/// names it (`en`, `pt-BR`).
#[derive(Debug, Clone)]
pub struct TextTrack {
    pub lang: String,
    pub vtt: bytes::Bytes,
}

impl TextTrack {
    /// The container's subtitle codec: MP4 holds only `mov_text`
    /// (3GPP timed text); Matroska and WebM hold WebVTT as it is.
    fn codec(container: Container) -> &'static str {
        match container {
            Container::Mp4 => "mov_text",
            Container::Matroska | Container::Webm => "webvtt",
        }
    }

    /// The ISO 639-2 code MP4 and Matroska tag a track with, from the
    /// platform's code (`en`, `en-US` → `eng`); `und` when it is none.
    fn iso639_2(&self) -> &'static str {
        const CODES: &[(&str, &str)] = &[
            ("ar", "ara"),
            ("bn", "ben"),
            ("cs", "ces"),
            ("da", "dan"),
            ("de", "deu"),
            ("el", "ell"),
            ("en", "eng"),
            ("es", "spa"),
            ("fa", "fas"),
            ("fi", "fin"),
            ("fr", "fra"),
            ("he", "heb"),
            ("hi", "hin"),
            ("hu", "hun"),
            ("id", "ind"),
            ("it", "ita"),
            ("ja", "jpn"),
            ("ko", "kor"),
            ("ms", "msa"),
            ("nl", "nld"),
            ("no", "nor"),
            ("pl", "pol"),
            ("pt", "por"),
            ("ro", "ron"),
            ("ru", "rus"),
            ("sv", "swe"),
            ("th", "tha"),
            ("tr", "tur"),
            ("uk", "ukr"),
            ("vi", "vie"),
            ("zh", "zho"),
        ];
        let primary = self.lang.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        CODES.iter().find(|(two, _)| *two == primary).map_or("und", |(_, three)| three)
    }
}

/// What ffmpeg reads.
pub enum Inputs {
    /// Video from the first, audio from the second.
    Pair { video: Spec, audio: Spec },
    /// One file.
    One(Spec),
}

/// What ffmpeg writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipe {
    /// The pair's video and audio in one file, copied.
    Merge(Container),
    /// The file's first video track alone, copied, as fragmented MP4.
    Mute,
    /// The file's first audio track as `codec`, with `tags` (title,
    /// artist…) written into it.
    Audio { codec: AudioCodec, tags: Vec<(String, String)> },
    /// The file's video as an animated GIF that loops, with a palette made
    /// for it (what X shows as a GIF is an H.264 MP4).
    Gif,
}

/// An audio output: the container and codec, and whether the source's
/// coded audio is copied (it already is this codec) or encoded at a bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Mp3 {
        kbps: u32,
    },
    Vorbis {
        kbps: u32,
    },
    /// Opus in Ogg; `kbps: None` copies the source's Opus.
    Opus {
        kbps: Option<u32>,
    },
    /// AAC in fragmented MP4 (`.m4a`); `kbps: None` copies the source's AAC.
    Aac {
        kbps: Option<u32>,
    },
    /// 16-bit PCM in WAV.
    Wav,
}

impl AudioCodec {
    /// The file extension players and file managers expect.
    pub fn extension(self) -> &'static str {
        match self {
            AudioCodec::Mp3 { .. } => "mp3",
            AudioCodec::Vorbis { .. } => "ogg",
            AudioCodec::Opus { .. } => "opus",
            AudioCodec::Aac { .. } => "m4a",
            AudioCodec::Wav => "wav",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            AudioCodec::Mp3 { .. } => "audio/mpeg",
            AudioCodec::Vorbis { .. } => "audio/ogg",
            AudioCodec::Opus { .. } => "audio/ogg; codecs=opus",
            AudioCodec::Aac { .. } => "audio/mp4",
            AudioCodec::Wav => "audio/wav",
        }
    }

    /// Whether the coded audio is copied, not encoded.
    pub fn copies(self) -> bool {
        matches!(self, AudioCodec::Opus { kbps: None } | AudioCodec::Aac { kbps: None })
    }

    /// ffmpeg's codec and muxer arguments.
    fn args(self) -> Vec<String> {
        let rate = |kbps: u32| ["-b:a".to_owned(), format!("{kbps}k")];
        let mut a: Vec<String> = Vec::new();
        match self {
            AudioCodec::Mp3 { kbps } => {
                a.extend(["-c:a", "libmp3lame"].map(String::from));
                a.extend(rate(kbps));
                a.extend(["-f", "mp3"].map(String::from));
            }
            AudioCodec::Vorbis { kbps } => {
                a.extend(["-c:a", "libvorbis"].map(String::from));
                a.extend(rate(kbps));
                a.extend(["-f", "ogg"].map(String::from));
            }
            AudioCodec::Opus { kbps } => {
                match kbps {
                    Some(k) => {
                        a.extend(["-c:a", "libopus"].map(String::from));
                        a.extend(rate(k));
                    }
                    None => a.extend(["-c:a", "copy"].map(String::from)),
                }
                a.extend(["-f", "opus"].map(String::from));
            }
            AudioCodec::Aac { kbps } => {
                match kbps {
                    Some(k) => {
                        a.extend(["-c:a", "aac"].map(String::from));
                        a.extend(rate(k));
                    }
                    None => a.extend(["-c:a", "copy"].map(String::from)),
                }
                a.extend(["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"].map(String::from));
            }
            AudioCodec::Wav => a.extend(["-c:a", "pcm_s16le", "-f", "wav"].map(String::from)),
        }
        a
    }
}

/// The container of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Container {
    /// Fragmented MP4: plays while it is written, in every browser.
    #[default]
    Mp4,
    Matroska,
    /// Matroska restricted to VP8/VP9/AV1 and Opus/Vorbis.
    Webm,
}

impl Container {
    pub fn extension(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Matroska => "mkv",
            Container::Webm => "webm",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Matroska => "video/x-matroska",
            Container::Webm => "video/webm",
        }
    }
}

impl Recipe {
    pub fn content_type(&self) -> &'static str {
        match self {
            Recipe::Merge(c) => c.content_type(),
            Recipe::Mute => "video/mp4",
            Recipe::Audio { codec, .. } => codec.content_type(),
            Recipe::Gif => "image/gif",
        }
    }

    /// ffmpeg's mapping, codec, tag and muxer arguments (its output is
    /// stdout). `files` is how many media inputs come first (two: video,
    /// then audio; one: both from it); a text track is the input after.
    fn args(&self, files: usize, text: Option<&TextTrack>) -> Vec<String> {
        let fmp4 = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"];
        let mut a: Vec<String> = Vec::new();
        let subtitles = |a: &mut Vec<String>, container: Container| {
            if let Some(t) = text {
                a.extend([
                    "-map".to_owned(),
                    format!("{files}:s:0"),
                    "-c:s".into(),
                    TextTrack::codec(container).into(),
                ]);
                a.extend(["-metadata:s:s:0".to_owned(), format!("language={}", t.iso639_2())]);
            }
        };
        match self {
            Recipe::Merge(container) => {
                let audio = if files > 1 { "1:a:0" } else { "0:a:0" };
                a.extend(["-map", "0:v:0", "-map", audio, "-c", "copy"].map(String::from));
                subtitles(&mut a, *container);
                match container {
                    Container::Mp4 => a.extend(fmp4.map(String::from)),
                    // Written as a live Matroska: no seeking back in a pipe.
                    Container::Matroska => a.extend(["-live", "1", "-f", "matroska"].map(String::from)),
                    Container::Webm => a.extend(["-live", "1", "-f", "webm"].map(String::from)),
                }
            }
            Recipe::Mute => {
                a.extend(["-map", "0:v:0", "-c", "copy"].map(String::from));
                subtitles(&mut a, Container::Mp4);
                a.extend(fmp4.map(String::from));
            }
            Recipe::Gif => {
                // One pass: the palette is made from every frame, then used.
                let filter = "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer";
                a.extend(["-map", "0:v:0", "-filter_complex", filter, "-loop", "0", "-f", "gif"].map(String::from));
            }
            Recipe::Audio { codec, tags } => {
                a.extend(["-map", "0:a:0", "-map_metadata", "-1"].map(String::from));
                for (k, v) in tags {
                    // A tag's value is ffmpeg's argument, not a shell's: only
                    // control characters need to go.
                    let v: String = v.chars().filter(|c| !c.is_control()).collect();
                    a.extend(["-metadata".to_owned(), format!("{k}={v}")]);
                }
                a.extend(codec.args());
            }
        }
        a.push("pipe:1".into());
        a
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
            store.get(&visit.key).and_then(|o| o.meta.clone())
        };
        if let Some(meta) = meta.filter(|m| m.len.is_some())
            && shared.merge_is_whole(&visit.key)
        {
            return super::serve::answer(visit, &meta, method, headers, true, false).await;
        }
        let content_type = spec.recipe.content_type();
        if method == Method::HEAD {
            return Ok(live_head(Body::Empty, content_type));
        }
        shared.start_merge(&visit.key, spec);
        let mut reader = Reader::new(visit, 0, None);
        match reader.next().await {
            Some(Err(e)) => Err(e),
            None => Err(RelayError::MergeFailed),
            Some(Ok(first)) => {
                Ok(live_head(super::serve::streamed(&shared.metrics, first, reader, None, true), content_type))
            }
        }
    }
}

/// The head of a production still being written: no length, no ranges.
fn live_head(body: Body, content_type: &'static str) -> Reply {
    let mut reply = http::Response::new(body);
    let h = reply.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    *reply.status_mut() = StatusCode::OK;
    reply
}

impl Shared {
    /// Visits (creating it if new) the merged object `key`.
    fn visit_merge(self: &Arc<Self>, key: &str) -> Visit {
        let disk_meta = self.disk.as_ref().and_then(|d| d.meta(key));
        let (key, _) = self.lock().visit(key, || {
            let mut o = Object::new(Kind::Merged(Production::default()));
            o.meta = disk_meta;
            o
        });
        // A merge counts its followers where it starts (`start_merge`).
        Visit { shared: self.clone(), key, following: false }
    }

    /// True when every block of a finished merge is in memory or on disk.
    fn merge_is_whole(&self, key: &Arc<str>) -> bool {
        let store = self.lock();
        let Some(obj) = store.get(key) else { return false };
        let Some(count) = obj.block_count() else { return false };
        (0..count).all(|b| obj.has(b) || self.on_disk(key, b))
    }

    /// Starts ffmpeg for `key` unless it runs; a finished merge with blocks
    /// missing is made again from the start.
    fn start_merge(self: &Arc<Self>, key: &Arc<str>, spec: MergeSpec) {
        let mut store = self.lock();
        let Some(obj) = store.get_mut(key) else { return };
        let Kind::Merged(p) = &mut obj.kind else { return };
        if p.running() {
            self.metrics.relay.coalesced.inc();
            return;
        }
        *p = Production { generation: p.generation + 1, ..Production::default() };
        let generation = p.generation;
        obj.meta = Some(Meta {
            len: None,
            content_type: Some(spec.recipe.content_type().into()),
            ranged: true,
            stored: true,
            ..Meta::default()
        });
        store.drop_all(key, None);
        if let Some(disk) = &self.disk {
            disk.forget(key);
        }
        let Some(first) = store.open(key, 0) else { return };
        let writer = Writer::sequential(self.clone(), key.clone(), generation, first);
        let Some(Object { kind: Kind::Merged(p), .. }) = store.get_mut(key) else { return };
        match spec.recipe {
            Recipe::Merge(_) => self.metrics.relay.merges.inc(),
            _ => self.metrics.relay.transcodes.inc(),
        };
        p.task = Some(tokio::spawn(produce(self.clone(), writer, generation, spec)));
    }
}

/// Runs ffmpeg and writes its output into the object.
async fn produce(shared: Arc<Shared>, writer: Writer, generation: u64, spec: MergeSpec) {
    let key = writer.key().clone();
    // The routes live as long as ffmpeg reads them.
    let mut routes = match spec.inputs {
        Inputs::Pair { video, audio } => {
            vec![shared.internal.route(video, "video.mp4"), shared.internal.route(audio, "audio.m4a")]
        }
        Inputs::One(one) => vec![shared.internal.route(one, "input")],
    };
    let files = routes.len();
    let text = spec.text.filter(|_| !matches!(spec.recipe, Recipe::Audio { .. } | Recipe::Gif));
    if let Some(t) = &text {
        routes.push(shared.internal.route_text(t.vtt.clone(), "subtitles.vtt"));
    }
    let urls: Vec<&str> = routes.iter().map(|r| r.url.as_str()).collect();
    let result = match Ffmpeg::start(&shared.settings.ffmpeg, &urls, &spec.recipe.args(files, text.as_ref())) {
        Ok(ffmpeg) => write_output(&shared, writer, generation, ffmpeg).await,
        Err(e) => Err(e),
    };
    let mut store = shared.lock();
    let Some(obj) = store.get_mut(&key) else { return };
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
            if let (Some(disk), Some(meta)) = (&shared.disk, store.get(&key).and_then(|o| o.meta.as_ref())) {
                disk.save_meta(&key, meta);
            }
            tracing::info!(key = %key, bytes = len, "merge complete");
        }
        Err(e) => {
            obj.meta = None;
            store.drop_all(&key, Some(&e));
        }
    }
    store.forget_if_idle(&key);
}

/// Copies ffmpeg's stdout into the object's blocks; returns its length.
async fn write_output(
    shared: &Arc<Shared>,
    mut out: Writer,
    generation: u64,
    mut ffmpeg: Ffmpeg,
) -> Result<u64, RelayError> {
    let stopped = || RelayError::Gone("the merge was stopped".into());
    let key = out.key().clone();
    let ahead = (shared.settings.memory / 4).clamp(4 * BLOCK, 64 * BLOCK);
    let mut produced = 0u64;
    loop {
        let next = match ffmpeg.stdout.next().now_or_never() {
            Some(next) => next,
            None => {
                out.flush();
                ffmpeg.stdout.next().await
            }
        };
        let Some(Ok(data)) = next else { break };
        if !out.write(produced, &data) {
            return Err(stopped());
        }
        produced += data.len() as u64;
        // Too far ahead of every viewer: wait for one to read on.
        loop {
            let progress = {
                let mut store = shared.lock();
                let Some(Object { kind: Kind::Merged(p), .. }) = store.get_mut(&key) else { break };
                if p.generation != generation {
                    return Err(stopped());
                }
                p.produced = produced;
                if produced <= p.furthest + ahead {
                    break;
                }
                p.progress.clone()
            };
            out.flush();
            let wait = progress.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            let caught_up = {
                let store = shared.lock();
                matches!(store.get(&key), Some(Object { kind: Kind::Merged(p), .. }) if produced <= p.furthest + ahead)
            };
            if !caught_up {
                wait.await;
            }
        }
    }
    out.flush();
    if out.owned.is_empty() {
        return Err(stopped());
    }
    ffmpeg.finish(produced).await?;
    Ok(produced)
}

/// A running ffmpeg: its output, and what must live as long as it runs.
struct Ffmpeg {
    stdout: ReaderStream<tokio::process::ChildStdout>,
    child: tokio::process::Child,
    group: GroupGuard,
    stderr: JoinHandle<Vec<u8>>,
}

impl Ffmpeg {
    fn start(program: &PathBuf, inputs: &[&str], args: &[String]) -> Result<Ffmpeg, RelayError> {
        let mut cmd = Command::new(program);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            // The relay's loopback listener only: never a file, never another host.
            .args(["-protocol_whitelist", "http,tcp"]);
        for input in inputs {
            cmd.args(["-rw_timeout", "60000000", "-i", input]);
        }
        cmd.args(args)
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
