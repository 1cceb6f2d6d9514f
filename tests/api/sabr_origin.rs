//! A stand-in SABR server: `POST /sabr/{quirks}/videoplayback?id=…` answers
//! the protocol as YouTube's does, from the test media's DASH files (each
//! file's `sidx` gives its segments: the init section is everything before
//! the first fragment, then one segment per fragment, numbered from 1), so
//! what a client puts together is the file itself, byte for byte. A GET
//! gets 405, as googlevideo's does.
//!
//! Written apart from reelay's own SABR code, protobuf and UMP included (a
//! few lines each), and checked by googlevideo's `SabrStream` (`sabr.rs`),
//! so it speaks the protocol as an independent client reads it.
//!
//! Formats: itag 134 is `dash-v360.mp4`, 136 `dash-v720.mp4`, 140
//! `dash-a.m4a`, 137 and 141 the two-hour film's video and audio
//! (`compose.rs` makes them). Each answer brings up to two segments of the video and the
//! audio that keeps pace with them. `{quirks}` is a comma-separated list:
//!
//! - `redirect`: a playback's first answer redirects to `/sabr/{the rest}/videoplayback2`
//!   (and still brings its media, as the real server may);
//! - `cookie`: the cookie changes with every answer, and a request without
//!   the latest one gets no media;
//! - `backoff`: every answer asks for 300 ms before the next request, and a
//!   request sooner gets no media;
//! - `attest`: a request without a PO token gets `STREAM_PROTECTION_STATUS` 3;
//! - `context`: a playback's first answer sets a SABR context, and a request that
//!   does not send it back gets no media;
//! - `live`: the formats' files on a loop as a live stream on the wall
//!   clock ([`live`]).
//!
//! Each quirk holds per playback, as the real server's state travels in
//! its cookie: the cookie names its playback, a client's first request
//! (`rn` 0 or 1) without one starts a new playback (a client may run
//! several at once: one per format, a new one per seek), and a later one
//! without it is taken as the video's latest playback that lost its cookie.
//! A request for one track (`enabled_track_types_bitfield` 1 or 2) gets
//! that track alone. [`stats`] says what each video's requests were.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::helpers::media_dir;

#[path = "sabr_live.rs"]
mod live;

/// What a video's requests were.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u32,
    /// Answers that withheld media (a stale cookie, too soon, no context).
    pub withheld: u32,
    /// Requests to the redirect's target.
    pub redirected: u32,
    /// The player times the requests named, in order.
    pub player_ms: Vec<u64>,
    /// Segments sent, per itag (not counting init sections).
    pub segments: HashMap<u64, u32>,
    /// Which: (itag, number), in the order sent.
    pub sent: Vec<(u64, u64)>,
    /// Playbacks (one per session a client ran).
    pub playbacks: usize,
    /// A live stream's time 0 on the wall clock (Unix ms): segment N is
    /// there from its end on (`sabr_live.rs`).
    pub live_zero_unix_ms: Option<u64>,
}

/// A video's requests: what they were, and the playbacks they belong to.
#[derive(Default)]
struct Session {
    stats: Stats,
    /// Playbacks, numbered from 1 in the cookie the server hands out: a
    /// client may run several at once (one per format, a new one per seek),
    /// each with its own cookie, context and pace.
    chains: Vec<Chain>,
    /// A live stream's clock: its first request.
    live_since: Option<Instant>,
}

/// One playback's state.
#[derive(Default)]
struct Chain {
    requests: u32,
    cookie: u64,
    last: Option<Instant>,
    context: Option<Vec<u8>>,
}

fn sessions() -> &'static Mutex<HashMap<String, Session>> {
    static S: OnceLock<Mutex<HashMap<String, Session>>> = OnceLock::new();
    S.get_or_init(Mutex::default)
}

/// What the stand-in saw of video `id`.
pub fn stats(id: &str) -> Stats {
    let all = sessions().lock().unwrap();
    let zero = |since: Instant| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        now - live::elapsed_ms(since)
    };
    let stats =
        |s: &Session| Stats { playbacks: s.chains.len(), live_zero_unix_ms: s.live_since.map(zero), ..s.stats.clone() };
    all.get(id).map(stats).unwrap_or_default()
}

