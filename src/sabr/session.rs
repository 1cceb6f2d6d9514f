//! One SABR session for a video's pair of formats (a video and an audio:
//! the protocol serves both in one exchange), with no I/O of its own: the
//! caller POSTs what [`Session::request`] gives, feeds each UMP part of the
//! answer to [`Session::absorb`], then asks [`Session::answered`] what to do
//! next. So the protocol is tested part by part, and whoever owns the
//! connection (the relay) decides where the bytes go.
//!
//! What a request says, as the protocol's own clients say it: where the
//! player is (the end of what it holds of both formats, contiguous from
//! where it started), every range it holds, the formats whose layout it
//! has, the server's latest playback cookie and the SABR contexts it asked
//! to have sent back, the PO token. A redirect changes where the next
//! request goes; a backoff delays it.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::proto::{self, FormatId};
use super::ump::{self, Part, kind};

/// What yt-dlp hands over for a SABR format, in reelay's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The streaming URL (`serverAbrStreamingUrl`).
    pub url: String,
    /// The player's opaque ustreamer config, decoded from base64.
    pub ustreamer_config: Vec<u8>,
    /// The GVS PO token, decoded from base64, when there is one.
    pub po_token: Option<Vec<u8>>,
    pub client: Client,
    pub video_id: String,
}

/// The client the URL was issued to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// innertube's number for it (WEB is 1).
    pub name: i32,
    pub version: String,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
}

/// A format, as the protocol names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Format {
    pub itag: i32,
    pub last_modified: u64,
    pub xtags: Option<String>,
}

impl Format {
    fn id(&self) -> FormatId {
        FormatId { itag: Some(self.itag), last_modified: Some(self.last_modified), xtags: self.xtags.clone() }
    }
}

/// The session's two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video = 0,
    Audio = 1,
}

/// What a part of an answer brought.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A format's layout (sent once, before its bytes).
    Layout {
        track: Track,
        last_segment: i64,
        duration_ms: i64,
        mime: String,
    },
    /// The format's initialization section.
    Init {
        track: Track,
        bytes: Bytes,
    },
    Segment(Segment),
    /// A live stream's head (`LIVE_METADATA`), in every answer of a live
    /// session.
    Live(Head),
}

/// Where a live stream is: its newest segment and what can be sought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub sequence: i64,
    /// The newest segment's start, ms of the stream's time.
    pub time_ms: i64,
    /// The earliest time a session may start from (the DVR window).
    pub min_seekable_ms: Option<i64>,
}

/// One media segment of a format.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub track: Track,
    pub sequence: i64,
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Where its bytes sit in the format's file, when the server says.
    pub offset: Option<u64>,
    /// Its bytes, in the pieces the server's media parts brought them in
    /// (slices of the answer, not copied).
    pub parts: Vec<Bytes>,
}

impl Segment {
    /// Its bytes as one buffer (a copy when they came in several parts).
    pub fn bytes(&self) -> Bytes {
        joined(self.parts.clone())
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask again, after this many milliseconds.
    Ask { after_ms: u64 },
    /// Both formats are held to their last segment from where the session
    /// started.
    Done,
}

/// Why a session cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SabrFailure {
    #[error("the SABR server refused the request ({kind}, code {code})")]
    Refused { kind: String, code: i32 },
    #[error("the SABR server requires attestation (a PO token)")]
    AttestationRequired,
    #[error("the SABR server asked for the video to be loaded again")]
    Reload,
    #[error("the SABR answer could not be read: {0}")]
    Malformed(String),
    #[error("the SABR server sent nothing new three times in a row")]
    Stalled,
}

/// How many answers in a row may bring nothing before the session gives up.
const STALLS: u32 = 3;

#[derive(Default)]
struct Held {
    /// The layout's last segment, once sent.
    last_segment: Option<i64>,
    /// Runs of consecutive segments held: first → (last, start ms, end
    /// ms), kept as segments come (each request names every run; a film
    /// holds thousands of segments in a few runs).
    runs: BTreeMap<i64, (i64, i64, i64)>,
}

