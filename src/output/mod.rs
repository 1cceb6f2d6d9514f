//! What a stream is made into on its way out, parsed at the edge: audio in
//! another format at a bitrate (`format=`, `bitrate=`), a video without its
//! audio (`audio=none`), the title and artist written into it or not
//! (`metadata=`), and the name it is saved under ([`filename`]).
//!
//! Deciding here, from the source format alone, whether ffmpeg has work to
//! do: the source's own bytes are served whenever they already are what was
//! asked for (they keep `Range`, `HEAD` and the shared fetch); only a codec
//! change, a bitrate asked for, or a container change runs ffmpeg.

pub mod filename;

use std::fmt;
use std::str::FromStr;

use crate::extract::Format;
use crate::relay::merge::{AudioCodec, Container};

/// `format=` with `quality=audio`: the audio container and codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// The best audio as the platform serves it, bytes untouched.
    Best,
    M4a,
    Mp3,
    /// Ogg Vorbis.
    Ogg,
    /// Opus in Ogg.
    Opus,
    Wav,
}

/// What `format=` accepts, for the 400 that lists them.
pub const AUDIO_FORMAT_VALUES: &str = "best, m4a, mp3, ogg, opus, wav";

impl FromStr for AudioFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" | "best" => AudioFormat::Best,
            "m4a" | "aac" => AudioFormat::M4a,
            "mp3" => AudioFormat::Mp3,
            "ogg" | "vorbis" => AudioFormat::Ogg,
            "opus" => AudioFormat::Opus,
            "wav" => AudioFormat::Wav,
            _ => return Err(format!("unknown audio format; use one of {AUDIO_FORMAT_VALUES}")),
        })
    }
}

impl AudioFormat {
    /// The name `format=` takes for it.
    pub fn as_str(self) -> &'static str {
        match self {
            AudioFormat::Best => "best",
            AudioFormat::M4a => "m4a",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Opus => "opus",
            AudioFormat::Wav => "wav",
        }
    }
}

/// `bitrate=`: kilobits per second of an encoded audio output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bitrate(u32);

impl Bitrate {
    /// What an encode uses when no bitrate is asked for (cobalt's default too).
    pub const DEFAULT: Bitrate = Bitrate(128);

    pub fn kbps(self) -> u32 {
        self.0
    }
}

impl FromStr for Bitrate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().trim_end_matches(['k', 'K']);
        match n.parse::<u32>() {
            Ok(k) if (8..=320).contains(&k) => Ok(Bitrate(k)),
            _ => Err("bitrate is kilobits per second, 8 to 320 (e.g. 128)".into()),
        }
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a stream leaves the server, beyond which formats it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Output {
    /// With `quality=audio`: the format asked for (`None`: as served).
    pub audio_format: Option<AudioFormat>,
    pub bitrate: Option<Bitrate>,
    /// `audio=none`: the video alone.
    pub mute: bool,
    /// `metadata=false`: write no title or artist into produced files.
    pub no_tags: bool,
    /// `container=`: what a merge is written as (MP4 by default).
    pub container: Option<Container>,
    /// The video as an animated GIF (cobalt's `convertGif`, for the GIFs
    /// X serves as MP4: see [`is_platform_gif`]).
    pub gif: bool,
}

/// Whether a format is what a platform shows as a GIF but serves as a
/// silent MP4: X's, under `video.twimg.com/tweet_video/` (yt-dlp lists
/// them as a lone `http` format, without a bitrate or a duration).
pub fn is_platform_gif(f: &Format) -> bool {
    f.has_video && !f.is_manifest() && url::Url::parse(&f.url).is_ok_and(|u| u.path().contains("/tweet_video/"))
}

/// What `container=` accepts.
pub const CONTAINER_VALUES: &str = "mp4 (the default), mkv, webm";

/// `container=`, parsed.
pub fn parse_container(s: &str) -> Result<Option<Container>, String> {
    match s.to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "mp4" => Ok(Some(Container::Mp4)),
        "mkv" | "matroska" => Ok(Some(Container::Matroska)),
        "webm" => Ok(Some(Container::Webm)),
        _ => Err(format!("unknown container; use one of {CONTAINER_VALUES}")),
    }
}

/// The container a merge of `video` and `audio` is written as, asked
/// `wanted`: WebM only holds VP8, VP9 or AV1 with Opus or Vorbis, so other
/// codecs asked into WebM go to Matroska, which holds them all.
pub fn merge_container(wanted: Option<Container>, video: &Format, audio: &Format) -> Container {
    let v = video.vcodec.as_deref().unwrap_or("").to_ascii_lowercase();
    let a = audio.acodec.as_deref().unwrap_or("").to_ascii_lowercase();
    let webm_ok = ["vp8", "vp9", "vp09", "av01"].iter().any(|c| v.starts_with(c)) && (a == "opus" || a == "vorbis");
    match wanted.unwrap_or_default() {
        Container::Webm if !webm_ok => Container::Matroska,
        c => c,
    }
}

/// `codec=`: the video codec family preferred (`h264`, `vp9`, `av1`, `h265`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp9,
    Av1,
    H265,
}

/// What `codec=` accepts.
pub const CODEC_VALUES: &str = "h264, vp9, av1, h265";

impl FromStr for VideoCodec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "h264" | "avc" | "avc1" => VideoCodec::H264,
            "vp9" | "vp09" => VideoCodec::Vp9,
            "av1" | "av01" => VideoCodec::Av1,
            "h265" | "hevc" => VideoCodec::H265,
            _ => return Err(format!("unknown codec; use one of {CODEC_VALUES}")),
        })
    }
}

