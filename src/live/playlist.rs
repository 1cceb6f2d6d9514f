//! A live media playlist as an origin sends it, read line by line into what
//! the shared window needs: its segments with their durations, dates and
//! tags, and the header values. What a client must not see is left out
//! here, once: low-latency tags (reelay serves standard HLS; `LL-HLS` in
//! the README), Twitch's prefetch lines, the origin's header extras, and
//! any attribute whose value is a URL. Ad markers (`DATERANGE`, `CUE-*`)
//! and discontinuities are kept.
//!
//! Written by hand rather than with `m3u8-rs` (used for the manifests
//! reelay builds): that parser keeps one `DATERANGE` per segment and drops
//! what follows the last segment, and a live window must keep every ad
//! marker as it came.

use url::Url;

/// One copy of an origin's media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Copy {
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target: u64,
    /// `EXT-X-MEDIA-SEQUENCE`: the origin's number of the first segment.
    pub media_sequence: u64,
    pub segments: Vec<Segment>,
    /// `EXT-X-ENDLIST`: the stream is over.
    pub ended: bool,
    pub version: Option<u32>,
    pub independent: bool,
    /// Set when the URL was a master playlist: its first variant.
    pub variant: Option<Url>,
}

/// A segment, with what applies to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub url: Url,
    /// Seconds, from `EXTINF`.
    pub duration: f64,
    /// The `EXTINF` title, when it names no URL.
    pub title: String,
    /// `EXT-X-DISCONTINUITY` before it.
    pub discontinuity: bool,
    /// Its start, Unix milliseconds: its `PROGRAM-DATE-TIME`, or the last
    /// one's plus the durations since.
    pub date_ms: Option<i64>,
    /// Whether the origin dated it itself (then the date is repeated).
    pub dated: bool,
    /// The `EXT-X-MAP` in effect: its URI and byte range.
    pub map: Option<(Url, Option<String>)>,
    /// The `EXT-X-KEY` in effect, when it has a URI to fetch.
    pub key: Option<Key>,
    /// `EXT-X-BYTERANGE`.
    pub byte_range: Option<String>,
    /// Other tags before it, cleaned (ad markers, `GAP`, `BITRATE`).
    pub tags: Vec<String>,
}

/// An `EXT-X-KEY` with a URI: the URI and the other attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub url: Url,
    /// Every attribute but the URI, as written (`METHOD=AES-128,IV=0x…`).
    pub attributes: String,
}

/// Tags a client never gets: low-latency HLS (reelay's playlists are
/// standard HLS), Twitch's prefetch lines (origin URLs), and master-level
/// session data.
const DROPPED: [&str; 11] = [
    "EXT-X-PART",
    "EXT-X-PART-INF",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
    "EXT-X-SKIP",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-TWITCH-PREFETCH",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-CONTENT-STEERING",
    "EXT-X-DEFINE",
];

