//! A live variant that comes over SABR: one session for the format,
//! started a few segments behind the stream's head (`LIVE_METADATA`),
//! following it at the server's pace. Each segment the session brings is
//! put in the relay's store as it arrives (no URL serves it again) and
//! listed in the window as fMP4, the format's init section as its map; so
//! the window, its links and its players are those of any live variant.
//!
//! The segments keep the stream's own numbers (a new session after a
//! renewal goes on from the last one held, and its numbers line up).
//! [`Feed`], here, turns what the session brings into the copies the
//! window merges, without I/O; the poller runs the session
//! (`Poller::follow_sabr`).

use std::collections::VecDeque;

use bytes::Bytes;
use url::Url;

use super::playlist::{Copy, Segment};

/// Segments in each copy the window merges: what it lists.
const LISTED: usize = 6;

/// The window's name for the stream's session: SABR numbers segments
/// from the stream's start, so every session of a stream lines up.
pub(super) const SESSION: &str = "sabr";

/// What a live SABR session brought, as the window takes it.
#[derive(Debug, Default)]
pub(super) struct Feed {
    /// The newest segments, oldest first, with their stream numbers.
    recent: VecDeque<(u64, Segment)>,
    /// The current init section: its name in the window and its bytes.
    init: Option<(Url, Bytes)>,
    /// Whether the current init section is in the store.
    init_kept: bool,
    /// Init sections seen (a new one comes with a new format version).
    inits: u32,
    /// The format's media type (`video/mp4`), from its layout.
    pub content_type: String,
    /// The end of the newest segment, ms of the stream's time: where a new
    /// session goes on.
    pub reached_ms: i64,
}

/// What one segment changes.
pub(super) struct Fed {
    pub copy: Copy,
    /// The segment's bytes, for the store.
    pub bytes: Bytes,
}

impl Feed {
    /// The format's init section: kept until the next segment lists it.
    pub fn init(&mut self, poller: u64, bytes: Bytes) {
        if self.init.as_ref().is_some_and(|(_, b)| *b == bytes) {
            return;
        }
        self.inits += 1;
        let url = part_url(poller, &format!("init{}.{}", self.inits, self.extension()));
        self.init = Some((url, bytes));
        self.init_kept = false;
    }

    /// A segment: the copy that lists it with the newest before it; `None`
    /// for one the window has (a session that began behind), or one that
    /// comes before the format's init section.
    pub fn segment(&mut self, poller: u64, seg: crate::sabr::Segment) -> Option<Fed> {
        let seq = u64::try_from(seg.sequence).ok()?;
        if self.recent.back().is_some_and(|(last, _)| *last >= seq) {
            return None;
        }
        let (map, _) = self.init.as_ref()?;
        let listed = Segment {
            url: part_url(poller, &format!("{seq}.{}", self.extension())),
            duration: seg.duration_ms as f64 / 1000.0,
            title: String::new(),
            discontinuity: false,
            date_ms: None,
            dated: false,
            map: Some((map.clone(), None)),
            key: None,
            byte_range: None,
            tags: Vec::new(),
        };
        self.reached_ms = seg.start_ms + seg.duration_ms;
        self.recent.push_back((seq, listed));
        if self.recent.len() > LISTED {
            self.recent.pop_front();
        }
        let target = self.recent.iter().map(|(_, s)| s.duration.ceil() as u64).max().unwrap_or(1).max(1);
        let copy = Copy {
            target,
            media_sequence: self.recent.front().map_or(seq, |(n, _)| *n),
            segments: self.recent.iter().map(|(_, s)| s.clone()).collect(),
            ended: false,
            version: Some(7),
            independent: true,
            variant: None,
        };
        Some(Fed { copy, bytes: seg.bytes() })
    }

    /// The init section not yet in the store, with its name in the window.
    pub fn take_init(&mut self) -> Option<(Url, Bytes)> {
        if std::mem::replace(&mut self.init_kept, true) {
            return None;
        }
        self.init.clone()
    }

    fn extension(&self) -> &'static str {
        if self.content_type.starts_with("audio/") { "m4a" } else { "mp4" }
    }
}

/// A part's name in the window: no origin URL, only what the link shows.
fn part_url(poller: u64, name: &str) -> Url {
    Url::parse(&format!("sabr:/{poller}/{name}")).expect("a valid URL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sabr::Track;

    fn segment(sequence: i64, bytes: &'static [u8]) -> crate::sabr::Segment {
        crate::sabr::Segment {
            track: Track::Video,
            sequence,
            start_ms: sequence * 2000,
            duration_ms: 2000,
            offset: None,
            parts: vec![Bytes::from_static(bytes)],
        }
    }

    #[test]
    fn segments_are_listed_with_their_init_section_and_numbers() {
        let mut feed = Feed { content_type: "video/mp4".into(), ..Feed::default() };
        assert!(feed.segment(3, segment(10, b"x")).is_none(), "nothing before the init section");
        feed.init(3, Bytes::from_static(b"init"));
        let fed = feed.segment(3, segment(10, b"ten")).unwrap();
        assert_eq!(fed.copy.media_sequence, 10);
        assert_eq!(&fed.bytes[..], b"ten");
        assert_eq!(fed.copy.segments[0].map.as_ref().unwrap().0.as_str(), "sabr:/3/init1.mp4");
        assert!(feed.segment(3, segment(10, b"ten")).is_none(), "held already");
        for n in 11..20 {
            feed.segment(3, segment(n, b"n")).unwrap();
        }
        let fed = feed.segment(3, segment(20, b"n")).unwrap();
        assert_eq!((fed.copy.media_sequence, fed.copy.segments.len()), (15, LISTED));
        assert_eq!(fed.copy.segments.last().unwrap().url.as_str(), "sabr:/3/20.mp4");
        assert_eq!(feed.reached_ms, 42_000);
        // The same init section again is no new one.
        assert!(feed.take_init().is_some());
        feed.init(3, Bytes::from_static(b"init"));
        assert!(feed.take_init().is_none());
        feed.init(3, Bytes::from_static(b"init2"));
        assert_eq!(feed.take_init().unwrap().0.as_str(), "sabr:/3/init2.mp4");
    }
}