impl Held {
    /// Segment `seq`, from `start` for `duration` ms, is held.
    fn insert(&mut self, seq: i64, start: i64, duration: i64) {
        let end = start + duration;
        let before = self.runs.range(..=seq).next_back().map(|(&first, &run)| (first, run));
        if before.is_some_and(|(_, (last, _, _))| last >= seq) {
            return;
        }
        let joins_before = before.filter(|&(_, (last, _, _))| last + 1 == seq).map(|(first, _)| first);
        let after = self.runs.remove(&(seq + 1));
        match (joins_before, after) {
            (Some(first), after) => {
                let run = self.runs.get_mut(&first).expect("the run before");
                (run.0, run.2) = after.map_or((seq, end), |(last, _, e)| (last, e));
            }
            (None, Some((last, _, e))) => {
                self.runs.insert(seq, (last, start, e));
            }
            (None, None) => {
                self.runs.insert(seq, (seq, start, end));
            }
        }
    }

    /// The runs: (first, last, start ms, end ms).
    fn runs(&self) -> impl Iterator<Item = (i64, i64, i64, i64)> + '_ {
        self.runs.iter().map(|(&first, &(last, start, end))| (first, last, start, end))
    }
}

struct Pending {
    track: Track,
    header: proto::MediaHeader,
    /// The segment's media parts, as slices of the answer (a segment that
    /// came in one part is not copied).
    parts: Vec<Bytes>,
}

struct Context {
    value: Vec<u8>,
    active: bool,
}

pub struct Session {
    config: Config,
    /// Where requests go now (a redirect moves it).
    url: String,
    /// The request number (`rn`), from 1.
    rn: u32,
    formats: [Format; 2],
    held: [Held; 2],
    /// Where the player is: the server sends what follows.
    player_ms: i64,
    /// Where the session started (a seek): segments before it are not sought.
    from_ms: i64,
    cookie: Option<Vec<u8>>,
    contexts: BTreeMap<i32, Context>,
    pending: HashMap<u64, Pending>,
    backoff_ms: u64,
    progressed: bool,
    stalls: u32,
    /// One track only (the other discarded, as the protocol's clients mark
    /// it: held whole), or both.
    only: Option<Track>,
    /// A live stream: never done, placed behind the head when it is first
    /// learnt, an answer that says where the head is counts as news.
    live: bool,
    /// An answer brought a segment (not only the init section).
    got_segment: bool,
}

/// How far behind a live stream's head a session starts, in segments: what
/// a player joining a live HLS playlist holds before it plays.
const LIVE_BEHIND: i64 = 3;

/// The pause between requests of a live session at the head when the
/// server asks for none (it paces live sessions itself as a rule).
const LIVE_POLL_MS: u64 = 250;

impl Session {
    /// A session for `video` and `audio` from `from_ms` of the film.
    pub fn new(config: Config, video: Format, audio: Format, from_ms: i64) -> Self {
        Session {
            url: config.url.clone(),
            config,
            rn: 0,
            formats: [video, audio],
            held: Default::default(),
            player_ms: from_ms,
            from_ms,
            cookie: None,
            contexts: BTreeMap::new(),
            pending: HashMap::new(),
            backoff_ms: 0,
            progressed: false,
            stalls: 0,
            only: None,
            live: false,
            got_segment: false,
        }
    }

    /// The session follows a live stream: it starts [`LIVE_BEHIND`]
    /// segments behind the head the first answer names (the request that
    /// learns it brings no media, or media the caller may skip), asks
    /// again at the server's pace, and is never done.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// The session asks for `track` alone: the server sends the other
    /// format nothing (one session per format, whoever reads it).
    pub fn only(mut self, track: Track) -> Self {
        self.only = Some(track);
        self
    }

    /// Whether the session fetches `t`.
    fn wants(&self, t: usize) -> bool {
        self.only.is_none_or(|o| o as usize == t)
    }

