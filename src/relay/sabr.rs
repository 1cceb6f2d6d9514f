//! A SABR session ([`crate::sabr::Session`]) carried over the upstream's
//! connections: each request POSTed (on the format's route, with its
//! headers), each answer read as it arrives and its parts handed to the
//! session, what they bring handed on at once (a segment is usable before
//! the answer ends), the server's backoff waited, its redirects followed
//! (the session keeps the URL). An answer cut short loses only its
//! unfinished segment: the next request says what is held. A failed
//! request (a 5xx, a dead connection) is asked again a few times with a
//! growing pause; a refused URL (403) is [`RelayError::Expired`], for the
//! caller to extract the video again.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;

use super::{Locator, ProxyError, RelayError, Shared, Upstream};
use crate::lazy::{Lazy, lazy};
use crate::sabr::ump::Reader;
use crate::sabr::{Config, Event, Format, Next, Session, Track};
use crate::upstream::Via;

/// Failed requests in a row before the session gives up.
const MAX_FAILS: u32 = 5;
/// The pause before each retry (ms).
const BACKOFF_MS: [u64; MAX_FAILS as usize] = [100, 250, 500, 1000, 2000];
/// The longest pause a server's backoff may ask for.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a sink wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    More,
    /// The rest of this answer (already on its way), then no more.
    ThisAnswer,
    /// Nothing more.
    Stop,
}

