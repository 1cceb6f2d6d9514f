//! Subtitles in the formats platforms serve, as WebVTT: YouTube's `json3`
//! (events of timed segments) and `srv3` (timed-text XML); WebVTT itself
//! passes through.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One cue: start and end in milliseconds, and its text.
struct Cue {
    start: u64,
    end: u64,
    text: String,
}

/// `text` in format `ext` as WebVTT; `None` when it is not that format.
pub fn to_webvtt(ext: &str, text: &str) -> Option<String> {
    match ext {
        "vtt" => text.trim_start_matches('\u{feff}').starts_with("WEBVTT").then(|| text.to_owned()),
        "json3" => json3(text).map(|cues| write(&cues)),
        "srv3" => srv3(text).map(|cues| write(&cues)),
        _ => None,
    }
}

fn json3(text: &str) -> Option<Vec<Cue>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let events = v.get("events")?.as_array()?;
    let cues = events
        .iter()
        .filter_map(|e| {
            let start = e.get("tStartMs")?.as_u64()?;
            let duration = e.get("dDurationMs").and_then(|d| d.as_u64()).unwrap_or(0);
            let text: String =
                e.get("segs")?.as_array()?.iter().filter_map(|s| s.get("utf8")?.as_str()).collect::<String>();
            let text = text.trim().to_owned();
            (!text.is_empty() && duration > 0).then_some(Cue { start, end: start + duration, text })
        })
        .collect();
    Some(cues)
}

fn srv3(text: &str) -> Option<Vec<Cue>> {
    let mut reader = Reader::from_str(text);
    let mut cues = Vec::new();
    let mut open: Option<(u64, u64, String)> = None;
    let mut seen_root = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.name().0 == "timedtext" => seen_root = true,
            Event::Start(e) if e.name().0 == "p" => {
                let attr = |name: &str| {
                    e.attributes().flatten().find(|a| a.key.0 == name).and_then(|a| a.value.parse::<u64>().ok())
                };
                open = Some((attr("t").unwrap_or(0), attr("d").unwrap_or(0), String::new()));
            }
            Event::Text(t) => {
                if let Some((_, _, text)) = &mut open {
                    text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, _, text)) = &mut open {
                    match &*r {
                        "amp" => text.push('&'),
                        "lt" => text.push('<'),
                        "gt" => text.push('>'),
                        "quot" => text.push('"'),
                        "apos" => text.push('\''),
                        _ => text.extend(r.resolve_char_ref().ok().flatten()),
                    }
                }
            }
            Event::Empty(e) if e.name().0 == "br" => {
                if let Some((_, _, text)) = &mut open {
                    text.push('\n');
                }
            }
            Event::End(e) if e.name().0 == "p" => {
                if let Some((start, duration, text)) = open.take() {
                    let text = text.trim().to_owned();
                    if !text.is_empty() && duration > 0 {
                        cues.push(Cue { start, end: start + duration, text });
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    seen_root.then_some(cues)
}

/// `HH:MM:SS.mmm`.
fn stamp(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn write(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues {
        // A blank line ends a cue in WebVTT, and `-->` starts a timing line.
        let text = c.text.replace("\n\n", "\n").replace("-->", "->");
        out.push_str(&format!("{} --> {}\n{}\n\n", stamp(c.start), stamp(c.end), text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_webvtt;

    #[test]
    fn json3_and_srv3_become_webvtt() {
        let json3 = r#"{"events":[{"tStartMs":0,"dDurationMs":1500,"segs":[{"utf8":"Hello "},{"utf8":"there"}]},
            {"tStartMs":1500,"dDurationMs":10},{"tStartMs":61000,"dDurationMs":2000,"segs":[{"utf8":"a --> b"}]}]}"#;
        assert_eq!(
            to_webvtt("json3", json3).unwrap(),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there\n\n00:01:01.000 --> 00:01:03.000\na -> b\n\n"
        );
        let srv3 = r#"<?xml version="1.0" encoding="utf-8" ?><timedtext format="3"><body>
            <p t="250" d="1000">Tom &amp; <s>Jerry</s>&#39;s</p><p t="3600000" d="500">one<br/>two</p></body></timedtext>"#;
        assert_eq!(
            to_webvtt("srv3", srv3).unwrap(),
            "WEBVTT\n\n00:00:00.250 --> 00:00:01.250\nTom & Jerry's\n\n01:00:00.000 --> 01:00:00.500\none\ntwo\n\n"
        );
        assert!(to_webvtt("vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\nx\n").is_some());
        assert!(to_webvtt("vtt", "<html>not subtitles</html>").is_none());
        assert!(to_webvtt("json3", "nope").is_none());
        assert!(to_webvtt("srv3", "<html/>").is_none());
        assert!(to_webvtt("ttml", "<tt/>").is_none());
    }
}
