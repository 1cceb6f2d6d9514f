//! Platforms, video ids and URL detection: everything a client sends to name a
//! video is parsed here, at the edge, into a [`VideoRef`]. The rest of the
//! service only ever sees checked values, and yt-dlp only ever sees the
//! canonical URL that [`VideoRef::source_url`] builds.
//!
//! Owns: what names a video or a playlist. Imports nothing of the crate but
//! its own `playlist` file.

mod playlist;

pub use playlist::{BiliList, Channel, PlaylistRef, Tab};

use std::fmt;
use std::str::FromStr;

use url::Url;

/// The platforms the reference service knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    YouTube,
    Bilibili,
    /// `twitter` and `x` are the same platform; the path segment the client
    /// used is not kept, so both share one cache entry.
    Twitter,
    Instagram,
    Twitch,
}

impl Platform {
    /// Every platform name accepted in a path, in the order `GET /` lists them.
    pub const NAMES: [&'static str; 6] = ["youtube", "bilibili", "twitter", "x", "instagram", "twitch"];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::YouTube => "youtube",
            Platform::Bilibili => "bilibili",
            Platform::Twitter => "twitter",
            Platform::Instagram => "instagram",
            Platform::Twitch => "twitch",
        }
    }

    /// Checks `id` against this platform's id rules. Besides videos, a
    /// YouTube id may name a channel's live stream (`@handle`, `UC…`,
    /// `c:<name>`) and a Twitch id a channel (its live stream) or a clip
    /// (`clip:<slug>`).
    pub fn parse_id(self, id: &str) -> Result<VideoId, InputError> {
        let digits = |id: &str| (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
        let ok = match self {
            Platform::YouTube => (id.len() == 11 && id.bytes().all(is_id_byte)) || youtube_live(id),
            Platform::Bilibili => is_bilibili_id(id),
            Platform::Twitter => digits(id),
            Platform::Twitch => digits(id) || twitch_channel(id) || id.strip_prefix("clip:").is_some_and(is_clip_slug),
            Platform::Instagram => (5..=40).contains(&id.len()) && id.bytes().all(is_id_byte),
        };
        if ok {
            let id =
                if self == Platform::Twitch && twitch_channel(id) { id.to_ascii_lowercase() } else { id.to_owned() };
            Ok(VideoId(id))
        } else {
            Err(InputError::InvalidId { platform: self, hint: self.id_hint() })
        }
    }

    fn id_hint(self) -> &'static str {
        match self {
            Platform::YouTube => {
                "a YouTube id is 11 characters of A-Z, a-z, 0-9, '_' or '-', or a channel's live stream: @handle, UC… or c:<name>"
            }
            Platform::Bilibili => "a Bilibili id is 'BV' and 10 letters or digits, or 'av' and digits",
            Platform::Twitter => "a Twitter/X id is the status number (digits only)",
            Platform::Instagram => "an Instagram id is the post shortcode (letters, digits, '_' or '-')",
            Platform::Twitch => {
                "a Twitch id is a VOD number (digits), a channel name (4 to 25 letters, digits or '_') or clip:<slug>"
            }
        }
    }

    /// The URL the reference service builds for an id of this platform.
    fn canonical_url(self, id: &VideoId) -> String {
        let id = id.as_str();
        match self {
            Platform::YouTube if id.starts_with('@') => format!("https://www.youtube.com/{id}/live"),
            Platform::YouTube if id.len() == 24 && id.starts_with("UC") => {
                format!("https://www.youtube.com/channel/{id}/live")
            }
            Platform::YouTube if id.starts_with("c:") => format!("https://www.youtube.com/c/{}/live", &id[2..]),
            Platform::YouTube => format!("https://www.youtube.com/watch?v={id}"),
            Platform::Bilibili => format!("https://www.bilibili.com/video/{id}"),
            Platform::Twitter => format!("https://twitter.com/i/status/{id}"),
            Platform::Instagram => format!("https://www.instagram.com/p/{id}"),
            Platform::Twitch if id.starts_with("clip:") => format!("https://clips.twitch.tv/{}", &id[5..]),
            Platform::Twitch if !id.bytes().all(|b| b.is_ascii_digit()) => format!("https://www.twitch.tv/{id}"),
            Platform::Twitch => format!("https://www.twitch.tv/videos/{id}"),
        }
    }
}