/// Runs `session` until its formats are held to their end, handing every
/// event to `sink`, which says whether to go on (a viewer gone, enough
/// read ahead).
pub async fn run(
    upstream: &Upstream,
    via: &Via<'_>,
    idle: Duration,
    session: &mut Session,
    mut sink: impl FnMut(Event) -> Flow,
) -> Result<(), RelayError> {
    let mut fails = 0u32;
    loop {
        let (url, body) = session.request();
        let outcome = exchange(upstream, via, idle, &url, body, session, &mut sink).await;
        match outcome {
            Ok(false) => return Ok(()),
            Ok(true) => fails = 0,
            Err(RelayError::Sabr(e)) => return Err(RelayError::Sabr(e)),
            Err(RelayError::Expired) => return Err(RelayError::Expired),
            Err(e) => {
                fails += 1;
                if fails > MAX_FAILS {
                    return Err(e);
                }
                tracing::info!(attempt = fails, error = %e, "asking the SABR server again");
                tokio::time::sleep(Duration::from_millis(BACKOFF_MS[fails as usize - 1])).await;
                continue;
            }
        }
        match session.answered().map_err(RelayError::Sabr)? {
            Next::Done => return Ok(()),
            Next::Ask { after_ms } => {
                let pause = Duration::from_millis(after_ms).min(MAX_BACKOFF);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// One request and its answer; `Ok(false)` when the sink wants no more.
async fn exchange(
    upstream: &Upstream,
    via: &Via<'_>,
    idle: Duration,
    url: &str,
    body: Vec<u8>,
    session: &mut Session,
    sink: &mut impl FnMut(Event) -> Flow,
) -> Result<bool, RelayError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.yt-ump"));
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    let fetched = upstream.post(url, via, headers, Bytes::from(body)).await.map_err(|e| match e {
        ProxyError::Expired(_) => RelayError::Expired,
        other => other.into(),
    })?;
    let mut body = fetched.response.into_body();
    let mut reader = Reader::default();
    let mut last = false;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(RelayError::Unreachable("the SABR server sent nothing".into())),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| RelayError::Unreachable(format!("the SABR answer broke off: {e}")))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        reader.push(data);
        while let Some(part) = reader.next_part().map_err(|e| RelayError::Unreachable(e.to_string()))? {
            if let Some(event) = session.absorb(part).map_err(RelayError::Sabr)? {
                match sink(event) {
                    Flow::More => {}
                    Flow::ThisAnswer => last = true,
                    Flow::Stop => return Ok(false),
                }
            }
        }
    }
    reader.finish().map_err(|e| RelayError::Unreachable(e.to_string()))?;
    Ok(!last)
}

/// A format whose bytes come by SABR, as its [`super::Locator`] carries it:
/// a session's parameters and what the store needs of the file.
#[derive(Debug, Clone)]
pub struct SabrSource {
    /// The session's parameters; its `url` is replaced by the locator's.
    pub config: Config,
    pub format: Format,
    /// A format of the other kind: the protocol names a video and an audio
    /// in every request, and this one is asked for alone.
    pub partner: Format,
    pub track: Track,
    /// The file's length (yt-dlp's `filesize`); 0 for a live stream, whose
    /// session feeds the live window instead of a file.
    pub len: u64,
    /// The film's duration, to place a range in time before any segment of
    /// it was seen.
    pub duration_ms: i64,
    pub content_type: String,
}

impl SabrSource {
    /// The object's meta: the file's length and type, ranged and stored.
    pub(super) fn meta(&self) -> super::Meta {
        super::Meta {
            len: Some(self.len),
            content_type: Some(self.content_type.clone()),
            etag: None,
            last_modified: None,
            ranged: true,
            stored: true,
        }
    }
}

/// Where SABR formats' segments were seen to sit in their files, by object
/// (offset → (start ms, length): a range is placed in time from it), and
/// the segments an answer brought past the blocks its fetch was for: the
/// fetch of the next blocks starts with them instead of asking the server
/// again (a segment of 1080p is larger than a block, and an answer brings
/// several).
pub(super) struct Layouts {
    seen: Lazy<moka::sync::Cache<Arc<str>, Arc<Mutex<Seen>>>>,
    tails: Lazy<moka::sync::Cache<Arc<str>, Arc<Mutex<Tails>>>>,
    /// One session per format at a time: a fetch of another range waits
    /// for the one in flight, then starts with what its answers left.
    sessions: Lazy<moka::sync::Cache<Arc<str>, Arc<tokio::sync::Mutex<()>>>>,
}

/// Segments seen: offset → (start ms, length).
type Seen = BTreeMap<u64, (i64, u64)>;

/// Segments kept for the next fetch: offset → (where its time ends, ms;
/// its bytes).
type Tails = BTreeMap<u64, (i64, Bytes)>;

/// The most kept for one object's next fetch, and for how many objects:
/// what an answer brings past a fetch's blocks is a few segments, kept a
/// minute.
const TAILS_MAX: usize = 8 << 20;
const TAILS_OBJECTS: u64 = 64;

impl Default for Layouts {
    fn default() -> Self {
        let idle = Duration::from_secs(3600);
        Layouts {
            seen: lazy(move || moka::sync::Cache::builder().max_capacity(4096).time_to_idle(idle).build()),
            tails: lazy(|| {
                moka::sync::Cache::builder().max_capacity(TAILS_OBJECTS).time_to_idle(Duration::from_secs(60)).build()
            }),
            sessions: lazy(move || moka::sync::Cache::builder().max_capacity(4096).time_to_idle(idle).build()),
        }
    }
}

impl Layouts {
    fn of(&self, key: &Arc<str>) -> Arc<Mutex<Seen>> {
        self.seen.get_with(key.clone(), Arc::default)
    }

    fn tails(&self, key: &Arc<str>) -> Arc<Mutex<Tails>> {
        self.tails.get_with(key.clone(), Arc::default)
    }
}

/// A time (ms) at or before byte `pos` of the file: the start of the
/// segment seen to hold it, else a guess from the nearest segments seen
/// (or the file's length and duration), a little early.
fn place(seen: &Seen, sabr: &SabrSource, pos: u64) -> i64 {
    let before = seen.range(..=pos).next_back();
    if let Some((&offset, &(start, len))) = before
        && pos < offset + len
    {
        return start;
    }
    let (a_pos, a_ms) = before.map_or((0, 0), |(&o, &(start, len))| (o + len, start));
    let (b_pos, b_ms) = seen.range(pos..).next().map_or((sabr.len, sabr.duration_ms), |(&o, &(s, _))| (o, s));
    let span = b_pos.saturating_sub(a_pos).max(1) as f64;
    let guess = a_ms as f64 + (pos - a_pos.min(pos)) as f64 / span * (b_ms - a_ms) as f64;
    (guess as i64 - EARLY_MS).max(a_ms).max(0)
}

/// How far before a guessed time a session starts: a segment's length, so
/// the first segment usually holds the range's start.
const EARLY_MS: i64 = 2_000;

/// Sessions placed before a range's start gives up (then from the start).
const PLACINGS: u32 = 4;

/// Segments before a range's start a session may bring before it is placed
/// again, closer (it has learnt where they sit).
const SKIPS: u32 = 3;

/// Bytes `range` of a SABR format, handed to `write` (at their offset) as
/// they come (`keep_all`: also kept for the next fetch, the store not
/// keeping them): a session for the format alone, started at a time before the
/// range (see [`place`]); a session that starts past it (a guess too late)
/// is started again earlier. `write` answers whether to go on.
pub(super) async fn read_range(
    shared: &Shared,
    key: &Arc<str>,
    loc: &Locator,
    sabr: &SabrSource,
    range: Range<u64>,
    keep_all: bool,
    mut write: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), RelayError> {
    let one = shared.sabr_layouts.sessions.get_with(key.clone(), Arc::default);
    let _one = one.lock().await;
    let seen = shared.sabr_layouts.of(key);
    let tails = shared.sabr_layouts.tails(key);
    let lock = |m: &Arc<Mutex<Tails>>| m.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut start = range.start;
    let mut from_ms = None;
    // The segments the last fetch's answers brought past its blocks first.
    for (offset, (end_ms, bytes)) in lock(&tails) {
        let end = offset + bytes.len() as u64;
        if offset > start || end <= start {
            continue;
        }
        let go_on = write(start, &bytes[(start - offset) as usize..]);
        start = end;
        from_ms = Some(end_ms);
        if !go_on || start >= range.end {
            return Ok(());
        }
    }
    tails.lock().unwrap_or_else(PoisonError::into_inner).retain(|&o, _| o >= start);
    let mut from_ms = match from_ms {
        Some(ms) => ms,
        None if start == 0 => 0,
        None => place(&seen.lock().unwrap_or_else(PoisonError::into_inner), sabr, start),
    };
    for placing in 0..=PLACINGS {
        let config = Config { url: loc.url.clone(), ..sabr.config.clone() };
        let (video, audio) = match sabr.track {
            Track::Video => (sabr.format.clone(), sabr.partner.clone()),
            Track::Audio => (sabr.partner.clone(), sabr.format.clone()),
        };
        let mut session = Session::new(config, video, audio, from_ms).only(sabr.track);
        let (mut at, mut past) = (start, None);
        // Offsets counted from the file's start, for a server that does not
        // say them (only a session from the start can count).
        let mut counted = (from_ms == 0).then_some(0u64);
        let (mut done, mut skipped, mut early, mut reached_ms) = (false, 0u32, false, from_ms);
        run(&shared.upstream, &loc.via(), shared.settings.idle, &mut session, |event| {
            // A segment's bytes stay in the pieces its media parts brought.
            let (offset, pieces, time) = match event {
                Event::Layout { .. } | Event::Live(_) => return Flow::More,
                Event::Init { bytes, .. } => (0, vec![bytes], None),
                Event::Segment(s) => match s.offset.or(counted) {
                    Some(offset) => (offset, s.parts, Some((s.start_ms, s.duration_ms))),
                    None => {
                        past = Some(u64::MAX);
                        return Flow::Stop;
                    }
                },
            };
            let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
            let end = offset + len;
            counted = counted.map(|_| end);
            if let Some((start_ms, _)) = time {
                seen.lock().unwrap_or_else(PoisonError::into_inner).insert(offset, (start_ms, len));
            }
            // What runs past the range is kept for the next fetch (and all
            // of an exact read, which the store does not keep), a whole
            // segment or none of it.
            let mut kept = tails.lock().unwrap_or_else(PoisonError::into_inner);
            let room = kept.values().map(|(_, b)| b.len() as u64).sum::<u64>() + len <= TAILS_MAX as u64;
            if (end > range.end || keep_all) && room {
                let end_ms = time.map_or(0, |(s, d)| s + d);
                let mut o = offset;
                for piece in &pieces {
                    kept.insert(o, (end_ms, piece.clone()));
                    o += piece.len() as u64;
                }
            }
            drop(kept);
            if done {
                return Flow::ThisAnswer;
            }
            if offset > at {
                past = Some(offset);
                return Flow::Stop;
            }
            if end <= at {
                // Placed far too early: place again, knowing more.
                skipped += 1;
                reached_ms = time.map_or(reached_ms, |(start, duration)| start + duration);
                if skipped > SKIPS && placing < PLACINGS {
                    early = true;
                    return Flow::Stop;
                }
                return Flow::More;
            }
            let (mut o, mut go_on) = (offset, true);
            for piece in &pieces {
                let piece_end = o + piece.len() as u64;
                if go_on && piece_end > at {
                    go_on = write(at, &piece[(at - o) as usize..]);
                    at = piece_end;
                }
                o = piece_end;
            }
            at = end;
            done = !go_on || at >= range.end;
            if done { Flow::ThisAnswer } else { Flow::More }
        })
        .await?;
        let known = || place(&seen.lock().unwrap_or_else(PoisonError::into_inner), sabr, at);
        if early {
            from_ms = known().max(reached_ms);
            continue;
        }
        let Some(landed) = past else { return Ok(()) };
        if from_ms == 0 || placing == PLACINGS {
            return Err(RelayError::Unreachable(format!(
                "the SABR server's segments skip byte {at} (next at {landed})"
            )));
        }
        from_ms = match placing + 1 {
            PLACINGS => 0,
            _ => known().min(from_ms - EARLY_MS * (1 << placing)).max(0),
        };
    }
    Ok(())
}
