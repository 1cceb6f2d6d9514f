//! DASH (ISO/IEC 23009-1, on-demand profile): one static MPD, an
//! AdaptationSet for video and one for audio, each Representation a whole
//! file with `SegmentBase` (`indexRange` = the `sidx` box, `Initialization`
//! = `ftyp`+`moov`); the player reads the `sidx` itself.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{Renditions, TextTrack, Track};

/// The MPD.
pub fn mpd(r: &Renditions) -> String {
    let mut w = Writer::new_with_indent(Vec::with_capacity(4096), b' ', 1);
    let duration = iso_duration(r.duration());
    let mut root = BytesStart::new("MPD");
    root.extend_attributes([
        ("xmlns", "urn:mpeg:dash:schema:mpd:2011"),
        ("profiles", "urn:mpeg:dash:profile:isoff-on-demand:2011"),
        ("type", "static"),
        ("minBufferTime", "PT2S"),
        ("mediaPresentationDuration", duration.as_str()),
    ]);
    let written: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.write_event(Event::Start(root))?;
        let mut period = BytesStart::new("Period");
        period.push_attribute(("duration", duration.as_str()));
        w.write_event(Event::Start(period))?;
        if !r.video.is_empty() {
            adaptation_set(&mut w, &r.video, None)?;
        }
        // One audio set per language, each with its `lang` and a Role: the
        // default is `main`, the others `dub`.
        if let Some(a) = &r.audio {
            adaptation_set(&mut w, std::slice::from_ref(a), Some("main"))?;
        }
        for a in &r.other_audio {
            adaptation_set(&mut w, std::slice::from_ref(a), Some("dub"))?;
        }
        for s in &r.subtitles {
            text_set(&mut w, s)?;
        }
        w.write_event(Event::End(BytesEnd::new("Period")))?;
        w.write_event(Event::End(BytesEnd::new("MPD")))
    })();
    written.expect("writing to a Vec does not fail");
    String::from_utf8(w.into_inner()).expect("quick-xml writes UTF-8 from UTF-8 input")
}

/// A subtitle track: a text AdaptationSet of one WebVTT file, its Role
/// `subtitle` (the uploader's) or `caption` (automatic captions).
fn text_set(w: &mut Writer<Vec<u8>>, s: &TextTrack) -> std::io::Result<()> {
    let mut set = BytesStart::new("AdaptationSet");
    set.extend_attributes([("contentType", "text"), ("mimeType", "text/vtt"), ("lang", s.lang.as_str())]);
    w.write_event(Event::Start(set))?;
    let mut role = BytesStart::new("Role");
    role.extend_attributes([
        ("schemeIdUri", "urn:mpeg:dash:role:2011"),
        ("value", if s.auto { "caption" } else { "subtitle" }),
    ]);
    w.write_event(Event::Empty(role))?;
    let mut label = BytesStart::new("Label");
    label.push_attribute(("id", "0"));
    w.write_event(Event::Start(label))?;
    w.write_event(Event::Text(BytesText::new(&s.name)))?;
    w.write_event(Event::End(BytesEnd::new("Label")))?;
    let mut rep = BytesStart::new("Representation");
    let id = format!("text-{}{}", s.lang, if s.auto { "-auto" } else { "" });
    rep.extend_attributes([("id", id.as_str()), ("bandwidth", "256")]);
    w.write_event(Event::Start(rep))?;
    w.write_event(Event::Start(BytesStart::new("BaseURL")))?;
    w.write_event(Event::Text(BytesText::new(&s.file_uri)))?;
    w.write_event(Event::End(BytesEnd::new("BaseURL")))?;
    w.write_event(Event::End(BytesEnd::new("Representation")))?;
    w.write_event(Event::End(BytesEnd::new("AdaptationSet")))
}

fn adaptation_set(w: &mut Writer<Vec<u8>>, tracks: &[Track], role: Option<&str>) -> std::io::Result<()> {
    let mut set = BytesStart::new("AdaptationSet");
    set.extend_attributes([
        ("contentType", if tracks[0].audio { "audio" } else { "video" }),
        ("mimeType", tracks[0].mime()),
        ("segmentAlignment", "true"),
        ("subsegmentAlignment", "true"),
        ("subsegmentStartsWithSAP", "1"),
    ]);
    if let Some((code, _)) = &tracks[0].language {
        set.push_attribute(("lang", code.as_str()));
    }
    w.write_event(Event::Start(set))?;
    if let (Some(role), Some(_)) = (role, &tracks[0].language) {
        let mut r = BytesStart::new("Role");
        r.extend_attributes([("schemeIdUri", "urn:mpeg:dash:role:2011"), ("value", role)]);
        w.write_event(Event::Empty(r))?;
    }
    for t in tracks {
        let mut rep = BytesStart::new("Representation");
        rep.push_attribute(("id", t.id.as_str()));
        rep.push_attribute(("bandwidth", t.index.average_bitrate().max(1).to_string().as_str()));
        if let Some(c) = &t.codecs {
            rep.push_attribute(("codecs", c.as_str()));
        }
        if let (Some(width), Some(height)) = (t.width, t.height) {
            rep.push_attribute(("width", width.to_string().as_str()));
            rep.push_attribute(("height", height.to_string().as_str()));
        }
        if let Some(fps) = t.fps {
            rep.push_attribute(("frameRate", format_fps(fps).as_str()));
        }
        w.write_event(Event::Start(rep))?;
        w.write_event(Event::Start(BytesStart::new("BaseURL")))?;
        w.write_event(Event::Text(BytesText::new(&t.file_uri)))?;
        w.write_event(Event::End(BytesEnd::new("BaseURL")))?;
        let (first, last) = t.index.sidx;
        let mut base = BytesStart::new("SegmentBase");
        base.push_attribute(("indexRange", format!("{first}-{last}").as_str()));
        base.push_attribute(("indexRangeExact", "true"));
        w.write_event(Event::Start(base))?;
        let mut init = BytesStart::new("Initialization");
        init.push_attribute(("range", format!("0-{}", t.index.init_len().saturating_sub(1)).as_str()));
        w.write_event(Event::Empty(init))?;
        w.write_event(Event::End(BytesEnd::new("SegmentBase")))?;
        w.write_event(Event::End(BytesEnd::new("Representation")))?;
    }
    w.write_event(Event::End(BytesEnd::new("AdaptationSet")))
}

/// `frameRate` is an integer or a fraction: 29.97 is `30000/1001`.
fn format_fps(fps: f64) -> String {
    if (fps - fps.round()).abs() < 0.001 {
        format!("{}", fps.round() as u64)
    } else {
        format!("{}/1001", (fps * 1001.0).round() as u64)
    }
}

/// xs:duration in seconds, to the millisecond.
fn iso_duration(secs: f64) -> String {
    format!("PT{:.3}S", secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_and_durations() {
        assert_eq!(format_fps(30.0), "30");
        assert_eq!(format_fps(29.97), "30000/1001");
        assert_eq!(iso_duration(12.5), "PT12.500S");
    }
}