impl FromStr for Platform {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "youtube" => Ok(Platform::YouTube),
            "bilibili" => Ok(Platform::Bilibili),
            "twitter" | "x" => Ok(Platform::Twitter),
            "instagram" => Ok(Platform::Instagram),
            "twitch" => Ok(Platform::Twitch),
            _ => Err(InputError::UnsupportedPlatform(truncate(s, 64))),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A YouTube channel's live stream: `@handle`, `UC` + 22, or `c:<name>`.
fn youtube_live(id: &str) -> bool {
    let name = |s: &str, max: usize| {
        (1..=max).contains(&s.chars().count()) && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match id.strip_prefix('@') {
        Some(handle) => handle.chars().count() >= 3 && name(handle, 30),
        None if id.starts_with("c:") => name(&id[2..], 100),
        None => id.len() == 24 && id.starts_with("UC") && id.bytes().all(is_id_byte),
    }
}

/// Twitch's paths that are not channels.
const TWITCH_RESERVED: [&str; 12] = [
    "videos",
    "directory",
    "settings",
    "downloads",
    "jobs",
    "p",
    "search",
    "subscriptions",
    "inventory",
    "wallet",
    "drops",
    "friends",
];

/// A Twitch channel (login): 4 to 25 letters, digits or `_`, not all digits.
fn twitch_channel(id: &str) -> bool {
    (4..=25).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !id.bytes().all(|b| b.is_ascii_digit())
        && !TWITCH_RESERVED.contains(&id.to_ascii_lowercase().as_str())
}

/// A clip's slug: letters, digits, `_` and `-`.
fn is_clip_slug(slug: &str) -> bool {
    (1..=100).contains(&slug.len()) && slug.bytes().all(is_id_byte)
}

fn is_bilibili_id(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() == 12 && (id.starts_with("BV") || id.starts_with("bv")) {
        return b[2..].iter().all(u8::is_ascii_alphanumeric);
    }
    let digits = id.strip_prefix("av").or_else(|| id.strip_prefix("AV"));
    matches!(digits, Some(d) if (1..=20).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A video id that passed its platform's rules. It may start with `-`
/// (YouTube ids do); it is only ever placed inside a URL, never on a command
/// line by itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoId(String);

impl VideoId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request names: a known platform's video, or any other http(s) URL
/// for yt-dlp's generic extractor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VideoRef {
    Known { platform: Platform, id: VideoId },
    Generic { url: Url },
}

/// The longest URL accepted in `?url=`; real video links are far shorter.
const MAX_URL_LEN: usize = 2048;

impl VideoRef {
    pub fn from_path(platform: &str, id: &str) -> Result<Self, InputError> {
        let platform: Platform = platform.parse()?;
        let id = platform.parse_id(id)?;
        Ok(VideoRef::Known { platform, id })
    }

    /// Parses a full video URL: known platforms become `Known` (so that a
    /// link and a platform/id pair share one cache entry), other http(s)
    /// URLs become `Generic`.
    pub fn from_url(raw: &str) -> Result<Self, InputError> {
        let (url, host) = parse_http_url(raw)?;
        match detect(&host, &url)? {
            Some((platform, id)) => Ok(VideoRef::Known { id: platform.parse_id(&id)?, platform }),
            None => Ok(VideoRef::Generic { url }),
        }
    }

    /// A link taken as it is, without finding a platform's id in it: one
    /// item of a post with several (cobalt's picker).
    pub fn item(raw: &str) -> Result<Self, InputError> {
        let (url, _) = parse_http_url(raw)?;
        Ok(VideoRef::Generic { url })
    }

    /// The URL handed to the extractor.
    pub fn source_url(&self) -> String {
        match self {
            VideoRef::Known { platform, id } => platform.canonical_url(id),
            VideoRef::Generic { url } => url.as_str().to_owned(),
        }
    }

    /// The reverse of [`VideoRef::cache_key`], for signed links that carry
    /// the key; `None` for anything that does not parse back.
    pub fn from_cache_key(key: &str) -> Option<Self> {
        let (platform, rest) = key.strip_prefix("video:")?.split_once(':')?;
        match platform {
            // What the key says: a link of its own, even one that names a
            // known platform's post in a way its id cannot (a post's second
            // video, `…/status/1/video/2`).
            "generic" => parse_http_url(rest).ok().map(|(url, _)| VideoRef::Generic { url }),
            _ => VideoRef::from_path(platform, rest).ok(),
        }
    }

    /// This video's path and query on one of the stream endpoints
    /// (`kind` is `proxy` or `direct`), for messages that point elsewhere.
    pub fn stream_path(&self, kind: &str, quality: &str) -> String {
        self.path_under(&format!("/api/v2/stream/{kind}"), "", quality)
    }

    /// This video's manifest (`file` is `master.m3u8` or `manifest.mpd`).
    pub fn manifest_path(&self, file: &str, quality: &str) -> String {
        self.path_under("/api/v2/stream/manifest", &format!("/{file}"), quality)
    }

    /// `{base}/{platform}/{id}{file}?quality=`, or `{base}{file}?url=…&quality=`.
    fn path_under(&self, base: &str, file: &str, quality: &str) -> String {
        match self {
            VideoRef::Known { platform, id } => format!("{base}/{platform}/{}{file}?quality={quality}", id.as_str()),
            VideoRef::Generic { url } => {
                let url: String = url::form_urlencoded::byte_serialize(url.as_str().as_bytes()).collect();
                format!("{base}{file}?url={url}&quality={quality}")
            }
        }
    }

    /// The platform, `None` for other sites.
    pub fn platform(&self) -> Option<Platform> {
        match self {
            VideoRef::Known { platform, .. } => Some(*platform),
            VideoRef::Generic { .. } => None,
        }
    }

    /// The name of the platform, `generic` for other URLs.
    pub fn platform_name(&self) -> &'static str {
        match self {
            VideoRef::Known { platform, .. } => platform.as_str(),
            VideoRef::Generic { .. } => "generic",
        }
    }

    /// The `?v=` of a signed link: it names the video for load balancers
    /// that route by it (deploy/nginx.conf); it is not part of the grant.
    pub fn route_query(&self) -> String {
        match self {
            // `{platform}/{id}` is safe in a query as it is, and must read the same as the paths.
            VideoRef::Known { .. } => self.route_key(),
            VideoRef::Generic { .. } => url::form_urlencoded::byte_serialize(self.route_key().as_bytes()).collect(),
        }
    }

    /// What a load balancer routes this video's requests by, so that all of
    /// them reach one instance (one store): `{platform}/{id}`, as in the
    /// routes' paths, or the link of another site.
    pub fn route_key(&self) -> String {
        match self {
            VideoRef::Known { platform, id } => format!("{platform}/{}", id.as_str()),
            VideoRef::Generic { url } => url.as_str().to_owned(),
        }
    }

    /// The cache key; compatible with the reference's `video:{platform}:{id}`.
    pub fn cache_key(&self) -> String {
        match self {
            VideoRef::Known { platform, id } => format!("video:{platform}:{}", id.as_str()),
            VideoRef::Generic { url } => format!("video:generic:{url}"),
        }
    }
}

/// Checks a client's URL: http(s), a host, no credentials, no spaces or
/// control characters, at most `MAX_URL_LEN`. Returns it with its host,
/// lower-cased and without a trailing dot.
pub fn parse_http_url(raw: &str) -> Result<(Url, String), InputError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(InputError::InvalidUrl("the url parameter is empty".into()));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(InputError::InvalidUrl(format!("longer than {MAX_URL_LEN} characters")));
    }
    if raw.chars().any(|c| c.is_control() || c == ' ') {
        return Err(InputError::InvalidUrl("contains spaces or control characters".into()));
    }
    let url = Url::parse(raw).map_err(|e| InputError::InvalidUrl(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(InputError::InvalidUrl("only http and https URLs are accepted".into()));
    }
    let Some(host) = url.host_str() else {
        return Err(InputError::InvalidUrl("the URL has no host".into()));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InputError::InvalidUrl("URLs with credentials are not accepted".into()));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    Ok((url, host))
}

/// The platform a host belongs to, if any.
pub fn known_host(host: &str) -> Option<Platform> {
    let is = |d: &str| host_is(host, d);
    if host == "youtu.be" || is("youtube.com") || is("youtube-nocookie.com") {
        Some(Platform::YouTube)
    } else if host == "b23.tv" || is("bilibili.com") {
        Some(Platform::Bilibili)
    } else if is("twitter.com") || is("x.com") {
        Some(Platform::Twitter)
    } else if is("instagram.com") {
        Some(Platform::Instagram)
    } else if is("twitch.tv") {
        Some(Platform::Twitch)
    } else {
        None
    }
}

fn host_is(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|p| p.ends_with('.'))
}

