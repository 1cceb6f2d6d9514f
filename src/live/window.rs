//! A live stream's window as reelay shows it: the origin's copies merged
//! into one list with reelay's own numbering, which goes on across origin
//! sessions. The same segment keeps its number and its link while it is in
//! the window; numbers never go back; a new session whose numbering differs
//! starts with `EXT-X-DISCONTINUITY`.

use std::collections::VecDeque;
use std::fmt::Write as _;

use url::Url;

use super::playlist::{Copy, Segment};
use crate::hls::rewrite::segment_identity;

/// What a link names: a segment by reelay's number, or a map or key by its
/// place in the window's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Segment(u64),
    Aux(u32),
}

/// Segments kept past the listed window, for players a little behind and
/// fetches in flight.
const KEPT_BEHIND: usize = 4;

/// The fewest segments listed, whatever the origin lists.
const MIN_LISTED: usize = 3;

/// Maps and keys remembered (each stream has one or two).
const AUX_KEPT: usize = 16;

/// A segment in the window.
#[derive(Debug, Clone)]
pub struct Seg {
    /// reelay's media sequence number.
    pub seq: u64,
    pub up: Segment,
    /// A discontinuity before it: the origin's, or a new session's.
    pub discontinuity: bool,
    /// Its link, made once.
    pub link: String,
    /// The map's and the key's table places.
    map: Option<u32>,
    key: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Window {
    segs: VecDeque<Seg>,
    /// The number the next new segment gets.
    next_seq: u64,
    /// Discontinuities that have left the front of `segs`.
    dropped_discontinuities: u64,
    /// How many of the newest segments are listed.
    listed: usize,
    pub target: u64,
    version: Option<u32>,
    independent: bool,
    pub ended: bool,
    /// The session the last copy came from (its playlist URL) and the
    /// difference between reelay's numbers and its.
    session: Option<(String, i64)>,
    /// Maps and keys: identity, URL, table place, link.
    aux: Vec<(String, Url, u32, String)>,
    next_aux: u32,
}

/// What one merge did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// reelay's numbers of the segments new in this copy.
    pub new: Vec<u64>,
    /// Segments that left the window (and their store objects may go).
    pub gone: Vec<u64>,
}

impl Window {
    /// Merges `copy`, fetched in `session`; `link` makes a new part's link
    /// from its name and the last path segment of its URL.
    pub fn merge(&mut self, copy: &Copy, session: &str, link: &dyn Fn(Part, &Url) -> String) -> Merged {
        self.target = copy.target.max(1);
        self.version = copy.version;
        self.independent = copy.independent;
        self.ended = copy.ended;
        self.listed = copy.segments.len().max(MIN_LISTED);
        let known = self.session.as_ref().filter(|(s, _)| s == session).map(|(_, off)| *off);
        let renewed = self.session.is_some() && known.is_none();
        let (mut offset, skip, mark) = match known.or_else(|| self.align(copy)) {
            Some(off) => (off, 0, renewed && self.session.as_ref().is_some_and(|(_, o)| *o != off)),
            // The first copy: the origin's numbers, as they are.
            None if self.segs.is_empty() => {
                self.next_seq = copy.media_sequence;
                (0, 0, false)
            }
            // A new session that lines up with nothing: its newest segment
            // (or those after the last date) follow on, marked.
            None => {
                let last_date = self.segs.back().and_then(|s| s.up.date_ms);
                let after = copy.segments.iter().position(|s| s.date_ms.zip(last_date).is_some_and(|(d, l)| d > l));
                let skip = after.unwrap_or(copy.segments.len().saturating_sub(1));
                (self.next_seq as i64 - (copy.media_sequence + skip as u64) as i64, skip, true)
            }
        };
        let mut merged = Merged::default();
        let mut first = true;
        for (i, s) in copy.segments.iter().enumerate().skip(skip) {
            let mut seq = (copy.media_sequence + i as u64) as i64 + offset;
            if seq < self.next_seq as i64 {
                continue;
            }
            if seq > self.next_seq as i64 {
                // The origin's window moved past segments never seen: the
                // numbers stay consecutive.
                offset -= seq - self.next_seq as i64;
                seq = self.next_seq as i64;
            }
            let seq = seq as u64;
            let map = s.map.as_ref().map(|(u, _)| self.aux_id(u, link));
            let key = s.key.as_ref().map(|k| self.aux_id(&k.url, link));
            self.segs.push_back(Seg {
                seq,
                up: s.clone(),
                discontinuity: s.discontinuity || (mark && first),
                link: link(Part::Segment(seq), &s.url),
                map,
                key,
            });
            first = false;
            self.next_seq = seq + 1;
            merged.new.push(seq);
        }
        self.session = Some((session.to_owned(), offset));
        while self.segs.len() > self.listed + KEPT_BEHIND {
            let s = self.segs.pop_front().expect("not empty");
            self.dropped_discontinuities += u64::from(s.discontinuity);
            merged.gone.push(s.seq);
        }
        merged
    }

