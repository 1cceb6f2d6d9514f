//! cobalt's API as a second front door: its request body checked the way
//! cobalt checks it (every field, unknown ones refused), translated into
//! reelay's own stream request, and its answers (`tunnel`, `redirect`,
//! `local-processing`, `error`) in cobalt's shapes and codes; `plays` decides
//! which answer a looked-up video gets and serves its tunnels. No HTTP
//! here: `http::cobalt` carries the requests and answers.

pub mod plays;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(test)]
use crate::output::AudioFormat;
use crate::output::filename::Style;
use crate::output::{Bitrate, Output, parse_container};
use crate::select::{AudioLang, Quality};
use crate::service::stream::Clip;

/// The version reelay answers as, in cobalt's instance info: the cobalt API
/// release whose request schema and answers this module follows.
pub const API_VERSION: &str = "11.0";

/// cobalt's `POST /` body, as its schema (`api/src/processing/schema.js`)
/// defines it: every key optional but `url`, closed enums, unknown keys
/// refused.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CobaltRequest {
    pub url: Option<String>,
    #[serde(default = "d_bitrate")]
    pub audio_bitrate: String,
    #[serde(default = "d_audio_format")]
    pub audio_format: String,
    #[serde(default = "d_auto")]
    pub download_mode: String,
    #[serde(default = "d_basic")]
    pub filename_style: String,
    #[serde(default = "d_h264")]
    pub youtube_video_codec: String,
    #[serde(default = "d_auto")]
    pub youtube_video_container: String,
    #[serde(default = "d_quality")]
    pub video_quality: String,
    /// `disabled / preferred / forced`; older clients send a boolean.
    #[serde(default)]
    pub local_processing: Option<Value>,
    pub youtube_dub_lang: Option<String>,
    pub subtitle_lang: Option<String>,
    #[serde(default)]
    pub disable_metadata: bool,
    #[serde(default)]
    pub allow_h265: bool,
    #[serde(default = "d_true")]
    pub convert_gif: bool,
    #[serde(default)]
    pub tiktok_full_audio: bool,
    #[serde(default)]
    pub always_proxy: bool,
    #[serde(default)]
    pub youtube_hls: bool,
    #[serde(default)]
    pub youtube_better_audio: bool,
    /// reelay's own: a clip's start, in seconds (cobalt has no clips).
    pub start: Option<f64>,
    /// reelay's own: a clip's end, in seconds.
    pub end: Option<f64>,
}

fn d_bitrate() -> String {
    "128".into()
}
fn d_audio_format() -> String {
    "mp3".into()
}
fn d_auto() -> String {
    "auto".into()
}
fn d_basic() -> String {
    "basic".into()
}
fn d_h264() -> String {
    "h264".into()
}
fn d_quality() -> String {
    "1080".into()
}
fn d_true() -> bool {
    true
}

/// What cobalt's `downloadMode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadMode {
    Auto,
    Audio,
    Mute,
}

/// `localProcessing`: whether the client joins the parts itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalProcessing {
    Disabled,
    /// When the server would run ffmpeg.
    Preferred,
    /// Always.
    Forced,
}

/// A request checked against cobalt's schema, in reelay's terms.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: String,
    pub mode: DownloadMode,
    pub quality: Quality,
    /// As the client would spell it on reelay's own routes.
    pub quality_name: String,
    pub output: Output,
    pub style: Style,
    /// `youtubeVideoCodec`: the preferred video codec family.
    pub codec: &'static str,
    pub dub: Option<AudioLang>,
    pub subtitles: Option<String>,
    pub always_proxy: bool,
    pub local: LocalProcessing,
    /// `convertGif`: a platform's GIF (X's silent MP4) as a real GIF.
    pub convert_gif: bool,
    /// `start`/`end` (reelay's own fields): a part of the film, always a
    /// tunnel, composed by the server.
    pub clip: Option<Clip>,
}

/// Why a body is refused, as cobalt says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// `error.api.link.missing`
    NoUrl,
    /// `error.api.invalid_body`
    Invalid,
}

impl BodyError {
    pub fn code(self) -> Code {
        match self {
            BodyError::NoUrl => Code::LinkMissing,
            BodyError::Invalid => Code::InvalidBody,
        }
    }
}