impl VideoCodec {
    /// The family of a yt-dlp `vcodec` (`avc1.64001f` is H.264).
    pub fn of(vcodec: &str) -> Option<VideoCodec> {
        let c = vcodec.to_ascii_lowercase();
        let head = c.split('.').next().unwrap_or("");
        Some(match head {
            "avc1" | "avc3" | "h264" => VideoCodec::H264,
            "vp9" | "vp09" => VideoCodec::Vp9,
            "av01" | "av1" => VideoCodec::Av1,
            "hev1" | "hvc1" | "h265" | "hevc" => VideoCodec::H265,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::Av1 => "av1",
            VideoCodec::H265 => "h265",
        }
    }

    /// Whether `f` is a video of this family.
    pub fn matches(self, f: &Format) -> bool {
        f.vcodec.as_deref().and_then(VideoCodec::of) == Some(self)
    }
}

/// What an audio request becomes, given its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPlan {
    /// The source's bytes already are what was asked for.
    Source,
    /// ffmpeg makes it (copying the coded audio where `codec` says so).
    Produce(AudioCodec),
}

impl Output {
    /// Whether anything but the source's bytes is asked for.
    pub fn transforms(&self) -> bool {
        self.mute || self.gif || self.audio_format.is_some_and(|f| f != AudioFormat::Best) || self.bitrate.is_some()
    }

    /// What audio from `source` becomes: the source's own bytes when its
    /// codec and container are what was asked and no bitrate was named,
    /// else an encode (or, for Opus and AAC already so coded, a remux).
    pub fn audio_plan(&self, source: &Format) -> AudioPlan {
        let codec = source.acodec.as_deref().unwrap_or("").to_ascii_lowercase();
        let (aac, opus, mp3) = (codec.starts_with("mp4a"), codec == "opus", codec == "mp3");
        let ext = source.ext.as_str();
        let asked = self.bitrate.map(Bitrate::kbps);
        let kbps = asked.unwrap_or(Bitrate::DEFAULT.kbps());
        match self.audio_format.unwrap_or(AudioFormat::Best) {
            AudioFormat::Best if asked.is_none() => AudioPlan::Source,
            // A bitrate with `best`: the source's codec family at that rate.
            AudioFormat::Best if opus => AudioPlan::Produce(AudioCodec::Opus { kbps: Some(kbps) }),
            AudioFormat::Best => AudioPlan::Produce(AudioCodec::Aac { kbps: Some(kbps) }),
            AudioFormat::M4a if aac && asked.is_none() && matches!(ext, "m4a" | "mp4") => AudioPlan::Source,
            AudioFormat::M4a if aac && asked.is_none() => AudioPlan::Produce(AudioCodec::Aac { kbps: None }),
            AudioFormat::M4a => AudioPlan::Produce(AudioCodec::Aac { kbps: Some(kbps) }),
            AudioFormat::Opus if opus && asked.is_none() && matches!(ext, "opus" | "ogg") => AudioPlan::Source,
            AudioFormat::Opus if opus && asked.is_none() => AudioPlan::Produce(AudioCodec::Opus { kbps: None }),
            AudioFormat::Opus => AudioPlan::Produce(AudioCodec::Opus { kbps: Some(kbps) }),
            AudioFormat::Mp3 if mp3 && asked.is_none() && ext == "mp3" => AudioPlan::Source,
            AudioFormat::Mp3 => AudioPlan::Produce(AudioCodec::Mp3 { kbps }),
            AudioFormat::Ogg => AudioPlan::Produce(AudioCodec::Vorbis { kbps }),
            AudioFormat::Wav => AudioPlan::Produce(AudioCodec::Wav),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(acodec: &str, ext: &str) -> Format {
        Format {
            format_id: "a".into(),
            ext: ext.into(),
            acodec: Some(acodec.into()),
            vcodec: Some("none".into()),
            has_audio: true,
            ..Format::default()
        }
    }

    fn out(format: &str, bitrate: Option<&str>) -> Output {
        Output {
            audio_format: Some(format.parse().unwrap()),
            bitrate: bitrate.map(|b| b.parse().unwrap()),
            ..Output::default()
        }
    }

    #[test]
    fn bytes_are_copied_when_they_already_are_what_was_asked() {
        let m4a = audio("mp4a.40.2", "m4a");
        let webm = audio("opus", "webm");
        assert_eq!(out("best", None).audio_plan(&webm), AudioPlan::Source);
        assert_eq!(out("m4a", None).audio_plan(&m4a), AudioPlan::Source);
        assert_eq!(out("opus", None).audio_plan(&webm), AudioPlan::Produce(AudioCodec::Opus { kbps: None }));
        assert_eq!(out("m4a", None).audio_plan(&webm), AudioPlan::Produce(AudioCodec::Aac { kbps: Some(128) }));
        assert_eq!(out("mp3", Some("320")).audio_plan(&m4a), AudioPlan::Produce(AudioCodec::Mp3 { kbps: 320 }));
        assert_eq!(out("m4a", Some("64")).audio_plan(&m4a), AudioPlan::Produce(AudioCodec::Aac { kbps: Some(64) }));
        assert_eq!(out("wav", None).audio_plan(&m4a), AudioPlan::Produce(AudioCodec::Wav));
        assert!(!out("best", None).transforms() && out("best", Some("96")).transforms());
    }

    #[test]
    fn bitrates_are_checked() {
        assert_eq!("128k".parse::<Bitrate>().unwrap().kbps(), 128);
        assert!(
            "0".parse::<Bitrate>().is_err() && "999".parse::<Bitrate>().is_err() && "x".parse::<Bitrate>().is_err()
        );
        assert!("flac".parse::<AudioFormat>().is_err());
    }
}