    /// Where the next request goes and its body.
    pub fn request(&mut self) -> (String, Vec<u8>) {
        self.rn += 1;
        self.progressed = false;
        self.got_segment = false;
        let url = with_rn(&self.url, self.rn);
        // A discarded track is marked held whole, as the protocol's own
        // clients mark it.
        let discarded =
            (0..2).filter(|&t| !self.wants(t)).map(|t| (t, (0, i64::from(i32::MAX), 0, i64::from(i32::MAX))));
        let buffered = (0..2)
            .filter(|&t| self.wants(t))
            .flat_map(|t| self.held[t].runs().map(move |r| (t, r)))
            .chain(discarded)
            .map(|(t, (first, last, start, end))| proto::BufferedRange {
                format_id: Some(self.formats[t].id()),
                start_time_ms: Some(start),
                duration_ms: Some(end - start),
                start_segment_index: i32::try_from(first).ok(),
                end_segment_index: i32::try_from(last).ok(),
                time_range: Some(proto::TimeRange {
                    start_ticks: Some(start),
                    duration_ticks: Some(end - start),
                    timescale: Some(1000),
                }),
            })
            .collect();
        let c = &self.config.client;
        let body = proto::VideoPlaybackAbrRequest {
            client_abr_state: Some(proto::ClientAbrState {
                player_time_ms: Some(self.player_ms),
                enabled_track_types_bitfield: Some(match self.only {
                    None => 0,
                    Some(Track::Audio) => 1,
                    Some(Track::Video) => 2,
                }),
                playback_rate: Some(1.0),
                visibility: Some(1),
                drc_enabled: None,
                sticky_resolution: None,
            }),
            selected_format_ids: (0..2)
                .filter(|&t| self.held[t].last_segment.is_some() || !self.wants(t))
                .map(|t| self.formats[t].id())
                .collect(),
            buffered_ranges: buffered,
            video_playback_ustreamer_config: Some(self.config.ustreamer_config.clone()),
            preferred_audio_format_ids: vec![self.formats[1].id()],
            preferred_video_format_ids: vec![self.formats[0].id()],
            streamer_context: Some(proto::StreamerContext {
                client_info: Some(proto::ClientInfo {
                    client_name: Some(c.name),
                    client_version: Some(c.version.clone()),
                    os_name: c.os_name.clone(),
                    os_version: c.os_version.clone(),
                    ..Default::default()
                }),
                po_token: self.config.po_token.clone(),
                playback_cookie: self.cookie.clone(),
                sabr_contexts: (self.contexts.iter().filter(|(_, c)| c.active))
                    .map(|(&kind, c)| proto::SabrContext { kind: Some(kind), value: Some(c.value.clone()) })
                    .collect(),
                unsent_sabr_contexts: self.contexts.iter().filter(|(_, c)| !c.active).map(|(&k, _)| k).collect(),
            }),
        };
        (url, body.encode_to_vec())
    }