    /// Where a new session's copy meets the window: a segment it lists that
    /// the window has, by what its URL names or by its date.
    fn align(&self, copy: &Copy) -> Option<i64> {
        copy.segments.iter().enumerate().rev().find_map(|(i, s)| {
            let id = segment_identity(&s.url);
            let have = self.segs.iter().rev().find(|w| {
                segment_identity(&w.up.url) == id
                    || w.up.date_ms.zip(s.date_ms).is_some_and(|(a, b)| (a - b).abs() < 50)
            })?;
            Some(have.seq as i64 - (copy.media_sequence + i as u64) as i64)
        })
    }

    fn aux_id(&mut self, u: &Url, link: &dyn Fn(Part, &Url) -> String) -> u32 {
        let id = segment_identity(u);
        if let Some((_, url, n, _)) = self.aux.iter_mut().find(|(i, ..)| *i == id) {
            *url = u.clone();
            return *n;
        }
        let n = self.next_aux;
        self.next_aux += 1;
        self.aux.push((id, u.clone(), n, link(Part::Aux(n), u)));
        if self.aux.len() > AUX_KEPT {
            self.aux.remove(0);
        }
        n
    }

    /// The origin URL behind a part, while the window has it.
    pub fn url_of(&self, part: Part) -> Option<Url> {
        match part {
            Part::Segment(seq) => {
                let first = self.segs.front()?.seq;
                let s = self.segs.get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
                Some(s.up.url.clone())
            }
            Part::Aux(n) => self.aux.iter().find(|(_, _, m, _)| *m == n).map(|(_, u, ..)| u.clone()),
        }
    }

    /// Every part the window can serve now, with its origin URL.
    pub fn parts(&self) -> Vec<(Part, Url)> {
        let segs = self.segs.iter().map(|s| (Part::Segment(s.seq), s.up.url.clone()));
        segs.chain(self.aux.iter().map(|(_, u, n, _)| (Part::Aux(*n), u.clone()))).collect()
    }

    fn aux_link(&self, n: u32) -> &str {
        self.aux.iter().find(|(_, _, m, _)| *m == n).map_or("", |(.., l)| l.as_str())
    }