fn one_of<'a>(value: &str, allowed: &[&'a str]) -> Result<&'a str, BodyError> {
    allowed.iter().copied().find(|a| *a == value).ok_or(BodyError::Invalid)
}

/// A language code as cobalt's schema takes it: 2 to 8 of `[0-9a-zA-Z-]`.
fn lang_code(v: &Option<String>) -> Result<Option<String>, BodyError> {
    match v {
        None => Ok(None),
        Some(s) if (2..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(BodyError::Invalid),
    }
}

impl CobaltRequest {
    /// Parses and checks a body: `Invalid` for JSON that is not cobalt's
    /// request, `NoUrl` when the link is missing or empty.
    pub fn parse(body: &[u8]) -> Result<Checked, BodyError> {
        let raw: Value = serde_json::from_slice(body).map_err(|_| BodyError::Invalid)?;
        if !raw.is_object() {
            return Err(BodyError::Invalid);
        }
        // cobalt checks the link is there before the rest of the schema.
        if raw.get("url").is_none_or(|u| u.is_null() || u.as_str() == Some("")) {
            return Err(BodyError::NoUrl);
        }
        let req: CobaltRequest = serde_json::from_value(raw).map_err(|_| BodyError::Invalid)?;
        req.check()
    }

    fn check(self) -> Result<Checked, BodyError> {
        let url = self.url.clone().filter(|u| !u.is_empty()).ok_or(BodyError::NoUrl)?;
        let bitrate = one_of(&self.audio_bitrate, &["320", "256", "128", "96", "64", "8"])?;
        let audio_format = one_of(&self.audio_format, &["best", "mp3", "ogg", "wav", "opus"])?;
        let mode = match one_of(&self.download_mode, &["auto", "audio", "mute"])? {
            "audio" => DownloadMode::Audio,
            "mute" => DownloadMode::Mute,
            _ => DownloadMode::Auto,
        };
        let style: Style = one_of(&self.filename_style, &["classic", "pretty", "basic", "nerdy"])?
            .parse()
            .map_err(|_| BodyError::Invalid)?;
        let codec = one_of(&self.youtube_video_codec, &["h264", "av1", "vp9"])?;
        let container = parse_container(one_of(&self.youtube_video_container, &["auto", "mp4", "webm", "mkv"])?)
            .map_err(|_| BodyError::Invalid)?;
        let q =
            one_of(&self.video_quality, &["max", "4320", "2160", "1440", "1080", "720", "480", "360", "240", "144"])?;
        let (quality, quality_name) = match q {
            "max" => (Quality::Best, "best".to_owned()),
            h => (Quality::Max(h.parse().map_err(|_| BodyError::Invalid)?), format!("{h}p")),
        };
        let local = match &self.local_processing {
            None => LocalProcessing::Disabled,
            Some(Value::Bool(true)) => LocalProcessing::Preferred,
            Some(Value::Bool(false)) => LocalProcessing::Disabled,
            Some(Value::String(s)) => match one_of(s, &["disabled", "preferred", "forced"])? {
                "preferred" => LocalProcessing::Preferred,
                "forced" => LocalProcessing::Forced,
                _ => LocalProcessing::Disabled,
            },
            Some(_) => return Err(BodyError::Invalid),
        };
        let dub = lang_code(&self.youtube_dub_lang)?
            .map(|l| l.parse::<AudioLang>().map_err(|_| BodyError::Invalid))
            .transpose()?;
        let subtitles = lang_code(&self.subtitle_lang)?;
        let (quality, quality_name) =
            if mode == DownloadMode::Audio { (Quality::Audio, "audio".to_owned()) } else { (quality, quality_name) };
        let mut output = match mode {
            DownloadMode::Audio => Output {
                audio_format: Some(audio_format.parse().map_err(|_| BodyError::Invalid)?),
                // cobalt keeps `best` as the platform serves it, whatever the bitrate says.
                bitrate: (audio_format != "best")
                    .then(|| bitrate.parse::<Bitrate>().map_err(|_| BodyError::Invalid))
                    .transpose()?,
                mute: false,
                no_tags: self.disable_metadata,
                container: None,
                gif: false,
            },
            DownloadMode::Mute => Output { mute: true, no_tags: self.disable_metadata, ..Output::default() },
            DownloadMode::Auto => Output { no_tags: self.disable_metadata, ..Output::default() },
        };
        output.container = container;
        let clip = crate::service::stream::clip(self.start, self.end).map_err(|_| BodyError::Invalid)?;
        Ok(Checked {
            url,
            mode,
            quality,
            quality_name,
            output,
            style,
            codec,
            dub,
            subtitles,
            always_proxy: self.always_proxy,
            local,
            convert_gif: self.convert_gif,
            clip,
        })
    }
}

/// cobalt's error codes that reelay answers (`error.api.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    HeaderAccept,
    HeaderContentType,
    InvalidBody,
    LinkMissing,
    LinkInvalid,
    LinkUnsupported,
    AuthKeyMissing,
    AuthKeyNotFound,
    RateExceeded,
    FetchFail,
    FetchEmpty,
    FetchRate,
    ContentUnavailable,
    ContentLive,
    ContentPrivate,
    ContentAge,
    ContentRegion,
    YoutubeLogin,
    NoMatchingFormat,
    Generic,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::HeaderAccept => "error.api.header.accept",
            Code::HeaderContentType => "error.api.header.content_type",
            Code::InvalidBody => "error.api.invalid_body",
            Code::LinkMissing => "error.api.link.missing",
            Code::LinkInvalid => "error.api.link.invalid",
            Code::LinkUnsupported => "error.api.link.unsupported",
            Code::AuthKeyMissing => "error.api.auth.key.missing",
            Code::AuthKeyNotFound => "error.api.auth.key.not_found",
            Code::RateExceeded => "error.api.rate_exceeded",
            Code::FetchFail => "error.api.fetch.fail",
            Code::FetchEmpty => "error.api.fetch.empty",
            Code::FetchRate => "error.api.fetch.rate",
            Code::ContentUnavailable => "error.api.content.video.unavailable",
            Code::ContentLive => "error.api.content.video.live",
            Code::ContentPrivate => "error.api.content.video.private",
            Code::ContentAge => "error.api.content.video.age",
            Code::ContentRegion => "error.api.content.video.region",
            Code::YoutubeLogin => "error.api.youtube.login",
            Code::NoMatchingFormat => "error.api.youtube.no_matching_format",
            Code::Generic => "error.api.generic",
        }
    }
}

