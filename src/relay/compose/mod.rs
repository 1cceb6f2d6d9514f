//! Composed objects: a file laid out over other objects' bytes, computed
//! from their indexes before a media byte is fetched, and served like a
//! stored file from the first request (length, `HEAD`, `Range`,
//! `If-Range`, an `ETag` naming the layout). Nothing is stored twice: a
//! range of the composed file is read from its inputs' blocks, through
//! the shared fetch, so viewers of the inputs and of the composition share
//! them, and a film of any length stays seekable whatever the store's
//! budget.
//!
//! The one composition so far is the MP4 merge ([`Merge`]): a DASH video
//! file and a DASH audio file (each `ftyp`, `moov`, one `sidx`, then
//! `moof`/`mdat` fragments) become one fragmented MP4 whose header names
//! both tracks and the whole duration, followed by every fragment of both,
//! interleaved by time, with a `sidx` that indexes the video's fragments so
//! players seek without reading from the start. Fragments are copied as
//! they are but for a few bytes of each `moof` (its track and sequence
//! numbers).
//!
//! The same inputs make muxed HLS segments ([`Muxed`]): one subsegment of
//! the video and the audio that starts within it, written as MPEG-TS in
//! process (no ffmpeg per segment).
//!
//! Layout: [`sidx`] reads a DASH file's index, [`mp4`] writes and patches
//! the few boxes, this module lays the parts out and serves them;
//! [`track`] reads samples out of fragments, [`ts`] writes MPEG-TS
//! packets, [`segment`] makes a muxed segment of the two.

mod mp4;
mod segment;
pub mod sidx;
mod track;
mod ts;

pub use segment::{Muxed, OFFSET, span_seconds};

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use sha2::{Digest, Sha256};

use super::range::Validators;
use super::serve::{self, Body, Reply};
use super::{Relay, RelayError, Spec};
use mp4::Renumber;
use sidx::Index;

/// The video and audio of an MP4 merge, with their indexes.
pub struct Merge {
    /// The relay key of the merged file (it names the inputs).
    pub key: String,
    pub video: (Spec, Arc<Index>),
    pub audio: (Spec, Arc<Index>),
    /// A clip: seconds `start..end` of the film only (the fragments that
    /// cover them, with an edit list that starts playback at `start`).
    pub clip: Option<Clip>,
}

/// Seconds `start..end` of a film (`end` past its length: to the end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clip {
    pub start: f64,
    pub end: f64,
}

/// One stretch of the composed file.
enum Part {
    /// Bytes written by the composer (the header).
    Made(Bytes),
    /// A fragment of input `input` (0 video, 1 audio): `size` bytes from
    /// `from`, its `moof` renumbered to `track` and `sequence`, its decode
    /// time moved back by `rebase` ticks (a clip starts near zero).
    Fragment { input: usize, from: u64, size: u64, track: u32, sequence: u32, rebase: u64 },
    /// Bytes of input `input` copied as they are (a cut fragment's payload).
    Bytes { input: usize, from: u64, size: u64 },
}

/// A fragment at input offset `offset` cut short for a clip: its `moof`
/// (`moof_len` bytes in the input) as rewritten, and how much of its
/// payload is kept.
struct Cut {
    offset: u64,
    moof_len: u64,
    trimmed: track::Trimmed,
}

/// Where every byte of a composed file comes from.
pub struct Layout {
    /// Each part and the composed offset it starts at, in order.
    parts: Vec<(u64, Part)>,
    len: u64,
    etag: String,
}