/// Finds the platform and raw id of a known platform's URL. `Ok(None)` means
/// the host is not a known platform; a known host with no recognisable video
/// is an error rather than a silent trip through the generic extractor.
fn detect(host: &str, url: &Url) -> Result<Option<(Platform, String)>, InputError> {
    let Some(platform) = known_host(host) else { return Ok(None) };
    let segs: Vec<&str> = url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    let found = |id: &str| Ok(Some((platform, id.to_owned())));
    let not_video = || Err(InputError::InvalidUrl(format!("not a {platform} video link")));
    match platform {
        Platform::YouTube if host == "youtu.be" => segs.first().map_or_else(not_video, |id| found(id)),
        Platform::YouTube => {
            if let Some((_, v)) = url.query_pairs().find(|(k, _)| k == "v") {
                return found(&v);
            }
            match segs.as_slice() {
                [kind, id, ..] if matches!(*kind, "shorts" | "embed" | "live" | "v") => found(id),
                // A channel's live stream.
                [handle, live] if handle.starts_with('@') && *live == "live" => {
                    found(&percent_encoding::percent_decode_str(handle).decode_utf8_lossy())
                }
                ["channel", id, "live"] => found(id),
                ["c", name, "live"] => {
                    found(&format!("c:{}", percent_encoding::percent_decode_str(name).decode_utf8_lossy()))
                }
                _ => not_video(),
            }
        }
        // Short links redirect to a BV id that only the extractor can learn.
        Platform::Bilibili if host == "b23.tv" => match segs.as_slice() {
            [id] if is_bilibili_id(id) => found(id),
            [_] => Ok(None),
            _ => not_video(),
        },
        Platform::Bilibili => match segs.as_slice() {
            ["video", id, ..] => found(id),
            _ => not_video(),
        },
        Platform::Twitter => match segs.iter().position(|s| *s == "status") {
            Some(i) if i + 1 < segs.len() => found(segs[i + 1]),
            _ => not_video(),
        },
        Platform::Instagram => match segs.as_slice() {
            [kind, id, ..] if matches!(*kind, "p" | "reel" | "reels" | "tv") => found(id),
            [_, kind, id, ..] if matches!(*kind, "p" | "reel") => found(id),
            _ => not_video(),
        },
        Platform::Twitch if host == "clips.twitch.tv" => match segs.as_slice() {
            [slug] => found(&format!("clip:{slug}")),
            _ => not_video(),
        },
        Platform::Twitch => match segs.as_slice() {
            ["videos", id, ..] => found(id.trim_start_matches('v')),
            [_, "clip", slug, ..] => found(&format!("clip:{slug}")),
            // A channel's page is its live stream.
            [channel] => found(channel),
            _ => not_video(),
        },
    }
}