/// Reads `text`, fetched from `base`. `None` when it is no playlist.
pub fn parse(text: &str, base: &Url) -> Option<Copy> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r').trim());
    if !lines.next()?.starts_with("#EXTM3U") {
        return None;
    }
    let mut copy = Copy::default();
    let mut next = Pending::default();
    let mut map: Option<(Url, Option<String>)> = None;
    let mut key: Option<Key> = None;
    let mut date: Option<i64> = None;
    let mut in_body = false;
    let mut variant_next = false;
    for line in lines {
        if line.is_empty() || (line.starts_with('#') && !line.starts_with("#EXT")) {
            continue;
        }
        if !line.starts_with('#') {
            let Some(url) = base.join(line).ok().filter(|u| matches!(u.scheme(), "http" | "https")) else {
                next = Pending::default();
                continue;
            };
            if variant_next {
                copy.variant.get_or_insert(url);
                variant_next = false;
                continue;
            }
            let start = next.date.or(date);
            date = start.map(|d| d + (next.duration * 1000.0).round() as i64);
            copy.segments.push(Segment {
                url,
                duration: next.duration,
                title: next.title,
                discontinuity: next.discontinuity,
                date_ms: start,
                dated: next.date.is_some(),
                map: map.clone(),
                key: key.clone(),
                byte_range: next.byte_range,
                tags: next.tags,
            });
            next = Pending::default();
            in_body = true;
            continue;
        }
        let (name, value) = match line[1..].split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (&line[1..], None),
        };
        match name {
            "EXT-X-TARGETDURATION" => copy.target = value.and_then(|v| v.parse().ok()).unwrap_or(copy.target),
            "EXT-X-MEDIA-SEQUENCE" => copy.media_sequence = value.and_then(|v| v.parse().ok()).unwrap_or(0),
            "EXT-X-VERSION" => copy.version = value.and_then(|v| v.parse().ok()),
            "EXT-X-INDEPENDENT-SEGMENTS" => copy.independent = true,
            "EXT-X-ENDLIST" => copy.ended = true,
            "EXT-X-STREAM-INF" => variant_next = true,
            "EXTINF" => {
                let v = value.unwrap_or("");
                let (d, title) = v.split_once(',').unwrap_or((v, ""));
                next.duration = d.trim().parse().unwrap_or(0.0);
                next.title = if title.contains("://") { String::new() } else { title.to_owned() };
                in_body = true;
            }
            "EXT-X-DISCONTINUITY" => next.discontinuity = true,
            "EXT-X-BYTERANGE" => next.byte_range = value.map(str::to_owned),
            "EXT-X-PROGRAM-DATE-TIME" => {
                next.date = value.and_then(date_ms);
                in_body = true;
            }
            "EXT-X-MAP" => {
                let attrs = value.unwrap_or("");
                map = uri_of(attrs).and_then(|u| base.join(&u).ok()).map(|u| (u, attribute(attrs, "BYTERANGE")));
            }
            "EXT-X-KEY" => {
                let attrs = value.unwrap_or("");
                key = uri_of(attrs)
                    .and_then(|u| base.join(&u).ok())
                    .filter(|u| u.scheme().starts_with("http"))
                    .map(|url| Key { url, attributes: without(attrs, |k, _| k == "URI") });
                if key.is_none() && !attrs.contains("METHOD=NONE") && attrs.contains("URI=") {
                    // A key the server cannot fetch (`skd://`): named as it is.
                    next.tags.push(format!("#EXT-X-KEY:{attrs}"));
                }
            }
            n if DROPPED.contains(&n) => {}
            "EXTM3U" | "EXT-X-PLAYLIST-TYPE" | "EXT-X-DISCONTINUITY-SEQUENCE" | "EXT-X-ALLOW-CACHE" | "EXT-X-START" => {
            }
            // The origin's own header lines (Twitch's node and session
            // info among them) say nothing a player needs.
            _ if !in_body && !name.starts_with("EXT-X-DATERANGE") && !name.starts_with("EXT-X-CUE") => {}
            _ => {
                if let Some(tag) = clean_tag(name, value) {
                    next.tags.push(tag);
                }
            }
        }
    }
    Some(copy)
}