/// Why a merge cannot be composed (the caller merges with ffmpeg instead).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}")]
    Layout(#[from] mp4::BoxError),
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl Relay {
    /// The layout of an MP4 merge, from its inputs' indexes and the init
    /// sections they keep.
    pub async fn merge_layout(&self, merge: &Merge) -> Result<Layout, ComposeError> {
        let (_, vindex) = &merge.video;
        let (_, aindex) = &merge.audio;
        let (vinit, ainit) = (&vindex.init, &aindex.init);
        let (vi, ai) = (mp4::Init::read(vinit)?, mp4::Init::read(ainit)?);
        let movie = u64::from(vi.movie_timescale()?.max(1));
        let whole = vindex.duration().max(aindex.duration());
        let clip = match merge.clip {
            Some(c) if c.start >= whole => return Err(mp4::BoxError("a clip that starts past the end").into()),
            Some(c) => Some(Clip { start: c.start, end: c.end.min(whole) }),
            None => None,
        };
        let seconds = clip.map_or(whole, |c| c.end - c.start);
        let duration = (seconds * movie as f64).round() as u64;

        // Every fragment with its start time; video first at a tie, and no
        // audio before the first video fragment (the sidx starts there).
        let starts = |index: &Index| {
            let ts = f64::from(index.timescale.max(1));
            index.spans().zip(&index.segments).map(|((start, _), s)| (start as f64 / ts, *s)).collect::<Vec<_>>()
        };
        // A clip keeps the fragments that overlap it.
        let keep = |list: Vec<(f64, sidx::Segment)>, index: &Index| match clip {
            None => list,
            Some(c) => {
                let ts = f64::from(index.timescale.max(1));
                list.into_iter().filter(|(t, s)| t + f64::from(s.duration) / ts > c.start && *t < c.end).collect()
            }
        };
        let (video, audio) = (keep(starts(vindex), vindex), keep(starts(aindex), aindex));
        if video.is_empty() || audio.is_empty() {
            return Err(mp4::BoxError("nothing to clip").into());
        }
        // A clip's fragments keep their decode times less their track's
        // first (so players that take the last sample's time for the
        // duration read the clip's), and each track's edit list starts
        // playing at the clip's start, in its own clock.
        let ticks = |t: f64, index: &Index| (t * f64::from(index.timescale)).round() as u64;
        let rebase = match clip {
            Some(_) => [ticks(video[0].0, vindex), ticks(audio[0].0, aindex)],
            None => [0, 0],
        };
        let edits = match clip {
            Some(c) => Some([
                track::media_time(vinit, c.start)? - rebase[0] as i64,
                track::media_time(ainit, c.start)? - rebase[1] as i64,
            ]),
            None => None,
        };
        let head = mp4::merged_head(&vi, &ai, duration, edits)?;
        let cuts = match clip {
            Some(c) => [
                self.cut_end(&merge.video.0, vinit, video.last(), vindex, c.end).await?,
                self.cut_end(&merge.audio.0, ainit, audio.last(), aindex, c.end).await?,
            ],
            None => [None, None],
        };
        let first = video.first().map_or(0.0, |(t, _)| *t);
        let mut order: Vec<(f64, usize, sidx::Segment)> = video.iter().map(|(t, s)| (*t, 0, *s)).collect();
        order.extend(audio.iter().map(|(t, s)| (t.max(first), 1, *s)));
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

        // Where each fragment lands: after the head and one sidx per track.
        let counts = [video.len(), audio.len()];
        // A clip has no sidx: a sidx's times are the film's, and players
        // take its end for the clip's duration (a clip is short enough to
        // seek in by its fragments).
        let sidx_lens = counts.map(|n| if clip.is_some() { 0 } else { mp4::sidx_len(n) });
        let mut at = head.len() as u64 + sidx_lens[0] + sidx_lens[1];
        let mut fragments = Vec::with_capacity(order.len());
        for (n, (_, input, seg)) in order.iter().enumerate() {
            let sequence = u32::try_from(n + 1).unwrap_or(u32::MAX);
            if let Some(cut) = cuts[*input].as_ref().filter(|c| c.offset == seg.offset) {
                // A clip's last fragment of a track, cut short: its moof
                // rewritten (and renumbered now), an mdat header for what is
                // kept, then that much of its payload.
                let mut moof = cut.trimmed.moof.clone();
                let to = Renumber { track: *input as u32 + 1, sequence, moved: 0, rebase: rebase[*input] };
                mp4::patch_moof(&mut moof, to)?;
                let mdat = [&(8 + cut.trimmed.kept as u32).to_be_bytes()[..], b"mdat"].concat();
                let from = seg.offset + cut.moof_len + 8;
                let moof_len = moof.len() as u64;
                fragments.push((at, Part::Made(Bytes::from(moof))));
                fragments.push((at + moof_len, Part::Made(Bytes::from(mdat))));
                fragments.push((at + moof_len + 8, Part::Bytes { input: *input, from, size: cut.trimmed.kept }));
                at += moof_len + 8 + cut.trimmed.kept;
                continue;
            }
            let size = u64::from(seg.size);
            fragments.push((
                at,
                Part::Fragment {
                    input: *input,
                    from: seg.offset,
                    size,
                    track: *input as u32 + 1,
                    sequence,
                    rebase: rebase[*input],
                },
            ));
            at += size;
        }
        let len = at;
        // Each track's references: from one of its fragments to its next
        // (the last to the end of the file).
        let mut sidxes = Vec::new();
        let mut anchor = head.len() as u64;
        let indexed = if clip.is_some() { &[][..] } else { &[(0usize, vindex), (1, aindex)][..] };
        for &(input, index) in indexed {
            anchor += sidx_lens[input];
            let starts: Vec<(u64, u32)> = fragments
                .iter()
                .zip(&order)
                .filter(|(_, o)| o.1 == input)
                .map(|((at, _), o)| (*at, o.2.duration))
                .collect();
            let first = starts.first().map_or(len, |(at, _)| *at);
            let refs: Vec<mp4::Reference> = starts
                .iter()
                .enumerate()
                .map(|(i, (at, duration))| {
                    let next = starts.get(i + 1).map_or(len, |(n, _)| *n);
                    let size = u32::try_from(next - at).map_err(|_| mp4::BoxError("a fragment of 4 GiB"))?;
                    Ok(mp4::Reference { size, duration: *duration })
                })
                .collect::<Result<_, mp4::BoxError>>()?;
            let track = input as u32 + 1;
            sidxes.extend(mp4::sidx(track, index.timescale, index.earliest, first - anchor, &refs)?);
        }
        let mut made = head;
        made.extend(sidxes);
        if made.len() as u64 != fragments.first().map_or(len, |(at, _)| *at) {
            return Err(mp4::BoxError("the header's length was mislaid").into());
        }
        let mut etag = Sha256::new();
        etag.update(merge.key.as_bytes());
        if let Some(c) = clip {
            etag.update(format!("|clip {}-{}", c.start, c.end).as_bytes());
        }
        etag.update(&made);
        let etag = format!("\"m-{}\"", hex(&etag.finalize()[..12]));
        let mut parts = Vec::with_capacity(fragments.len() + 1);
        parts.push((0, Part::Made(Bytes::from(made))));
        parts.extend(fragments);
        Ok(Layout { parts, len, etag })
    }

    /// A clip's last fragment of one input cut at `end` seconds, when it
    /// runs past it and is laid out so it can be cut (else it is copied
    /// whole).
    async fn cut_end(
        &self,
        spec: &Spec,
        init: &[u8],
        last: Option<&(f64, sidx::Segment)>,
        index: &Index,
        end: f64,
    ) -> Result<Option<Cut>, ComposeError> {
        let Some((t, seg)) = last else { return Ok(None) };
        if t + f64::from(seg.duration) / f64::from(index.timescale.max(1)) <= end {
            return Ok(None);
        }
        let at = seg.offset;
        let head = self.read(spec.clone(), at..at + 16).await?;
        let (kind, size, _) = mp4::header_at(&head, 0)?;
        if &kind != b"moof" || size + 8 > u64::from(seg.size) {
            return Ok(None);
        }
        let moof = self.read(spec.clone(), at..at + size + 8).await?;
        let (kind, mdat_size, header) = mp4::header_at(&moof, size as usize)?;
        if &kind != b"mdat" || header != 8 || size + mdat_size != u64::from(seg.size) {
            return Ok(None);
        }
        let trimmed = track::Track::read(init)?.trim(&moof[..size as usize], end)?;
        Ok(trimmed.map(|trimmed| Cut { offset: at, moof_len: size, trimmed }))
    }

    /// Serves a GET or HEAD of a composed merge: the layout first (from the
    /// inputs' heads), then the bytes asked for as they are read.
    pub async fn serve_composed(
        &self,
        merge: Merge,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Reply, ComposeError> {
        let layout = Arc::new(self.merge_layout(&merge).await?);
        let len = layout.len;
        let validators = Validators { etag: Some(layout.etag.clone()), last_modified: None };
        let (status, start, end) = match serve::decide(headers, len, &validators) {
            Ok(range) => range,
            Err(status) => return Ok(serve::early(reply(status, &layout, Body::Empty), len)),
        };
        let body = if method == Method::HEAD || start == end {
            Body::Empty
        } else {
            let stream = bytes_of(self.clone(), layout.clone(), [merge.video.0, merge.audio.0], start, end);
            serve::composed_body(&self.0.metrics, &merge.key, stream, end - start)
        };
        Ok(serve::framed(reply(status, &layout, body), start..end, len))
    }
}

fn reply(status: StatusCode, layout: &Layout, body: Body) -> Reply {
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    if let Ok(v) = HeaderValue::from_str(&layout.etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes `start..end` of the composed file, part by part: made bytes from
/// the layout, fragments from the inputs (a `moof` read whole and
/// renumbered, the rest streamed as the store has it).
fn bytes_of(
    relay: Relay,
    layout: Arc<Layout>,
    inputs: [Spec; 2],
    start: u64,
    end: u64,
) -> impl Stream<Item = Result<Bytes, RelayError>> + Send + 'static {
    async_stream(move |tx| async move {
        let mut runs = [Run::default(), Run::default()];
        let first = layout.parts.partition_point(|(at, _)| *at <= start).saturating_sub(1);
        for (at, part) in &layout.parts[first..] {
            if *at >= end {
                break;
            }
            match part {
                Part::Made(bytes) => {
                    let from = start.saturating_sub(*at) as usize;
                    let to = ((end - at) as usize).min(bytes.len());
                    if tx.send(Ok(bytes.slice(from..to))).await.is_err() {
                        return;
                    }
                }
                Part::Bytes { input, from, size } => {
                    let (lo, hi) = (start.saturating_sub(*at), (end - at).min(*size));
                    match stream_range(&relay, &inputs[*input], from + lo..from + hi, &tx, &mut runs[*input]).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Part::Fragment { input, from, size, track, sequence, rebase } => {
                    let (lo, hi) = (start.saturating_sub(*at), (end - at).min(*size));
                    let spec = &inputs[*input];
                    let piece = Piece {
                        from: *from,
                        size: *size,
                        renumber: Renumber {
                            track: *track,
                            sequence: *sequence,
                            moved: *at as i64 - *from as i64,
                            rebase: *rebase,
                        },
                        want: lo..hi,
                    };
                    let sent = fragment(&relay, spec, piece, &tx, &mut runs[*input]).await;
                    if let Err(e) = sent {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
            }
        }
    })
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, RelayError>>;

/// What of one fragment to send: the fragment (`size` bytes at input
/// offset `from`), what its `moof` becomes, and the bytes of it wanted.
struct Piece {
    from: u64,
    size: u64,
    renumber: Renumber,
    want: std::ops::Range<u64>,
}

/// How far the composed file's reader has read one input in a row: the
/// next pieces it reads there carry on the run, so the relay fetches ahead
/// of a sequential reader as it would for the file itself.
#[derive(Default)]
struct Run {
    /// Where the last piece read of the input ended.
    next: u64,
    block: Option<u64>,
    run: u64,
}

/// Sends bytes `want` of the fragment at input offset `from`: each `moof`
/// in it read whole and renumbered, everything else streamed.
async fn fragment(relay: &Relay, spec: &Spec, piece: Piece, tx: &Sender, run: &mut Run) -> Result<(), RelayError> {
    let Piece { from, size, renumber, want } = piece;
    let bad = |e: mp4::BoxError| RelayError::Gone(format!("a fragment of the merge cannot be read: {e}"));
    let mut pos = 0u64;
    while pos < size && pos < want.end {
        let head = relay.read(spec.clone(), from + pos..from + pos + 16).await?;
        let (kind, box_size, _) = mp4::header_at(&head, 0).map_err(bad)?;
        let box_end = (pos + box_size).min(size);
        if box_end > want.start {
            let (lo, hi) = (want.start.max(pos), want.end.min(box_end));
            if &kind == b"moof" {
                let mut moof = relay.read(spec.clone(), from + pos..from + pos + box_size).await?;
                mp4::patch_moof(&mut moof, renumber).map_err(bad)?;
                let slice = Bytes::from(moof).slice((lo - pos) as usize..(hi - pos) as usize);
                if tx.send(Ok(slice)).await.is_err() {
                    return Ok(());
                }
            } else if !stream_range(relay, spec, from + lo..from + hi, tx, run).await? {
                return Ok(());
            }
        }
        pos = box_end;
    }
    Ok(())
}

/// Streams `range` of an input as the store has it; false when the reader
/// of the composed file has gone.
async fn stream_range(
    relay: &Relay,
    spec: &Spec,
    range: std::ops::Range<u64>,
    tx: &Sender,
    run: &mut Run,
) -> Result<bool, RelayError> {
    let (start, end) = (range.start, range.end);
    let mut reader = relay.reader(spec.clone(), range).await?;
    // Within a few KB of where the last piece ended (a moof between): the
    // same sequential read.
    if run.run > 0 && start >= run.next && start - run.next < 64 * 1024 {
        reader.carry_on(run.block, run.run);
    }
    let mut gone = false;
    while let Some(data) = reader.next().await {
        if tx.send(Ok(data?)).await.is_err() {
            gone = true;
            break;
        }
    }
    (run.block, run.run) = reader.progress();
    run.next = end;
    Ok(!gone)
}

/// A stream fed by a task: the task stops when the stream is dropped (its
/// sends fail), so a client hanging up stops the reads.
fn async_stream<F, Fut>(make: F) -> impl Stream<Item = Result<Bytes, RelayError>> + Send + 'static
where
    F: FnOnce(Sender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(make(tx));
    let abort = AbortOnDrop(task);
    futures_util::stream::unfold(
        (rx, abort),
        |(mut rx, abort)| async move { rx.recv().await.map(|i| (i, (rx, abort))) },
    )
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
