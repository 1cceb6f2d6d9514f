//! yt-dlp's info JSON, normalised into [`VideoInfo`]. The extractor's JSON is
//! loose (most keys may be missing or null), so every field is read leniently
//! here, once, and the rest of the service works with plain typed values.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sabr::SabrMode;

/// Headers yt-dlp says a format's URL must be fetched with (User-Agent,
/// Referer, cookies...). Kept per format because extractors may differ.
pub use crate::upstream::Headers;

/// One video, as cached: the metadata clients see plus, per format, what the
/// proxy needs to fetch it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoInfo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
    pub platform: String,
    pub uploader: Option<String>,
    pub view_count: Option<u64>,
    pub like_count: Option<u64>,
    pub upload_date: Option<String>,
    pub webpage_url: Option<String>,
    pub is_live: bool,
    /// yt-dlp's `live_status`: `is_live`, `is_upcoming`, `was_live`,
    /// `post_live` or `not_live`, when it says.
    #[serde(default)]
    pub live_status: Option<String>,
    /// When an upcoming live begins (Unix time).
    #[serde(default)]
    pub release_timestamp: Option<i64>,
    pub formats: Vec<Format>,
    /// yt-dlp's `chapters`, in order.
    #[serde(default)]
    pub chapters: Vec<Chapter>,
    /// Subtitle tracks: the uploader's, then the platform's automatic
    /// captions (not their machine translations).
    #[serde(default)]
    pub subtitles: Vec<Subtitles>,
    /// Unix time at which the first of the formats' URLs stops working, when
    /// any URL says so; the cache never keeps the entry past it.
    pub expires_at: Option<i64>,
    /// The way the extraction left (proxy, source address): the formats'
    /// URLs may only work fetched the same way.
    #[serde(default, skip_serializing_if = "crate::egress::Route::is_direct")]
    pub route: crate::egress::Route,
}

/// One subtitle track and the files it comes in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subtitles {
    /// As yt-dlp gives it (`en`, `pt-BR`).
    pub lang: String,
    pub name: Option<String>,
    /// The platform's automatic captions rather than the uploader's.
    pub auto: bool,
    /// In the formats reelay can serve as WebVTT (vtt, json3, srv3).
    pub files: Vec<SubtitleFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubtitleFile {
    pub ext: String,
    pub url: String,
    /// yt-dlp's `impersonate`: the platform serves it to browsers only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub impersonate: bool,
}

/// The subtitle formats reelay serves (as WebVTT), best first.
pub const SUBTITLE_EXTS: [&str; 3] = ["vtt", "json3", "srv3"];

/// A chapter of a video, as yt-dlp lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Chapter {
    /// Seconds from the start.
    pub start_time: f64,
    pub end_time: f64,
    pub title: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Format {
    pub format_id: String,
    pub url: String,
    pub ext: String,
    pub protocol: String,
    pub height: Option<u32>,
    pub width: Option<u32>,
    pub fps: Option<f64>,
    pub vcodec: Option<String>,
    pub acodec: Option<String>,
    pub tbr: Option<f64>,
    pub filesize: Option<u64>,
    pub format_note: Option<String>,
    /// The audio's language (ISO 639, as yt-dlp gives it: `en`, `es-419`).
    #[serde(default)]
    pub language: Option<String>,
    /// yt-dlp's `language_preference`: 10 for a video's original audio, -1
    /// for dubs (YouTube's AI-dubbed tracks among them).
    #[serde(default)]
    pub language_preference: Option<i64>,
    pub has_video: bool,
    pub has_audio: bool,
    pub http_headers: Headers,
    /// `downloader_options.http_chunk_size`: the most to ask of the origin
    /// in one request (YouTube throttles longer responses).
    #[serde(default)]
    pub chunk_size: Option<u64>,
    /// A SABR format's session parameters (yt-dlp's `_sabr_config`); its
    /// `url` is the streaming URL, which takes no GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sabr: Option<super::sabr::SabrFormat>,
}