    /// The newest segment, when there is one.
    pub fn last(&self) -> Option<&Seg> {
        self.segs.back()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// The playlist players get.
    pub fn render(&self) -> String {
        let from = self.segs.len().saturating_sub(self.listed);
        let listed = self.segs.range(from..);
        let discontinuities =
            self.dropped_discontinuities + self.segs.range(..from).filter(|s| s.discontinuity).count() as u64;
        let mut out = String::with_capacity(256 + self.listed * 200);
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version.unwrap_or(3).max(3));
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.segs.get(from).map_or(self.next_seq, |s| s.seq));
        if discontinuities > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}");
        }
        if self.independent {
            out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        let (mut map, mut key) = (None, None);
        for (i, s) in listed.enumerate() {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if (i == 0 || s.up.dated || s.discontinuity)
                && let Some(ms) = s.up.date_ms.and_then(chrono::DateTime::from_timestamp_millis)
            {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", ms.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
            }
            if s.key != key {
                match (&s.up.key, s.key) {
                    (Some(k), Some(n)) => {
                        let _ = writeln!(out, "#EXT-X-KEY:{},URI=\"{}\"", k.attributes, self.aux_link(n));
                    }
                    _ => out.push_str("#EXT-X-KEY:METHOD=NONE\n"),
                }
                key = s.key;
            }
            if s.map != map {
                if let (Some((_, range)), Some(n)) = (&s.up.map, s.map) {
                    let range = range.as_ref().map(|r| format!(",BYTERANGE=\"{r}\"")).unwrap_or_default();
                    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"{range}", self.aux_link(n));
                }
                map = s.map;
            }
            for tag in &s.up.tags {
                out.push_str(tag);
                out.push('\n');
            }
            if let Some(r) = &s.up.byte_range {
                let _ = writeln!(out, "#EXT-X-BYTERANGE:{r}");
            }
            let _ = writeln!(out, "#EXTINF:{:.3},{}", s.up.duration, s.up.title);
            out.push_str(&s.link);
            out.push('\n');
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::playlist::parse;
    use super::*;

    /// The origin's playlist of segments `first..first+n` of wall-clock
    /// segment numbers, numbered from `seq0` in the session.
    fn copy(first: u64, n: u64, seq0: u64, session: &str) -> Copy {
        let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq0}\n");
        for k in first..first + n {
            let date = chrono::DateTime::from_timestamp(1_800_000_000 + 2 * k as i64, 0).unwrap();
            t += &format!("#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:2.0,\n/{session}/s{k}.ts?sig=x\n", date.to_rfc3339());
        }
        parse(&t, &Url::parse("https://o.example/p.m3u8").unwrap()).unwrap()
    }

    fn link(p: Part, _u: &Url) -> String {
        format!("/l/{p:?}")
    }

    fn listed(w: &Window) -> Vec<String> {
        w.render().lines().filter(|l| l.starts_with("/l/")).map(str::to_owned).collect()
    }

    #[test]
    fn sliding_window_keeps_numbers_and_links() {
        let mut w = Window::default();
        let m = w.merge(&copy(10, 5, 500, "a"), "a", &link);
        assert_eq!(m.new, vec![500, 501, 502, 503, 504]);
        let before = listed(&w);
        let m = w.merge(&copy(11, 5, 501, "a"), "a", &link);
        assert_eq!(m.new, vec![505]);
        let after = listed(&w);
        assert_eq!(before[1..], after[..4], "the same segment keeps its link");
        assert!(w.render().contains("#EXT-X-MEDIA-SEQUENCE:501\n"));
        // The origin goes back a copy (a stale edge): nothing changes.
        assert_eq!(w.merge(&copy(10, 5, 500, "a"), "a", &link).new, Vec::<u64>::new());
        assert!(w.render().contains("#EXT-X-MEDIA-SEQUENCE:501\n"), "never backwards");
        // Far behind, the origin skipped ahead: the numbers stay consecutive.
        let m = w.merge(&copy(30, 5, 520, "a"), "a", &link);
        assert_eq!(m.new, vec![506, 507, 508, 509, 510]);
        assert_eq!(m.gone, (500..502).collect::<Vec<_>>());
        assert_eq!(w.url_of(Part::Segment(510)).unwrap().path(), "/a/s34.ts");
        assert_eq!(w.url_of(Part::Segment(501)), None);
    }

    #[test]
    fn a_new_session_carries_on() {
        let mut w = Window::default();
        w.merge(&copy(10, 5, 500, "a"), "a", &link);
        // Renumbered from 1, other URLs, same dates: lined up by date, marked.
        let m = w.merge(&copy(12, 5, 1, "b"), "b", &link);
        assert_eq!(m.new, vec![505, 506]);
        let text = w.render();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"), "{text}");
        assert_eq!(w.merge(&copy(13, 5, 2, "b"), "b", &link).new, vec![507]);
        // Same numbering in the new session: no mark.
        let mut w = Window::default();
        w.merge(&copy(10, 5, 500, "a"), "a", &link);
        w.merge(&copy(11, 5, 501, "c"), "c", &link);
        assert!(!w.render().contains("DISCONTINUITY"));
        // Nothing lines up (no dates, other names): the newest follows on.
        let mut w = Window::default();
        w.merge(&copy(10, 5, 500, "a"), "a", &link);
        let mut other = copy(40, 5, 9, "d");
        other.segments.iter_mut().for_each(|s| s.date_ms = None);
        assert_eq!(w.merge(&other, "d", &link).new, vec![505]);
        // The discontinuity leaves the window and is counted.
        for k in 0..12 {
            w.merge(&copy(50 + k, 5, 100 + k, "e"), "e", &link);
        }
        assert!(w.render().contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"), "{}", w.render());
    }
}