pub async fn videoplayback(
    Path((quirks, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let query = q.unwrap_or_default();
    let id = query.split('&').find_map(|kv| kv.strip_prefix("id=")).unwrap_or("").to_owned();
    let quirks: BTreeSet<&str> = quirks.split(',').collect();
    let Some(req) = Pb::read(&body) else { return (StatusCode::BAD_REQUEST, "not protobuf").into_response() };
    let mut all = sessions().lock().unwrap();
    let session = all.entry(id.clone()).or_default();
    let base = format!("http://{host}");
    let answer = respond(session, &req, &quirks, &name, &id, &format!("{base}|{query}"));
    let mut resp = answer.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, "application/vnd.yt-ump".parse().unwrap());
    resp
}

/// The answer to one request; `at` is the server's base and the query, as
/// `base|query`.
fn respond(s: &mut Session, req: &Pb, quirks: &BTreeSet<&str>, name: &str, id: &str, at: &str) -> Vec<u8> {
    let (base, query) = at.split_once('|').unwrap_or((at, ""));
    s.stats.requests += 1;
    if name == "videoplayback2" {
        s.stats.redirected += 1;
    }
    let player = req.msg(1).and_then(|m| m.int(28)).unwrap_or(0);
    s.stats.player_ms.push(player);
    let context = req.msg(19).unwrap_or_default();
    let mut out = Vec::new();
    // Which playback: the one the cookie names; a request without one that
    // is a client's first (`rn` 0 or 1, or none) starts one; a later one
    // without it is a client that dropped its cookie, taken as its latest.
    let carried = context.bytes(3).and_then(Pb::read);
    let rn: Option<u64> = query.split('&').find_map(|kv| kv.strip_prefix("rn=")?.parse().ok());
    let named = carried.as_ref().and_then(|c| c.int(1)).filter(|&n| n >= 1 && n as usize <= s.chains.len());
    let chain_no = match named {
        Some(n) => n as usize,
        None if rn.is_none_or(|r| r <= 1) || s.chains.is_empty() => {
            s.chains.push(Chain::default());
            s.chains.len()
        }
        None => s.chains.len(),
    };
    let c = &mut s.chains[chain_no - 1];
    c.requests += 1;
    let first = c.requests == 1;
    // The cookie this request must carry, and the one the answer gives.
    let fresh = first || !quirks.contains("cookie") || carried.and_then(|k| k.int(2)) == Some(c.cookie);
    if quirks.contains("cookie") || first {
        c.cookie += 1;
    }
    let backoff = if quirks.contains("backoff") { 300 } else { 0 };
    let patient = c.last.is_none_or(|t| t.elapsed() >= Duration::from_millis(backoff));
    let cookie = Msg::default().int(1, chain_no as u64).int(2, c.cookie);
    part(&mut out, 35, &Msg::default().int(4, backoff).msg(7, cookie).0);
    c.last = Some(Instant::now());
    if quirks.contains("attest") && context.bytes(2).is_none_or(<[u8]>::is_empty) {
        part(&mut out, 58, &Msg::default().int(1, 3).int(2, 5).0);
        return out;
    }
    if quirks.contains("redirect") && first {
        let rest: Vec<&str> = quirks.iter().copied().filter(|q| *q != "redirect").collect();
        let rest = if rest.is_empty() { "plain".to_owned() } else { rest.join(",") };
        let url = format!("{base}/sabr/{rest}/videoplayback2?{query}");
        part(&mut out, 43, &Msg::default().str(1, &url).0);
    }
    let echoed = context.all(5).filter_map(Pb::read).any(|x| x.int(1) == Some(7) && x.bytes(2) == c.context.as_deref());
    if quirks.contains("context") && first {
        let value = format!("context-{id}-{chain_no}").into_bytes();
        part(&mut out, 57, &Msg::default().int(1, 7).int(2, 1).raw(3, &value).int(4, 1).int(5, 1).0);
        c.context = Some(value);
    }
    let in_context = first || !quirks.contains("context") || echoed;
    if !(fresh && patient && in_context) {
        s.stats.withheld += 1;
        return out;
    }
    let initialized: BTreeSet<u64> = req.all(2).filter_map(|f| Pb::read(f)?.int(1)).collect();
    let buffered = buffered(req);
    if quirks.contains("live") {
        let elapsed = live::elapsed_ms(*s.live_since.get_or_insert_with(Instant::now));
        let mut backoff = u64::MAX;
        for (_, format, itag, file) in asked(req) {
            let held = buffered.get(&itag).cloned().unwrap_or_default();
            let ask =
                live::Ask { itag, format, initialized: initialized.contains(&itag), held: &held, player_ms: player };
            let (sent, pause) = live::respond(&mut out, file, &ask, elapsed);
            backoff = backoff.min(pause);
            *s.stats.segments.entry(itag).or_default() += sent.len() as u32;
            s.stats.sent.extend(sent.into_iter().map(|k| (itag, k)));
        }
        let c = &s.chains[chain_no - 1];
        let cookie = Msg::default().int(1, chain_no as u64).int(2, c.cookie);
        part(&mut out, 35, &Msg::default().int(4, backoff).msg(7, cookie).0);
        return out;
    }
    let mut hid = 0u64;
    let mut video_end = None;
    for (is_video, format, itag, file) in asked(req) {
        if !initialized.contains(&itag) {
            let mime = if is_video { "video/mp4; codecs=\"avc1.4d401e\"" } else { "audio/mp4; codecs=\"mp4a.40.2\"" };
            let total = file.segments.last().map_or(0, |g| g.start_ms + g.duration_ms);
            let fim = Msg::default()
                .str(1, id)
                .raw(2, format)
                .int(3, total)
                .int(4, file.segments.len() as u64)
                .str(5, mime)
                .int(9, total)
                .int(10, 1000);
            part(&mut out, 42, &fim.0);
            let header = Msg::default().int(1, hid).str(2, id).int(3, itag).int(6, 0).int(8, 1).raw(13, format);
            media(&mut out, hid, header, &file.bytes[..file.init]);
            hid += 1;
        }
        let held = buffered.get(&itag).cloned().unwrap_or_default();
        let wanted = file
            .segments
            .iter()
            .enumerate()
            .filter(|(n, g)| !held.contains(&(*n as u64 + 1)) && g.start_ms + g.duration_ms > player);
        let chosen: Vec<_> = match (is_video, video_end) {
            (true, _) => wanted.take(2).collect(),
            (false, Some(end)) => wanted.take_while(|(_, g)| g.start_ms < end).collect(),
            (false, None) => wanted.take(2).collect(),
        };
        for (n, g) in chosen {
            let header = Msg::default()
                .int(1, hid)
                .str(2, id)
                .int(3, itag)
                .int(6, g.offset as u64)
                .int(9, n as u64 + 1)
                .int(11, g.start_ms)
                .int(12, g.duration_ms)
                .raw(13, format)
                .msg(15, Msg::default().int(1, g.start_ms).int(2, g.duration_ms).int(3, 1000));
            media(&mut out, hid, header, &file.bytes[g.offset..g.offset + g.size]);
            hid += 1;
            *s.stats.segments.entry(itag).or_default() += 1;
            s.stats.sent.push((itag, n as u64 + 1));
            if is_video {
                video_end = Some(g.start_ms + g.duration_ms);
            }
        }
    }
    out
}

/// The formats a request asks for, video first: (is video, its id as the
/// request names it, its itag, its file); a request for one track
/// (`enabled_track_types_bitfield` 1: audio, 2: video) asks for that one.
fn asked(req: &Pb) -> Vec<(bool, &[u8], u64, &'static Layout)> {
    let tracks = req.msg(1).and_then(|m| m.int(40)).unwrap_or(0);
    let mut out = Vec::new();
    for (field, is_video) in [(17, true), (16, false)] {
        if (is_video && tracks == 1) || (!is_video && tracks == 2) {
            continue;
        }
        let Some(format) = req.all(field).next() else { continue };
        let Some(itag) = Pb::read(format).and_then(|f| f.int(1)) else { continue };
        let Some(file) = Layout::of(itag) else { continue };
        out.push((is_video, format, itag, file));
    }
    out
}

/// Segment numbers the request says it holds, per itag (a range past the
/// file, as a client marks a track it discards, holds everything).
fn buffered(req: &Pb) -> HashMap<u64, BTreeSet<u64>> {
    let mut out: HashMap<u64, BTreeSet<u64>> = HashMap::new();
    for range in req.all(3).filter_map(Pb::read) {
        let Some(itag) = range.msg(1).and_then(|f| f.int(1)) else { continue };
        let (a, b) = (range.int(4).unwrap_or(0), range.int(5).unwrap_or(0).min(10_000));
        out.entry(itag).or_default().extend(a..=b);
    }
    out
}

/// One segment as MEDIA_HEADER, MEDIA parts of at most 16 KiB, MEDIA_END.
fn media(out: &mut Vec<u8>, hid: u64, header: Msg, bytes: &[u8]) {
    part(out, 20, &header.int(14, bytes.len() as u64).0);
    for chunk in bytes.chunks(16 << 10) {
        let mut data = Vec::new();
        varint(&mut data, hid);
        data.extend_from_slice(chunk);
        part(out, 21, &data);
    }
    let mut end = Vec::new();
    varint(&mut end, hid);
    part(out, 22, &end);
}

/// UMP's number: the count of leading ones of the first byte says how many
/// bytes follow; five bytes hold a little-endian u32.
fn varint(out: &mut Vec<u8>, v: u64) {
    let v = v as u32;
    if v < 1 << 7 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend([0x80 | (v & 0x3f) as u8, (v >> 6) as u8]);
    } else if v < 1 << 21 {
        out.extend([0xc0 | (v & 0x1f) as u8, (v >> 5) as u8, (v >> 13) as u8]);
    } else if v < 1 << 28 {
        out.extend([0xe0 | (v & 0x0f) as u8, (v >> 4) as u8, (v >> 12) as u8, (v >> 20) as u8]);
    } else {
        out.push(0xf0);
        out.extend(v.to_le_bytes());
    }
}