const AUDIO_EXTS: [&str; 8] = ["m4a", "mp3", "opus", "ogg", "oga", "aac", "flac", "wav"];

impl Format {
    /// An HLS playlist rather than a single file.
    pub fn is_hls(&self) -> bool {
        self.protocol.starts_with("m3u8") || self.ext == "m3u8"
    }

    /// A format that comes only through YouTube's SABR protocol (yt-dlp's
    /// `"protocol": "sabr"`): its URL answers a POST of the protocol's
    /// requests, not a GET: the relay runs a session for it, and nothing
    /// hands its URL to a client.
    pub fn is_sabr(&self) -> bool {
        self.protocol == "sabr"
    }

    /// A DASH manifest or other format the proxy cannot fetch as one file.
    pub fn is_manifest(&self) -> bool {
        self.protocol.contains("dash") || self.ext == "mpd" || self.protocol == "f4m" || self.protocol == "ism"
    }

    /// `"720p"`, `"audio only"`, or yt-dlp's note.
    pub fn quality_label(&self) -> String {
        match (self.has_video, self.height) {
            (true, Some(h)) => format!("{h}p"),
            (false, _) if self.has_audio => "audio only".to_owned(),
            _ => self.format_note.clone().unwrap_or_else(|| "unknown".to_owned()),
        }
    }

    pub fn resolution(&self) -> Option<String> {
        match (self.width, self.height) {
            (Some(w), Some(h)) => Some(format!("{w}x{h}")),
            (None, Some(h)) => Some(format!("{h}p")),
            _ if !self.has_video && self.has_audio => Some("audio only".to_owned()),
            _ => None,
        }
    }

    pub fn codec(&self) -> Option<String> {
        let known = |c: &Option<String>| c.clone().filter(|c| c != "none");
        match (known(&self.vcodec), known(&self.acodec)) {
            (Some(v), Some(a)) => Some(format!("{v}, {a}")),
            (v, a) => v.or(a),
        }
    }
}

/// Why an info JSON could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the extractor printed no JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the link is a playlist, not a video; ask /api/v2/playlists for its entries")]
    Playlist,
    #[error("the link is a single video, not a playlist; ask /api/v2/videos for it")]
    NotAPlaylist,
    #[error("the extractor found no playable formats")]
    NoFormats,
    #[error(
        "YouTube offers this video only through its own streaming protocol (SABR), and the yt-dlp in use lists no \
         SABR format this server can play (it needs yt-dlp's SABR support)"
    )]
    SabrOnly,
    #[error(
        "YouTube offers this video only through its own streaming protocol (SABR), which this server is set not to \
         use (YOUTUBE_SABR=off)"
    )]
    SabrOff,
}

/// Keeps the SABR formats a session can be run for (their config read,
/// their length known, one track each) as `mode` says: with `Auto` only
/// when no format has a plain URL, with `Prefer` in place of the plain
/// format of the same itag, with `Off` never.
fn choose_sabr(formats: &mut Vec<Format>, mode: SabrMode) {
    let playable = |f: &Format| f.sabr.is_some() && !(f.has_video && f.has_audio);
    let plain = formats.iter().any(|f| !f.is_sabr());
    let itag = |f: &Format| f.format_id.split(['-', '.']).next().unwrap_or_default().to_owned();
    let twins: std::collections::HashSet<String> =
        formats.iter().filter(|f| f.is_sabr() && playable(f)).map(itag).collect();
    formats.retain(|f| match (f.is_sabr(), mode) {
        (true, SabrMode::Off) => false,
        (true, SabrMode::Auto) => !plain && playable(f),
        (true, SabrMode::Prefer) => playable(f),
        (false, SabrMode::Prefer) => !twins.contains(&itag(f)),
        (false, _) => true,
    });
}

pub(super) fn str_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64().filter(|f| f.is_finite())
}