    /// Takes one part of the answer; what it brought, if anything a caller
    /// keeps.
    pub fn absorb(&mut self, part: Part) -> Result<Option<Event>, SabrFailure> {
        match part.kind {
            kind::MEDIA_HEADER => {
                let header = proto::MediaHeader::decode(part.data).map_err(bad("a media header"))?;
                if header.compression.unwrap_or(0) != 0 {
                    return Err(SabrFailure::Malformed("compressed media".into()));
                }
                let track = self.track_of(header.format_id.as_ref(), header.itag)?;
                let id = u64::from(header.header_id.unwrap_or(0));
                self.pending.insert(id, Pending { track, header, parts: Vec::new() });
            }
            kind::MEDIA => {
                let (id, data) = ump::header_id(&part.data).ok_or_else(|| malformed("a media part"))?;
                let pending = self.pending.get_mut(&id).ok_or_else(|| malformed("media for no header"))?;
                pending.parts.push(data);
            }
            kind::MEDIA_END => {
                let (id, _) = ump::header_id(&part.data).ok_or_else(|| malformed("a media end"))?;
                let Pending { track, header, parts } =
                    self.pending.remove(&id).ok_or_else(|| malformed("an end for no header"))?;
                let len: usize = parts.iter().map(Bytes::len).sum();
                if header.content_length.is_some_and(|n| n != len as i64) {
                    return Err(malformed("a segment of another length than its header said"));
                }
                self.progressed = true;
                if header.is_init_seg == Some(true) {
                    return Ok(Some(Event::Init { track, bytes: joined(parts) }));
                }
                let sequence = header.sequence_number.ok_or_else(|| malformed("a segment with no number"))?;
                self.got_segment = true;
                let (start_ms, duration_ms) = timing(&header);
                if self.live && self.held[track as usize].runs.is_empty() && start_ms > self.from_ms {
                    // The live stream's first segment starts after where the
                    // session was placed: the session's run starts with it.
                    self.from_ms = start_ms;
                    self.player_ms = self.player_ms.max(start_ms);
                }
                self.held[track as usize].insert(sequence, start_ms, duration_ms);
                let offset = header.start_range.and_then(|o| u64::try_from(o).ok());
                return Ok(Some(Event::Segment(Segment { track, sequence, start_ms, duration_ms, offset, parts })));
            }
            kind::NEXT_REQUEST_POLICY => {
                let policy = proto::NextRequestPolicy::decode(part.data).map_err(bad("a request policy"))?;
                if policy.playback_cookie.is_some() {
                    self.cookie = policy.playback_cookie;
                }
                self.backoff_ms = policy.backoff_time_ms.map_or(0, |ms| ms.max(0) as u64);
            }
            kind::FORMAT_INITIALIZATION_METADATA => {
                let m = proto::FormatInitializationMetadata::decode(part.data).map_err(bad("a format's layout"))?;
                let track = self.track_of(m.format_id.as_ref(), None)?;
                let duration_ms = match (m.duration_units, m.duration_timescale) {
                    (Some(units), Some(scale)) if scale > 0 => units.saturating_mul(1000) / scale,
                    _ => m.end_time_ms.unwrap_or(0),
                };
                // A live stream's layout has no end (or the head's, which
                // moves): the session is never done.
                let last_segment = match (m.end_segment_number, self.live) {
                    (_, true) => i64::MAX,
                    (Some(n), false) => n,
                    (None, false) => return Err(malformed("a layout with no last segment")),
                };
                self.held[track as usize].last_segment = Some(last_segment);
                let mime = m.mime_type.unwrap_or_default();
                return Ok(Some(Event::Layout { track, last_segment, duration_ms, mime }));
            }
            kind::SABR_REDIRECT => {
                let redirect = proto::SabrRedirect::decode(part.data).map_err(bad("a redirect"))?;
                self.url = redirect.url.ok_or_else(|| malformed("a redirect to nowhere"))?;
            }
            kind::SABR_ERROR => {
                let e = proto::SabrError::decode(part.data).map_err(bad("an error"))?;
                return Err(SabrFailure::Refused { kind: e.kind.unwrap_or_default(), code: e.code.unwrap_or(0) });
            }
            kind::STREAM_PROTECTION_STATUS => {
                let s = proto::StreamProtectionStatus::decode(part.data).map_err(bad("a protection status"))?;
                if s.status == Some(3) {
                    return Err(SabrFailure::AttestationRequired);
                }
            }
            kind::RELOAD_PLAYER_RESPONSE => return Err(SabrFailure::Reload),
            kind::LIVE_METADATA if self.live => {
                let m = proto::LiveMetadata::decode(part.data).map_err(bad("a live stream's head"))?;
                let head = Head {
                    sequence: m.head_sequence_number.ok_or_else(|| malformed("a live head with no number"))?,
                    time_ms: m.head_sequence_time_ms.unwrap_or(0),
                    min_seekable_ms: m
                        .min_seekable_time_ticks
                        .zip(m.min_seekable_timescale.filter(|&s| s > 0))
                        .map(|(t, s)| t * 1000 / i64::from(s)),
                };
                // Where the head is is news: waiting for it is no stall.
                self.progressed = true;
                if self.held.iter().all(|h| h.runs.is_empty()) {
                    self.place_behind(head);
                }
                return Ok(Some(Event::Live(head)));
            }
            kind::SABR_CONTEXT_UPDATE => {
                let u = proto::SabrContextUpdate::decode(part.data).map_err(bad("a context update"))?;
                if let (Some(kind), Some(value)) = (u.kind, u.value.filter(|v| !v.is_empty())) {
                    let keep = u.write_policy == Some(2) && self.contexts.contains_key(&kind);
                    if !keep {
                        let active =
                            u.send_by_default == Some(true) || self.contexts.get(&kind).is_some_and(|c| c.active);
                        self.contexts.insert(kind, Context { value, active });
                    }
                }
            }
            kind::SABR_CONTEXT_SENDING_POLICY => {
                let p = proto::SabrContextSendingPolicy::decode(part.data).map_err(bad("a context policy"))?;
                for (kinds, active) in [(&p.start_policy, true), (&p.stop_policy, false)] {
                    for k in kinds {
                        if let Some(c) = self.contexts.get_mut(k) {
                            c.active = active;
                        }
                    }
                }
                for k in &p.discard_policy {
                    self.contexts.remove(k);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// After an answer's last part: where the player is now, and whether to
    /// ask again.
    pub fn answered(&mut self) -> Result<Next, SabrFailure> {
        self.pending.clear();
        if self.progressed {
            self.stalls = 0;
        } else {
            self.stalls += 1;
            if self.stalls >= STALLS {
                return Err(SabrFailure::Stalled);
            }
        }
        let runs: Vec<Option<(i64, i64)>> = self.held.iter().map(|h| run_from(h, self.from_ms)).collect();
        let wanted: Vec<usize> = (0..2).filter(|&t| self.wants(t)).collect();
        if let Some(reached) = wanted.iter().map(|&t| runs[t].map(|r| r.1)).collect::<Option<Vec<i64>>>() {
            let least = reached.into_iter().min().unwrap_or(self.player_ms);
            self.player_ms = least.max(self.player_ms);
        }
        let done = wanted.iter().all(|&t| {
            let h = &self.held[t];
            h.last_segment.zip(runs[t]).is_some_and(|(last, (reached, _))| reached >= last)
        });
        if done {
            return Ok(Next::Done);
        }
        let backoff = std::mem::take(&mut self.backoff_ms);
        // A live session at the head that the server did not pace waits a
        // little rather than asking at once for what is not there yet.
        let after_ms = if self.live && backoff == 0 && !self.got_segment { LIVE_POLL_MS } else { backoff };
        Ok(Next::Ask { after_ms })
    }

    /// Starts a live session that holds nothing yet [`LIVE_BEHIND`]
    /// segments behind `head` (the segments' length estimated from the
    /// head's number and time: a stream numbers its segments from its
    /// start), within what can be sought.
    fn place_behind(&mut self, head: Head) {
        let per = (head.time_ms / head.sequence.max(1)).clamp(500, 10_000);
        let from = (head.time_ms - LIVE_BEHIND * per).max(head.min_seekable_ms.unwrap_or(0)).max(0);
        self.player_ms = from;
        self.from_ms = from;
    }

    fn track_of(&self, id: Option<&FormatId>, itag: Option<i32>) -> Result<Track, SabrFailure> {
        let itag = id.and_then(|f| f.itag).or(itag).ok_or_else(|| malformed("bytes of no format"))?;
        match self.formats.iter().position(|f| f.itag == itag) {
            Some(0) => Ok(Track::Video),
            Some(_) => Ok(Track::Audio),
            None => Err(malformed("bytes of a format not asked for")),
        }
    }
}

/// What a message that does not decode makes of the session.
fn bad(what: &'static str) -> impl Fn(prost::DecodeError) -> SabrFailure {
    move |e| SabrFailure::Malformed(format!("{what}: {e}"))
}

fn malformed(what: &str) -> SabrFailure {
    SabrFailure::Malformed(what.to_owned())
}

/// A segment's start and duration in ms, from its header's fields or its
/// time range.
fn timing(h: &proto::MediaHeader) -> (i64, i64) {
    let ranged = h.time_range.as_ref().and_then(|r| {
        let scale = i64::from(r.timescale.filter(|&s| s > 0)?);
        Some((r.start_ticks? * 1000 / scale, (r.duration_ticks? * 1000 + scale - 1) / scale))
    });
    let start = h.start_ms.or(ranged.map(|r| r.0)).unwrap_or(0);
    let duration = h.duration_ms.or(ranged.map(|r| r.1)).unwrap_or(0);
    (start, duration)
}

/// A segment's parts as one buffer: the part itself when there is one.
fn joined(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        out.extend_from_slice(&p);
    }
    out.freeze()
}

/// The run of segments that holds `from_ms`: its last segment and where it
/// ends (ms).
fn run_from(held: &Held, from_ms: i64) -> Option<(i64, i64)> {
    held.runs().find(|&(_, _, start, end)| start <= from_ms && from_ms < end.max(start + 1)).map(|r| (r.1, r.3))
}

/// `url` with its `rn` query parameter set to `rn`.
fn with_rn(url: &str, rn: u32) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let kept: Vec<(String, String)> =
                u.query_pairs().filter(|(k, _)| k != "rn").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            u.query_pairs_mut().clear().extend_pairs(kept).append_pair("rn", &rn.to_string());
            u.into()
        }
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::Held;

    #[test]
    fn runs_join_as_segments_come_in_any_order() {
        let mut held = Held::default();
        for seq in [5, 1, 3, 2, 7, 6, 3] {
            held.insert(seq, seq * 10, 10);
        }
        assert_eq!(held.runs().collect::<Vec<_>>(), [(1, 3, 10, 40), (5, 7, 50, 80)]);
        held.insert(4, 40, 10);
        assert_eq!(held.runs().collect::<Vec<_>>(), [(1, 7, 10, 80)]);
    }
}