fn part(out: &mut Vec<u8>, kind: u64, data: &[u8]) {
    varint(out, kind);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A protobuf message being written, field by field.
#[derive(Default, Clone)]
pub struct Msg(pub Vec<u8>);

impl Msg {
    pub fn int(mut self, n: u64, v: u64) -> Self {
        pb_varint(&mut self.0, n << 3);
        pb_varint(&mut self.0, v);
        self
    }

    pub fn raw(mut self, n: u64, data: &[u8]) -> Self {
        pb_varint(&mut self.0, (n << 3) | 2);
        pb_varint(&mut self.0, data.len() as u64);
        self.0.extend_from_slice(data);
        self
    }

    pub fn str(self, n: u64, s: &str) -> Self {
        self.raw(n, s.as_bytes())
    }

    pub fn msg(self, n: u64, m: Msg) -> Self {
        self.raw(n, &m.0)
    }
}

/// A protobuf message read: its fields in order, varints as numbers and
/// length-delimited ones as bytes (fixed-width ones are skipped).
#[derive(Default, Clone)]
pub struct Pb(Vec<(u64, Result<u64, Vec<u8>>)>);

fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl Pb {
    /// `None` when `buf` is not a protobuf message.
    pub fn read(buf: &[u8]) -> Option<Pb> {
        let (mut at, mut out) = (0, Vec::new());
        while at < buf.len() {
            let key = pb_read_varint(buf, &mut at)?;
            let value = match key & 7 {
                0 => Ok(pb_read_varint(buf, &mut at)?),
                1 | 5 => {
                    at += if key & 7 == 1 { 8 } else { 4 };
                    Ok(0)
                }
                2 => {
                    let len = pb_read_varint(buf, &mut at)? as usize;
                    let data = buf.get(at..at.checked_add(len)?)?.to_vec();
                    at += len;
                    Err(data)
                }
                _ => return None,
            };
            out.push((key >> 3, value));
        }
        (at == buf.len()).then_some(Pb(out))
    }

    /// The last value of varint field `n`.
    pub fn int(&self, n: u64) -> Option<u64> {
        self.0.iter().rev().find_map(|(f, v)| if *f == n { v.as_ref().ok().copied() } else { None })
    }

    /// The last value of length-delimited field `n`.
    pub fn bytes(&self, n: u64) -> Option<&[u8]> {
        self.all(n).last()
    }

    pub fn msg(&self, n: u64) -> Option<Pb> {
        Pb::read(self.bytes(n)?)
    }

    /// Every value of length-delimited field `n`.
    pub fn all(&self, n: u64) -> impl Iterator<Item = &[u8]> {
        self.0.iter().filter_map(move |(f, v)| if *f == n { v.as_ref().err().map(Vec::as_slice) } else { None })
    }
}

/// A DASH file as the stand-in serves it: its bytes, the length of its
/// init section, and its fragments from the `sidx`.
struct Layout {
    bytes: Vec<u8>,
    init: usize,
    segments: Vec<Fragment>,
    /// The file's length in its timescale (the `sidx`'s).
    ticks: u64,
    audio: bool,
}

struct Fragment {
    offset: usize,
    size: usize,
    /// Its size in the `sidx` (the last one's `size` takes what follows).
    natural: usize,
    start_ms: u64,
    duration_ms: u64,
}

impl Layout {
    /// The file of `itag`, read once when first asked for.
    fn of(itag: u64) -> Option<&'static Layout> {
        const FILES: [(u64, &str); 5] = [
            (134, "dash-v360.mp4"),
            (136, "dash-v720.mp4"),
            (140, "dash-a.m4a"),
            (137, "film-v.mp4"),
            (141, "film-a.m4a"),
        ];
        static READ: [OnceLock<Layout>; 5] = [const { OnceLock::new() }; 5];
        let n = FILES.iter().position(|(i, _)| *i == itag)?;
        let read = || Layout::read(std::fs::read(media_dir().join(FILES[n].1)).unwrap(), FILES[n].1.ends_with(".m4a"));
        Some(READ[n].get_or_init(read))
    }

    /// The file's length in ms, as its segments' times add up.
    fn duration_ms(&self) -> u64 {
        self.segments.last().map_or(1, |f| f.start_ms + f.duration_ms).max(1)
    }

    /// The top-level `sidx`: version, timescale, earliest time, first
    /// offset (from the box's end), then one reference per fragment.
    fn read(bytes: Vec<u8>, audio: bool) -> Layout {
        let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let mut at = 0;
        while &bytes[at + 4..at + 8] != b"sidx" {
            at += be32(at) as usize;
        }
        let end = at + be32(at) as usize;
        let version = bytes[at + 8];
        let timescale = be32(at + 16);
        let (earliest, first, mut p) = match version {
            0 => (be32(at + 20), be32(at + 24), at + 28),
            _ => (be64(at + 20), be64(at + 28), at + 36),
        };
        let count = u16::from_be_bytes([bytes[p + 2], bytes[p + 3]]) as usize;
        p += 4;
        let (mut offset, mut ticks) = (end + first as usize, earliest);
        let init = offset;
        let ms = |t: u64| (t - earliest) * 1000 / timescale;
        let mut segments = Vec::new();
        for _ in 0..count {
            let size = (be32(p) & 0x7fff_ffff) as usize;
            let duration = be32(p + 4);
            segments.push(Fragment {
                offset,
                size,
                natural: size,
                start_ms: ms(ticks),
                duration_ms: ms(ticks + duration) - ms(ticks),
            });
            offset += size;
            ticks += duration;
            p += 12;
        }
        // What follows the last fragment (ffmpeg's `mfra`) goes with it, so
        // the segments put together are the file.
        if let Some(last) = segments.last_mut() {
            last.size = bytes.len() - last.offset;
        }
        Layout { bytes, init, segments, ticks: ticks - earliest, audio }
    }
}