fn u64_of(v: &Value, key: &str) -> Option<u64> {
    let x = v.get(key)?;
    x.as_u64().or_else(|| x.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
}

fn headers_of(v: &Value) -> Headers {
    v.get("http_headers")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// The Unix time in a URL's `expire=` query parameter or `/expire/N/` path
/// segment (googlevideo uses both).
pub fn url_expiry(url: &str) -> Option<i64> {
    let parsed = url::Url::parse(url).ok()?;
    if let Some((_, v)) = parsed.query_pairs().find(|(k, _)| k == "expire" || k == "expires") {
        return v.parse().ok();
    }
    let mut segs = parsed.path_segments()?;
    while let Some(s) = segs.next() {
        if s == "expire" {
            return segs.next()?.parse().ok();
        }
    }
    None
}

fn parse_format(v: &Value, fallback_headers: &Headers, live: bool) -> Option<Format> {
    let url = str_of(v, "url").filter(|u| u.starts_with("http://") || u.starts_with("https://"))?;
    let ext = str_of(v, "ext").unwrap_or_else(|| "unknown".to_owned());
    let vcodec = str_of(v, "vcodec");
    let acodec = str_of(v, "acodec");
    let protocol =
        str_of(v, "protocol").unwrap_or_else(|| if url.starts_with("https") { "https" } else { "http" }.to_owned());
    // Missing codecs mean "unknown", which yt-dlp treats as present; an audio
    // container with no video codec named is audio only.
    let has_video = vcodec.as_deref() != Some("none") && !(vcodec.is_none() && AUDIO_EXTS.contains(&ext.as_str()));
    let has_audio = acodec.as_deref() != Some("none");
    let mut http_headers = headers_of(v);
    if http_headers.is_empty() {
        http_headers = fallback_headers.clone();
    }
    Some(Format {
        format_id: str_of(v, "format_id").unwrap_or_else(|| "0".to_owned()),
        protocol,
        height: u64_of(v, "height").and_then(|h| u32::try_from(h).ok()),
        width: u64_of(v, "width").and_then(|w| u32::try_from(w).ok()),
        fps: f64_of(v, "fps"),
        tbr: f64_of(v, "tbr"),
        filesize: u64_of(v, "filesize").or_else(|| u64_of(v, "filesize_approx")),
        format_note: str_of(v, "format_note"),
        language: str_of(v, "language").filter(|l| !l.is_empty() && l != "none"),
        language_preference: v.get("language_preference").and_then(Value::as_i64),
        url,
        ext,
        vcodec,
        acodec,
        has_video,
        has_audio,
        http_headers,
        chunk_size: v.get("downloader_options").and_then(|d| u64_of(d, "http_chunk_size")).filter(|n| *n > 0),
        // A session serves the file by its length: yt-dlp's exact one (a
        // live stream has none: its session feeds the live window).
        sabr: super::sabr::SabrFormat::parse(v).filter(|_| live || u64_of(v, "filesize").is_some()),
    })
}

impl VideoInfo {
    /// Normalises `yt-dlp -J` output. `platform` is the name the request used
    /// (`generic` for other sites, where yt-dlp's extractor name is kept).
    pub fn from_ytdlp_json(raw: &[u8], platform: &str) -> Result<Self, ParseError> {
        Self::from_ytdlp_value(serde_json::from_slice(raw)?, platform, SabrMode::Auto)
    }

    /// The same, from JSON already parsed (the worker's answers).
    /// `sabr` chooses between a format's plain URL and its SABR twin.
    pub fn from_ytdlp_value(v: Value, platform: &str, sabr: SabrMode) -> Result<Self, ParseError> {
        if v.get("_type").and_then(Value::as_str) == Some("playlist") {
            return Err(ParseError::Playlist);
        }
        let top_headers = headers_of(&v);
        let live = v.get("is_live").and_then(Value::as_bool).unwrap_or(false);
        let mut formats: Vec<Format> = match v.get("formats").and_then(Value::as_array) {
            Some(list) => list.iter().filter_map(|f| parse_format(f, &top_headers, live)).collect(),
            None => Vec::new(),
        };
        if formats.is_empty() {
            // Single-format results carry the URL at the top level.
            formats.extend(parse_format(&v, &top_headers, live));
        }
        let listed_sabr = formats.iter().any(Format::is_sabr);
        formats.retain(|f| !f.is_manifest() && !f.format_id.starts_with("sb"));
        choose_sabr(&mut formats, sabr);
        if formats.is_empty() {
            return Err(match (listed_sabr, sabr) {
                (true, SabrMode::Off) => ParseError::SabrOff,
                (true, _) => ParseError::SabrOnly,
                (false, _) => ParseError::NoFormats,
            });
        }
        let expires_at = formats.iter().filter_map(|f| url_expiry(&f.url)).min();
        let platform = if platform == "generic" {
            str_of(&v, "extractor_key").map(|e| e.to_ascii_lowercase()).unwrap_or_else(|| platform.to_owned())
        } else {
            platform.to_owned()
        };
        Ok(VideoInfo {
            id: str_of(&v, "id").unwrap_or_default(),
            title: str_of(&v, "title").unwrap_or_default(),
            description: str_of(&v, "description").unwrap_or_default(),
            duration: f64_of(&v, "duration"),
            thumbnail: str_of(&v, "thumbnail"),
            platform,
            uploader: str_of(&v, "uploader").or_else(|| str_of(&v, "channel")),
            view_count: u64_of(&v, "view_count"),
            like_count: u64_of(&v, "like_count"),
            upload_date: str_of(&v, "upload_date"),
            webpage_url: str_of(&v, "webpage_url"),
            is_live: live,
            live_status: str_of(&v, "live_status"),
            release_timestamp: v.get("release_timestamp").and_then(Value::as_i64),
            formats,
            chapters: chapters_of(&v),
            subtitles: subtitles_of(&v),
            expires_at,
            route: Default::default(),
        })
    }

    /// The JSON clients see (see [`ApiVideo`]), serialised once per
    /// extraction and cached as bytes.
    pub fn to_api_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ApiVideo::from(self)).expect("plain structs always serialise")
    }
}