/// `error.context`: the service, or a limit (seconds of a rate window).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// An answer in cobalt's shapes.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Answer {
    Tunnel {
        url: String,
        filename: String,
    },
    Redirect {
        url: String,
        filename: String,
    },
    #[serde(rename_all = "camelCase")]
    LocalProcessing {
        /// `merge`, `mute`, `audio`, `remux` or `proxy`.
        #[serde(rename = "type")]
        kind: &'static str,
        service: String,
        tunnel: Vec<String>,
        output: LocalOutput,
        #[serde(skip_serializing_if = "Option::is_none")]
        audio: Option<LocalAudio>,
    },
    /// A post with several items: one tunnel each.
    Picker {
        picker: Vec<PickerItem>,
    },
    Error {
        error: ErrorBody,
    },
}

/// One item of a picker.
#[derive(Debug, Serialize)]
pub struct PickerItem {
    /// `video` (reelay's items are videos; `photo` and `gif` are cobalt's too).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumb: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LocalOutput {
    /// The file's MIME type.
    #[serde(rename = "type")]
    pub kind: String,
    pub filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitles: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct LocalAudio {
    pub copy: bool,
    pub format: String,
    pub bitrate: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
}

impl Answer {
    pub fn error(code: Code, context: Option<Context>) -> Answer {
        Answer::Error { error: ErrorBody { code: code.as_str(), context } }
    }
}

/// cobalt's `GET /`: what the instance is.
#[derive(Debug, Serialize)]
pub struct InstanceInfo {
    pub cobalt: Instance,
    pub git: Git,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub version: &'static str,
    pub url: String,
    /// Unix milliseconds, as a string (cobalt's spelling).
    pub start_time: String,
    pub services: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Git {
    pub commit: &'static str,
    pub branch: &'static str,
    pub remote: &'static str,
}

/// A cobalt tunnel (`/cobalt/tunnel/{token}`): the stream request a
/// `POST /cobalt/` answered, signed, so the client fetches it without a key
/// and nothing else can be asked through it. It names the video and the
/// request, never an origin URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelGrant {
    /// The video's cache key.
    pub v: String,
    /// Unix time after which the link is refused.
    pub e: i64,
    /// The quality, as reelay's routes spell it.
    pub q: String,
    /// The file name style.
    pub s: String,
    /// The audio language (`youtubeDubLang`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<String>,
    /// The audio format (`mp3`…), for audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// The audio bitrate, kbps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<u32>,
    /// Muted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub m: bool,
    /// No title or artist in produced files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub t: bool,
    /// The video codec preferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
    /// The merge's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// One format's own bytes (a part for `local-processing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<String>,
    /// A subtitle track, by language, as WebVTT (`local-processing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// A subtitle language written into the file (`subtitleLang`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<String>,
    /// The video as an animated GIF (`convertGif` on a platform's GIF).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub g: bool,
    /// A clip: its start and end (none: the film's end), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<(f64, Option<f64>)>,
}

impl crate::hls::signing::Expiring for TunnelGrant {
    fn expires(&self) -> i64 {
        self.e
    }
}

/// The MIME type of a file name's extension, for `local-processing`.
pub fn mime_of(filename: &str) -> &'static str {
    match filename.rsplit('.').next().unwrap_or("") {
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "m4a" => "audio/mp4",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_cobalts() {
        let c = CobaltRequest::parse(br#"{"url":"https://youtu.be/dQw4w9WgXcQ"}"#).unwrap();
        assert_eq!(
            (c.mode, c.quality, c.style, c.codec),
            (DownloadMode::Auto, Quality::Max(1080), Style::Basic, "h264")
        );
        assert!(!c.output.transforms() && !c.always_proxy && c.local == LocalProcessing::Disabled);
        let a = CobaltRequest::parse(br#"{"url":"x","downloadMode":"audio"}"#).unwrap();
        assert_eq!(a.output.audio_format, Some(AudioFormat::Mp3));
        assert_eq!(a.output.bitrate.map(Bitrate::kbps), Some(128));
        let best = CobaltRequest::parse(br#"{"url":"x","downloadMode":"audio","audioFormat":"best"}"#).unwrap();
        assert_eq!(best.output.bitrate, None);
    }

    #[test]
    fn the_schema_is_strict() {
        for body in [
            &br#"{"url":"x","videoQuality":"1081"}"#[..],
            br#"{"url":"x","unknownKey":1}"#,
            br#"{"url":"x","alwaysProxy":"yes"}"#,
            br#"{"url":"x","youtubeDubLang":"d"}"#,
            br#"{"url":"x","audioFormat":"flac"}"#,
            br#"[1]"#,
            b"not json",
        ] {
            assert_eq!(
                CobaltRequest::parse(body).unwrap_err(),
                BodyError::Invalid,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(CobaltRequest::parse(br#"{"audioFormat":"mp3"}"#).unwrap_err(), BodyError::NoUrl);
        assert_eq!(CobaltRequest::parse(br#"{"url":""}"#).unwrap_err(), BodyError::NoUrl);
        let legacy = CobaltRequest::parse(br#"{"url":"x","localProcessing":true}"#).unwrap();
        assert_eq!(legacy.local, LocalProcessing::Preferred);
    }

    #[test]
    fn answers_have_cobalts_shape() {
        let t = serde_json::to_value(Answer::Tunnel { url: "u".into(), filename: "f.mp4".into() }).unwrap();
        assert_eq!(t, serde_json::json!({"status": "tunnel", "url": "u", "filename": "f.mp4"}));
        let e =
            serde_json::to_value(Answer::error(Code::RateExceeded, Some(Context { limit: Some(60), service: None })))
                .unwrap();
        assert_eq!(
            e,
            serde_json::json!({"status": "error", "error": {"code": "error.api.rate_exceeded", "context": {"limit": 60}}})
        );
    }
}
