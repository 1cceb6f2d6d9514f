//! The stand-in SABR server's live streams (the `live` quirk): the test
//! media's DASH files played on a loop from the moment a video is first
//! asked for, less a preroll, on the wall clock, as one endless stream.
//! Segment N (from 1) is fragment `(N - 1) mod n` of the file, its
//! `tfdt` moved on by the loops before it, so what a player gets has
//! timestamps that only go forward. A segment is there once its end has
//! passed.
//!
//! Every answer starts with `LIVE_METADATA` (the head's number and time,
//! and the earliest time that can be sought: [`DVR_MS`] behind the head);
//! a request from before that time gets nothing else (a client learns the
//! head, then asks from there); otherwise up to three segments from its
//! player time, and a backoff until the next segment is due when it has
//! the head. The layout names no last segment.

use std::time::Instant;

use super::{Layout, Msg, media, part};

/// How far the stream is at a video's first request.
const PREROLL_MS: u64 = 30_000;

/// What can be sought behind the head.
pub const DVR_MS: u64 = 20_000;

/// Segments an answer brings at most.
const PER_ANSWER: usize = 3;

/// A live segment: where it is in the stream and which fragment it plays.
struct Seg {
    number: u64,
    start_ms: u64,
    duration_ms: u64,
    fragment: usize,
    /// The loops before it, in the file's timescale.
    shift: u64,
}

fn seg(file: &Layout, number: u64) -> Seg {
    let n = file.segments.len() as u64;
    let (round, i) = ((number - 1) / n, ((number - 1) % n) as usize);
    let f = &file.segments[i];
    Seg {
        number,
        start_ms: round * file.duration_ms() + f.start_ms,
        duration_ms: f.duration_ms,
        fragment: i,
        shift: round * file.ticks,
    }
}

/// The newest segment there `elapsed_ms` into the stream (0: none yet).
fn head(file: &Layout, elapsed_ms: u64) -> u64 {
    let n = file.segments.len() as u64;
    let (round, within) = (elapsed_ms / file.duration_ms(), elapsed_ms % file.duration_ms());
    round * n + file.segments.iter().filter(|f| f.start_ms + f.duration_ms <= within).count() as u64
}

/// The stream's time now, from its start (the first request, less the
/// preroll).
pub fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64 + PREROLL_MS
}

/// What a request asks of one format.
pub struct Ask<'a> {
    pub itag: u64,
    /// The format's id as the request names it.
    pub format: &'a [u8],
    /// The client has the format's layout and init section.
    pub initialized: bool,
    /// Segment numbers it holds.
    pub held: &'a std::collections::BTreeSet<u64>,
    pub player_ms: u64,
}

/// What a live answer holds for a format's file: `LIVE_METADATA`, the
/// layout and init section if the client lacks them, the segments. Returns
/// the segments sent and the pause before the next request (for the
/// answer's request policy, written by the caller with its cookie: a
/// client keeps the last policy of an answer whole).
pub fn respond(out: &mut Vec<u8>, file: &Layout, ask: &Ask, elapsed: u64) -> (Vec<u64>, u64) {
    let Ask { itag, format, initialized, held, player_ms } = *ask;
    let mut sent = Vec::new();
    let head_no = head(file, elapsed);
    let Some(head_seg) = (head_no > 0).then(|| seg(file, head_no)) else { return (sent, 500) };
    let min_seekable = head_seg.start_ms.saturating_sub(DVR_MS);
    part(
        out,
        31,
        &Msg::default()
            .int(3, head_no)
            .int(4, head_seg.start_ms)
            .int(12, min_seekable)
            .int(13, 1000)
            .int(14, head_seg.start_ms + head_seg.duration_ms)
            .int(15, 1000)
            .0,
    );
    if player_ms < min_seekable {
        // Nothing there: ask again from where the head is, in a moment.
        return (sent, 100);
    }
    let mut hid = 0;
    if !initialized {
        let mime = if file.audio { "audio/mp4; codecs=\"mp4a.40.2\"" } else { "video/mp4; codecs=\"avc1.4d401e\"" };
        part(out, 42, &Msg::default().raw(2, format).str(5, mime).0);
        let header = Msg::default().int(1, hid).int(3, itag).int(6, 0).int(8, 1).raw(13, format);
        media(out, hid, header, &file.bytes[..file.init]);
        hid += 1;
    }
    let first = (1..=head_no).find(|&k| {
        let s = seg(file, k);
        s.start_ms + s.duration_ms > player_ms
    });
    let wanted: Vec<u64> = first.map_or(Vec::new(), |f| (f..=head_no).filter(|k| !held.contains(k)).collect());
    for &k in wanted.iter().take(PER_ANSWER) {
        let s = seg(file, k);
        let f = &file.segments[s.fragment];
        let mut bytes = file.bytes[f.offset..f.offset + f.natural].to_vec();
        shift_tfdt(&mut bytes, s.shift);
        let header = Msg::default()
            .int(1, hid)
            .int(3, itag)
            .int(9, s.number)
            .int(11, s.start_ms)
            .int(12, s.duration_ms)
            .raw(13, format)
            .msg(15, Msg::default().int(1, s.start_ms).int(2, s.duration_ms).int(3, 1000));
        media(out, hid, header, &bytes);
        hid += 1;
        sent.push(k);
    }
    if wanted.len() > PER_ANSWER {
        return (sent, 0);
    }
    // At the head: come back when the next segment is there.
    let next = seg(file, head_no + 1);
    (sent, (next.start_ms + next.duration_ms).saturating_sub(elapsed) + 20)
}

/// Moves a fragment's `tfdt` (its first sample's time) on by `shift`.
fn shift_tfdt(bytes: &mut [u8], shift: u64) {
    let Some(at) = bytes.windows(4).position(|w| w == b"tfdt") else { return };
    let v = at + 4;
    if bytes[v] == 1 {
        let t = u64::from_be_bytes(bytes[v + 4..v + 12].try_into().unwrap()) + shift;
        bytes[v + 4..v + 12].copy_from_slice(&t.to_be_bytes());
    } else {
        let t = u32::from_be_bytes(bytes[v + 4..v + 8].try_into().unwrap()) as u64 + shift;
        bytes[v + 4..v + 8].copy_from_slice(&(t as u32).to_be_bytes());
    }
}