/// Input that the edge refuses. Every variant becomes a 400.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("Unsupported platform")]
    UnsupportedPlatform(String),
    #[error("Invalid video id for {platform}")]
    InvalidId { platform: Platform, hint: &'static str },
    #[error("Invalid video URL")]
    InvalidUrl(String),
    #[error("Invalid playlist id")]
    InvalidPlaylistId(&'static str),
    #[error("Invalid playlist URL")]
    InvalidPlaylistUrl(String),
}

impl InputError {
    /// The `detail` of the JSON error.
    pub fn detail(&self) -> String {
        match self {
            InputError::UnsupportedPlatform(p) => {
                format!("'{p}' is not supported; use one of {}", Platform::NAMES.join(", "))
            }
            InputError::InvalidId { hint, .. } | InputError::InvalidPlaylistId(hint) => (*hint).to_owned(),
            InputError::InvalidUrl(why) | InputError::InvalidPlaylistUrl(why) => why.clone(),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youtube_ids() {
        assert!(Platform::YouTube.parse_id("dQw4w9WgXcQ").is_ok());
        assert!(Platform::YouTube.parse_id("-abcdefghij").is_ok());
        for bad in ["", "short", "--exec=rm -", "dQw4w9WgXcQQ", "dQw4w9WgX%0", "../../etc/p"] {
            assert!(Platform::YouTube.parse_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bilibili_ids() {
        assert!(Platform::Bilibili.parse_id("BV1xx411c7mD").is_ok());
        assert!(Platform::Bilibili.parse_id("av170001").is_ok());
        assert!(Platform::Bilibili.parse_id("BV1xx411c7m").is_err());
        assert!(Platform::Bilibili.parse_id("av").is_err());
    }

    #[test]
    fn urls_map_to_platforms() {
        let cases = [
            ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=1", "video:youtube:dQw4w9WgXcQ"),
            ("https://youtu.be/dQw4w9WgXcQ", "video:youtube:dQw4w9WgXcQ"),
            ("https://youtube.com/shorts/dQw4w9WgXcQ", "video:youtube:dQw4w9WgXcQ"),
            ("https://m.bilibili.com/video/BV1xx411c7mD", "video:bilibili:BV1xx411c7mD"),
            ("https://x.com/someone/status/1234567890", "video:twitter:1234567890"),
            ("https://www.instagram.com/reel/Cabc123xyz/", "video:instagram:Cabc123xyz"),
            ("https://www.twitch.tv/videos/987654", "video:twitch:987654"),
        ];
        for (url, key) in cases {
            assert_eq!(VideoRef::from_url(url).unwrap().cache_key(), key, "{url}");
        }
        let generic = VideoRef::from_url("http://127.0.0.1:8080/a.mp4").unwrap();
        assert_eq!(generic.platform_name(), "generic");
    }

    #[test]
    fn cache_keys_parse_back() {
        for r in [
            VideoRef::from_path("youtube", "-abcdefghij").unwrap(),
            VideoRef::from_url("http://127.0.0.1:1/a.mp4?x=1").unwrap(),
        ] {
            assert_eq!(VideoRef::from_cache_key(&r.cache_key()), Some(r));
        }
        assert_eq!(VideoRef::from_cache_key("video:myspace:x"), None);
    }

    #[test]
    fn bad_urls() {
        for bad in
            ["", "ftp://x/y", "javascript:alert(1)", "https://www.youtube.com/feed", "http://a b", "http://u:p@h/"]
        {
            assert!(VideoRef::from_url(bad).is_err(), "{bad}");
        }
        assert!(VideoRef::from_url(&format!("http://h/{}", "a".repeat(5000))).is_err());
        // A look-alike host is not YouTube.
        assert_eq!(VideoRef::from_url("https://notyoutube.com/watch?v=x").unwrap().platform_name(), "generic");
    }
}