/// yt-dlp's `subtitles` and `automatic_captions` (`{lang: [{ext, url,
/// name}]}`): the files reelay can convert; automatic translations (`tlang=`
/// in the URL) and the live chat are left out.
fn subtitles_of(v: &Value) -> Vec<Subtitles> {
    let mut out = Vec::new();
    for (key, auto) in [("subtitles", false), ("automatic_captions", true)] {
        let Some(map) = v.get(key).and_then(Value::as_object) else { continue };
        let mut langs: Vec<&String> = map.keys().collect();
        langs.sort();
        for lang in langs {
            let Some(list) = map[lang].as_array() else { continue };
            if lang == "live_chat" || lang.len() > 35 {
                continue;
            }
            let files: Vec<SubtitleFile> = list
                .iter()
                .filter_map(|f| {
                    let impersonate = match f.get("impersonate") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(s)) => !s.is_empty(),
                        _ => false,
                    };
                    Some(SubtitleFile { ext: str_of(f, "ext")?, url: str_of(f, "url")?, impersonate })
                })
                .filter(|f| SUBTITLE_EXTS.contains(&f.ext.as_str()) && f.url.starts_with("http"))
                .filter(|f| !(auto && f.url.contains("tlang=")))
                .collect();
            if files.is_empty() {
                continue;
            }
            let name = list.iter().find_map(|f| str_of(f, "name"));
            out.push(Subtitles { lang: lang.clone(), name, auto, files });
        }
    }
    out
}

/// yt-dlp's `chapters`: those with a start, an end after it and a title.
fn chapters_of(v: &Value) -> Vec<Chapter> {
    let Some(list) = v.get("chapters").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|c| {
            let (start_time, end_time) = (f64_of(c, "start_time")?, f64_of(c, "end_time")?);
            (end_time > start_time).then(|| Chapter {
                start_time,
                end_time,
                title: str_of(c, "title").unwrap_or_default(),
            })
        })
        .collect()
}