/// A `PROGRAM-DATE-TIME` as Unix milliseconds: RFC 3339, or with the
/// offset written `+0000` (as ffmpeg writes it).
fn date_ms(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v)
        .or_else(|_| chrono::DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What the tags seen so far say of the next segment.
#[derive(Default)]
struct Pending {
    duration: f64,
    title: String,
    discontinuity: bool,
    date: Option<i64>,
    byte_range: Option<String>,
    tags: Vec<String>,
}

/// A tag as a client may see it: attributes whose value is a URL removed;
/// `None` when nothing of it is left, or its value is a bare URL.
fn clean_tag(name: &str, value: Option<&str>) -> Option<String> {
    let Some(value) = value else { return Some(format!("#{name}")) };
    if !value.contains("://") {
        return Some(format!("#{name}:{value}"));
    }
    if !value.contains('=') {
        return None;
    }
    let kept = without(value, |_, v| v.contains("://"));
    (!kept.is_empty()).then(|| format!("#{name}:{kept}"))
}

/// An attribute list's `(name, value)` pairs, split at commas outside quotes.
fn attributes(list: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in list.char_indices().chain(std::iter::once((list.len(), ','))) {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                let item = &list[start..i];
                if let Some((k, v)) = item.split_once('=') {
                    out.push((k.trim(), v.trim()));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// The list without the attributes `drop` picks.
fn without(list: &str, drop: impl Fn(&str, &str) -> bool) -> String {
    let kept: Vec<String> =
        attributes(list).into_iter().filter(|(k, v)| !drop(k, v)).map(|(k, v)| format!("{k}={v}")).collect();
    kept.join(",")
}

/// An attribute's value, unquoted.
fn attribute(list: &str, name: &str) -> Option<String> {
    attributes(list).into_iter().find(|(k, _)| *k == name).map(|(_, v)| v.trim_matches('"').to_owned())
}

fn uri_of(list: &str) -> Option<String> {
    attribute(list, "URI")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Twitch-shaped live playlist: its header extras, an ad marker with
    /// tracking URLs, low-latency parts and prefetch lines.
    const TWITCH: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-TWITCH-ELAPSED-SECS:200.000
#EXT-X-TWITCH-INFO:NODE=\"video-edge\",SERVER-TIME=\"1.0\",USER-IP=\"192.0.2.1\"
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T10:00:00.000Z
#EXTINF:2.000,live
seg100.ts?token=a
#EXT-X-DATERANGE:ID=\"ad1\",CLASS=\"twitch-stitched-ad\",START-DATE=\"2026-12-01T10:00:02.000Z\",DURATION=30,X-TV-TWITCH-AD-URL=\"https://ads.example/x\"
#EXT-X-DATERANGE:ID=\"ad2\",CLASS=\"twitch-ad-quartile\",START-DATE=\"2026-12-01T10:00:02.000Z\"
#EXT-X-DISCONTINUITY
#EXT-X-PART:DURATION=0.5,URI=\"part101.0.ts\"
#EXTINF:2.000,Amazon|123
https://edge.example/v1/seg101.ts
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T10:00:04.000Z
#EXTINF:2.000,https://ads.example/title
seg102.ts
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part103.0.ts\"
#EXT-X-TWITCH-PREFETCH:https://edge.example/v1/seg103.ts
#EXT-X-TWITCH-PREFETCH:https://edge.example/v1/seg104.ts
";

    fn base() -> Url {
        Url::parse("https://edge.example/v1/index.m3u8").unwrap()
    }

    #[test]
    fn twitch_playlist() {
        let c = parse(TWITCH, &base()).unwrap();
        assert_eq!((c.target, c.media_sequence, c.ended, c.segments.len()), (2, 100, false, 3));
        let [a, b, d] = &c.segments[..] else { unreachable!() };
        assert_eq!(a.url.as_str(), "https://edge.example/v1/seg100.ts?token=a");
        assert_eq!((a.date_ms, a.dated), (Some(1_796_119_200_000), true));
        assert_eq!((b.date_ms, b.dated, b.discontinuity), (Some(1_796_119_202_000), false, true));
        assert_eq!(d.date_ms, Some(1_796_119_204_000));
        assert_eq!(b.title, "Amazon|123");
        assert_eq!(d.title, "", "a title naming a URL is dropped");
        assert_eq!(b.tags.len(), 2, "both ad markers kept: {:?}", b.tags);
        assert!(b.tags[0].starts_with("#EXT-X-DATERANGE:ID=\"ad1\",CLASS=\"twitch-stitched-ad\""), "{:?}", b.tags);
        assert!(b.tags.iter().all(|t| !t.contains("://")), "{:?}", b.tags);
        let all = format!("{:?}", c);
        for gone in ["TWITCH-PREFETCH", "EXT-X-PART", "PRELOAD", "SERVER-CONTROL", "USER-IP", "ELAPSED"] {
            assert!(!all.contains(gone), "{gone} left: {all}");
        }
    }

    #[test]
    fn maps_keys_and_masters() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k\",IV=0x01\n#EXTINF:4,\ns1.m4s\n\
            #EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\ns2.m4s\n#EXT-X-ENDLIST\n";
        let c = parse(text, &base()).unwrap();
        assert!(c.ended);
        assert_eq!(c.segments[0].map.as_ref().unwrap().0.as_str(), "https://edge.example/v1/init.mp4");
        assert_eq!(c.segments[1].map, c.segments[0].map, "a map applies until the next");
        let key = c.segments[0].key.as_ref().unwrap();
        assert_eq!((key.url.as_str(), key.attributes.as_str()), ("https://keys.example/k", "METHOD=AES-128,IV=0x01"));
        assert_eq!(c.segments[1].key, None);
        assert_eq!(c.segments[0].date_ms, None);

        assert_eq!(date_ms("2026-12-01T12:42:34.838+0000"), Some(1_796_128_954_838));
        assert_eq!(date_ms("2026-12-01T13:42:34.838+01:00"), Some(1_796_128_954_838));
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nhi.m3u8\n";
        let c = parse(master, &base()).unwrap();
        assert_eq!(c.variant.unwrap().as_str(), "https://edge.example/v1/low/index.m3u8");
        assert!(c.segments.is_empty());
        assert_eq!(parse("<html>", &base()), None);
    }
}
