//! The name a stream is saved under (`filename=`, `download=1`), in
//! cobalt's four styles, safe on every OS, and the `Content-Disposition`
//! that carries it (RFC 6266: an ASCII `filename` for old clients and the
//! UTF-8 `filename*` for the rest).

use std::fmt::Write;
use std::str::FromStr;

/// `filename=`: how the name is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// `youtube_dQw4w9WgXcQ_1920x1080_h264.mp4`: platform, id and technical tags.
    Classic,
    /// `Title - Uploader (1080p, h264).mp4`.
    #[default]
    Basic,
    /// Basic with the platform: `Title - Uploader (1080p, h264, youtube).mp4`.
    Pretty,
    /// Pretty with the id: `Title - Uploader (1080p, h264, youtube, dQw4w9WgXcQ).mp4`.
    Nerdy,
}

/// What `filename=` accepts, for the 400 that lists them.
pub const STYLE_VALUES: &str = "classic, basic (the default), pretty, nerdy";

impl FromStr for Style {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "classic" => Style::Classic,
            "" | "basic" => Style::Basic,
            "pretty" => Style::Pretty,
            "nerdy" => Style::Nerdy,
            _ => return Err(format!("unknown filename style; use one of {STYLE_VALUES}")),
        })
    }
}

/// What a name is made of.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// The platform (`youtube`).
    pub service: String,
    pub id: String,
    pub title: String,
    pub author: Option<String>,
    /// `1920x1080`, for the classic style.
    pub resolution: Option<String>,
    /// `1080p`.
    pub quality: Option<String>,
    /// `h264`, `vp9`, `av1`.
    pub codec: Option<String>,
    /// The audio language when it is not the original (`de`).
    pub dub: Option<String>,
    pub mute: bool,
    pub audio_only: bool,
    /// Without the dot.
    pub extension: String,
}

/// The longest name, in bytes before the extension (file systems allow 255).
const MAX_STEM: usize = 200;

impl Style {
    /// The name `filename=` takes for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Classic => "classic",
            Style::Basic => "basic",
            Style::Pretty => "pretty",
            Style::Nerdy => "nerdy",
        }
    }

    /// The file name for `p`.
    pub fn name(self, p: &Parts) -> String {
        let mut title = clean(&p.title);
        if title.is_empty() {
            title = p.id.clone();
        }
        if let Some(author) = p.author.as_deref().map(clean).filter(|a| !a.is_empty()) {
            title = format!("{title} - {author}");
        }
        let mut tags: Vec<String> = Vec::new();
        let mut classic = vec![p.service.clone(), clean(&p.id)];
        if !p.audio_only {
            classic.extend(p.resolution.clone());
            tags.extend(p.quality.clone());
            classic.extend(p.codec.clone());
            tags.extend(p.codec.clone());
        }
        if p.mute {
            classic.push("mute".into());
            tags.push("mute".into());
        } else if let Some(dub) = &p.dub {
            classic.push(dub.clone());
            tags.push(dub.clone());
        }
        if p.audio_only {
            // Audio is named by what it is, not how it was coded.
            tags.clear();
        }
        let stem = match self {
            Style::Classic if p.audio_only => format!("{}_audio", classic.join("_")),
            Style::Classic => classic.join("_"),
            Style::Basic => with_tags(&title, &tags),
            Style::Pretty => with_tags(&title, &[tags, vec![p.service.clone()]].concat()),
            Style::Nerdy => with_tags(&title, &[tags, vec![p.service.clone(), clean(&p.id)]].concat()),
        };
        format!("{}.{}", shorten(stem.trim_end_matches(['.', ' ']), MAX_STEM), p.extension)
    }
}

fn with_tags(title: &str, tags: &[String]) -> String {
    if tags.is_empty() { title.to_owned() } else { format!("{title} ({})", tags.join(", ")) }
}

/// A name part safe on every OS: control characters out, and the
/// characters Windows forbids in names (`<>:"/\|?*`) as their fullwidth
/// forms, which read the same.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '<' => '＜',
            '>' => '＞',
            ':' => '：',
            '"' => '＂',
            '/' => '／',
            '\\' => '＼',
            '|' => '｜',
            '?' => '？',
            '*' => '＊',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `s` cut to at most `max` bytes at a character boundary.
fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_end()
}

/// `Content-Disposition` for `name`: `attachment` (save it) or `inline`
/// (play it, saving under this name).
pub fn content_disposition(name: &str, attachment: bool) -> String {
    let kind = if attachment { "attachment" } else { "inline" };
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        // RFC 8187's attr-char is kept; everything else percent-encoded.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Parts {
        Parts {
            service: "youtube".into(),
            id: "dQw4w9WgXcQ".into(),
            title: "Rick: \"Never\" <Gonna>/Give?".into(),
            author: Some("Rick Astley".into()),
            resolution: Some("1920x1080".into()),
            quality: Some("1080p".into()),
            codec: Some("h264".into()),
            extension: "mp4".into(),
            ..Parts::default()
        }
    }

    #[test]
    fn the_four_styles() {
        let p = parts();
        assert_eq!(Style::Classic.name(&p), "youtube_dQw4w9WgXcQ_1920x1080_h264.mp4");
        assert_eq!(Style::Basic.name(&p), "Rick： ＂Never＂ ＜Gonna＞／Give？ - Rick Astley (1080p, h264).mp4");
        assert_eq!(
            Style::Pretty.name(&p),
            "Rick： ＂Never＂ ＜Gonna＞／Give？ - Rick Astley (1080p, h264, youtube).mp4"
        );
        assert_eq!(
            Style::Nerdy.name(&p),
            "Rick： ＂Never＂ ＜Gonna＞／Give？ - Rick Astley (1080p, h264, youtube, dQw4w9WgXcQ).mp4"
        );
        let audio = Parts { audio_only: true, extension: "mp3".into(), ..parts() };
        assert_eq!(Style::Classic.name(&audio), "youtube_dQw4w9WgXcQ_audio.mp3");
        assert_eq!(Style::Basic.name(&audio), "Rick： ＂Never＂ ＜Gonna＞／Give？ - Rick Astley.mp3");
        let mute = Parts { mute: true, ..parts() };
        assert_eq!(Style::Classic.name(&mute), "youtube_dQw4w9WgXcQ_1920x1080_h264_mute.mp4");
    }

    #[test]
    fn names_stay_short_and_disposition_is_ascii_with_utf8_beside() {
        let long = Parts { title: "é".repeat(300), ..parts() };
        let name = Style::Basic.name(&long);
        assert!(name.len() <= MAX_STEM + 4 && name.ends_with(".mp4"), "{name}");
        let cd = content_disposition("Über \"x\".mp3", true);
        assert_eq!(cd, "attachment; filename=\"_ber _x_.mp3\"; filename*=UTF-8''%C3%9Cber%20%22x%22.mp3");
        assert!(cd.is_ascii());
        let ctrl = Parts { title: "a\r\nb".into(), author: None, ..parts() };
        assert_eq!(Style::Basic.name(&ctrl), "ab (1080p, h264).mp4");
    }
}