/// A format as clients see it: the reference's keys first, then the added
/// ones. Never the upstream headers (they may hold cookies).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiFormat {
    pub format_id: String,
    /// The stream URL itself (expires; see the video's expiry).
    pub url: String,
    pub ext: String,
    /// `720p`, `audio only`, or the extractor's note.
    pub quality: String,
    /// `1280x720`, `720p` or `audio only`.
    pub resolution: Option<String>,
    pub filesize: Option<u64>,
    /// Total bitrate in kbit/s.
    pub bitrate: Option<f64>,
    /// `vcodec, acodec`, or the one there is.
    pub codec: Option<String>,
    pub height: Option<u32>,
    pub width: Option<u32>,
    pub fps: Option<f64>,
    pub vcodec: Option<String>,
    pub acodec: Option<String>,
    /// `https`, `m3u8_native`...
    pub protocol: String,
    pub tbr: Option<f64>,
    pub has_audio: bool,
    pub has_video: bool,
    /// The audio's language, when the platform says.
    pub language: Option<String>,
}

/// A video as clients see it (`data` of `GET /api/v2/videos/...`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiVideo {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Seconds.
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
    pub platform: String,
    pub uploader: Option<String>,
    pub view_count: Option<u64>,
    pub like_count: Option<u64>,
    /// `YYYYMMDD`.
    pub upload_date: Option<String>,
    pub webpage_url: Option<String>,
    pub is_live: bool,
    /// `is_live`, `is_upcoming`, `was_live`, `post_live` or `not_live`.
    pub live_status: Option<String>,
    /// When an upcoming live begins (Unix time).
    pub release_timestamp: Option<i64>,
    pub formats: Vec<ApiFormat>,
    /// The audio languages, the original first (`lang=` on the stream
    /// and manifest routes takes a `code` or `original`).
    pub audio_languages: Vec<super::AudioLanguage>,
    /// yt-dlp's chapters.
    pub chapters: Vec<Chapter>,
    /// Subtitle tracks, each served as WebVTT by `url` (reelay's own route).
    pub subtitles: Vec<ApiSubtitles>,
}

/// A subtitle track as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiSubtitles {
    pub lang: String,
    pub name: Option<String>,
    /// The platform's automatic captions.
    pub auto: bool,
    /// `/api/v2/subtitles/...`: WebVTT through the server.
    pub url: String,
}

impl VideoInfo {
    /// Where a subtitle track of this video is served: by platform and id,
    /// else by the video's link.
    fn subtitle_url(&self, s: &Subtitles) -> String {
        let auto = if s.auto { "&auto=true" } else { "" };
        let lang: String = url::form_urlencoded::byte_serialize(s.lang.as_bytes()).collect();
        match crate::platform::VideoRef::from_path(&self.platform, &self.id) {
            Ok(video) if !matches!(video, crate::platform::VideoRef::Generic { .. }) => {
                format!("/api/v2/subtitles/{}?lang={lang}{auto}", video.route_key())
            }
            _ => {
                let link = self.webpage_url.as_deref().unwrap_or_default();
                let link: String = url::form_urlencoded::byte_serialize(link.as_bytes()).collect();
                format!("/api/v2/subtitles?url={link}&lang={lang}{auto}")
            }
        }
    }
}

impl From<&Format> for ApiFormat {
    fn from(f: &Format) -> Self {
        ApiFormat {
            format_id: f.format_id.clone(),
            url: f.url.clone(),
            ext: f.ext.clone(),
            quality: f.quality_label(),
            resolution: f.resolution(),
            filesize: f.filesize,
            bitrate: f.tbr,
            codec: f.codec(),
            height: f.height,
            width: f.width,
            fps: f.fps,
            vcodec: f.vcodec.clone(),
            acodec: f.acodec.clone(),
            protocol: f.protocol.clone(),
            tbr: f.tbr,
            has_audio: f.has_audio,
            has_video: f.has_video,
            language: f.language.clone(),
        }
    }
}

impl From<&VideoInfo> for ApiVideo {
    fn from(v: &VideoInfo) -> Self {
        ApiVideo {
            id: v.id.clone(),
            title: v.title.clone(),
            description: v.description.clone(),
            duration: v.duration,
            thumbnail: v.thumbnail.clone(),
            platform: v.platform.clone(),
            uploader: v.uploader.clone(),
            view_count: v.view_count,
            like_count: v.like_count,
            upload_date: v.upload_date.clone(),
            webpage_url: v.webpage_url.clone(),
            is_live: v.is_live,
            live_status: v.live_status.clone(),
            release_timestamp: v.release_timestamp,
            formats: v.formats.iter().map(ApiFormat::from).collect(),
            audio_languages: v.audio_languages(),
            chapters: v.chapters.clone(),
            subtitles: v
                .subtitles
                .iter()
                .map(|s| ApiSubtitles {
                    lang: s.lang.clone(),
                    name: s.name.clone(),
                    auto: s.auto,
                    url: v.subtitle_url(s),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_youtube_like_json() {
        let raw = br#"{"id":"abc","title":"T","duration":12.5,"view_count":7,
            "http_headers":{"User-Agent":"UA"},
            "formats":[
              {"format_id":"sb0","url":"https://i.ytimg.com/sb","ext":"mhtml","vcodec":"none","acodec":"none"},
              {"format_id":"140","url":"https://r.googlevideo.com/a?expire=2000000000","ext":"m4a","vcodec":"none","acodec":"mp4a.40.2","tbr":129.5,"downloader_options":{"http_chunk_size":10485760}},
              {"format_id":"18","url":"https://r.googlevideo.com/b?expire=1900000000","ext":"mp4","height":360,"width":640,"vcodec":"avc1.42001E","acodec":"mp4a.40.2","http_headers":{"Referer":"R"}}
            ]}"#;
        let info = VideoInfo::from_ytdlp_json(raw, "youtube").unwrap();
        assert_eq!(info.formats.len(), 2);
        assert_eq!(info.expires_at, Some(1_900_000_000));
        let audio = &info.formats[0];
        assert!(audio.has_audio && !audio.has_video);
        assert_eq!(audio.http_headers["User-Agent"], "UA");
        assert_eq!(audio.chunk_size, Some(10 << 20));
        assert_eq!(info.formats[1].chunk_size, None);
        assert_eq!(info.formats[1].http_headers["Referer"], "R");
        let api: Value = serde_json::from_slice(&info.to_api_json()).unwrap();
        assert_eq!(api["formats"][1]["resolution"], "640x360");
        assert_eq!(api["formats"][1]["quality"], "360p");
        assert!(api["formats"][1].get("http_headers").is_none());
    }

    #[test]
    fn single_url_results_and_bad_json() {
        let info = VideoInfo::from_ytdlp_json(br#"{"id":"x","url":"http://h/v.mp4","ext":"mp4"}"#, "generic").unwrap();
        assert_eq!(info.formats.len(), 1);
        assert!(info.formats[0].has_video && info.formats[0].has_audio);
        assert!(VideoInfo::from_ytdlp_json(b"nope", "generic").is_err());
        assert!(VideoInfo::from_ytdlp_json(br#"{"_type":"playlist","entries":[]}"#, "generic").is_err());
        assert!(VideoInfo::from_ytdlp_json(br#"{"id":"x","formats":[]}"#, "generic").is_err());
    }

    #[test]
    fn expiry_in_path() {
        assert_eq!(url_expiry("https://m.googlevideo.com/api/manifest/hls/expire/1234/id/x"), Some(1234));
        assert_eq!(url_expiry("https://h/v.mp4"), None);
    }
}
