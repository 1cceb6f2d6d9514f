//! Playlist names, parsed at the edge like videos are (see [`crate::platform`]):
//! a YouTube playlist id, a YouTube channel (and one of its tabs), a
//! Bilibili collection, series or space, a Twitch channel's videos, or any
//! other page for yt-dlp's generic extractor. yt-dlp only ever sees the
//! canonical URL that [`PlaylistRef::source_url`] builds.

use url::Url;

use crate::platform::{InputError, Platform, known_host, parse_http_url};

/// A playlist a request names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlaylistRef {
    /// `PL…` (user playlists), `UU…` (a channel's uploads), `OL…` (albums),
    /// `FL…` (favourites) or `RD…` (mixes).
    YouTube { list: String },
    /// A YouTube channel's tab: its uploads (`videos`, the default), its
    /// `shorts` or its `streams`.
    YouTubeChannel { channel: Channel, tab: Tab },
    /// A Bilibili space list: a collection ("season") or a series.
    Bilibili { kind: BiliList, mid: u64, sid: u64 },
    /// A Bilibili space's uploads (`space.bilibili.com/<mid>`).
    BilibiliSpace { mid: u64 },
    /// A Twitch channel's past broadcasts and uploads (`/<channel>/videos`).
    TwitchVideos { channel: String },
    /// Any other page; the generic extractor finds its videos.
    Generic { url: Url },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BiliList {
    Collection,
    Series,
}

impl BiliList {
    fn as_str(self) -> &'static str {
        match self {
            BiliList::Collection => "collection",
            BiliList::Series => "series",
        }
    }
}

/// How a YouTube channel is named: each form has its own URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `@handle` (kept without the `@`).
    Handle(String),
    /// `UC` and 22 more: the channel id.
    Id(String),
    /// `/c/<name>`, an older custom URL.
    Custom(String),
    /// `/user/<name>`, the oldest form.
    User(String),
}

/// The channel tabs that list videos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Videos,
    Shorts,
    Streams,
}

impl Tab {
    const HINT: &str = "a YouTube channel tab is videos, shorts or streams";

    fn parse(s: &str) -> Result<Tab, InputError> {
        match s {
            "videos" => Ok(Tab::Videos),
            "shorts" => Ok(Tab::Shorts),
            "streams" => Ok(Tab::Streams),
            _ => Err(InputError::InvalidPlaylistUrl(Tab::HINT.into())),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Tab::Videos => "videos",
            Tab::Shorts => "shorts",
            Tab::Streams => "streams",
        }
    }
}

impl Channel {
    const HINT: &str = "a YouTube channel is @handle (3 to 30 letters, digits, '_', '-' or '.') or its id \
                        (UC and 22 letters, digits, '_' or '-')";

    /// `@handle` or `UC…`, as a path or a link names it.
    fn parse(s: &str) -> Option<Channel> {
        if let Some(handle) = s.strip_prefix('@') {
            let ok = (3..=30).contains(&handle.chars().count())
                && handle.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
            return ok.then(|| Channel::Handle(handle.to_owned()));
        }
        let ok = s.len() == 24
            && s.starts_with("UC")
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Channel::Id(s.to_owned()))
    }

    /// A `/c/` or `/user/` name.
    fn name(s: &str) -> Option<String> {
        let ok = (1..=100).contains(&s.len()) && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        ok.then(|| s.to_owned())
    }

    /// The channel's path on youtube.com, without a tab.
    fn path(&self) -> String {
        match self {
            Channel::Handle(h) => format!("@{h}"),
            Channel::Id(id) => format!("channel/{id}"),
            Channel::Custom(n) => format!("c/{n}"),
            Channel::User(n) => format!("user/{n}"),
        }
    }
}

/// A Twitch channel (login) name: 3 to 25 letters, digits or '_'.
fn twitch_channel(s: &str) -> Option<String> {
    let ok = (3..=25).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| s.to_ascii_lowercase())
}

const TWITCH_HINT: &str = "a Twitch playlist is a channel's videos: the channel name (3 to 25 letters, digits or '_')";

/// A YouTube link without `list=`: a channel, with or without a tab.
fn youtube_channel(segs: &[String]) -> Result<PlaylistRef, InputError> {
    let not_list = || {
        InputError::InvalidPlaylistUrl(
            "not a YouTube playlist or channel link (it has no list=, and is not /@handle, /channel/UC…, /c/… or /user/…)"
                .into(),
        )
    };
    let (channel, rest) = match segs {
        [first, rest @ ..] if first.starts_with('@') => (Channel::parse(first), rest),
        [kind, id, rest @ ..] if kind == "channel" => {
            (Channel::parse(id).filter(|c| matches!(c, Channel::Id(_))), rest)
        }
        [kind, name, rest @ ..] if kind == "c" => (Channel::name(name).map(Channel::Custom), rest),
        [kind, name, rest @ ..] if kind == "user" => (Channel::name(name).map(Channel::User), rest),
        _ => return Err(not_list()),
    };
    let channel = channel.ok_or(InputError::InvalidPlaylistId(Channel::HINT))?;
    let tab = match rest {
        [] => Tab::Videos,
        [tab] => Tab::parse(tab)?,
        _ => return Err(InputError::InvalidPlaylistUrl(Tab::HINT.into())),
    };
    Ok(PlaylistRef::YouTubeChannel { channel, tab })
}

const YOUTUBE_PREFIXES: [&str; 5] = ["PL", "UU", "OL", "FL", "RD"];
const YOUTUBE_HINT: &str =
    "a YouTube playlist id is PL, UU, OL, FL or RD and then 10 to 70 letters, digits, '_' or '-'";
const BILIBILI_HINT: &str = "a Bilibili playlist id is collection-<space id>-<list id>, \
                             series-<space id>-<list id> or space-<space id>, digits only";

fn youtube_list(id: &str) -> Result<String, InputError> {
    let ok = (12..=72).contains(&id.len())
        && YOUTUBE_PREFIXES.iter().any(|p| id.starts_with(p))
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(id.to_owned()) } else { Err(InputError::InvalidPlaylistId(YOUTUBE_HINT)) }
}

fn digits(s: &str) -> Option<u64> {
    ((1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn no_playlists(platform: Platform) -> InputError {
    InputError::InvalidPlaylistUrl(format!(
        "playlists are supported for YouTube, Bilibili and Twitch, and for other sites' pages by ?url=; not for {platform}"
    ))
}

impl PlaylistRef {
    /// `/api/v2/playlists/{platform}/{playlist_id}`; `tab` (`?tab=`) picks a
    /// YouTube channel's tab.
    pub fn from_path(platform: &str, id: &str, tab: Option<&str>) -> Result<Self, InputError> {
        let platform = platform.parse::<Platform>()?;
        if tab.is_some() && !(platform == Platform::YouTube && Channel::parse(id).is_some()) {
            return Err(InputError::InvalidPlaylistUrl("tab= is for YouTube channels (@handle or UC…)".into()));
        }
        match platform {
            Platform::YouTube => match Channel::parse(id) {
                Some(channel) => {
                    let tab = tab.map_or(Ok(Tab::Videos), Tab::parse)?;
                    Ok(PlaylistRef::YouTubeChannel { channel, tab })
                }
                None if id.starts_with('@') || id.starts_with("UC") => {
                    Err(InputError::InvalidPlaylistId(Channel::HINT))
                }
                None => Ok(PlaylistRef::YouTube { list: youtube_list(id)? }),
            },
            Platform::Twitch => Ok(PlaylistRef::TwitchVideos {
                channel: twitch_channel(id).ok_or(InputError::InvalidPlaylistId(TWITCH_HINT))?,
            }),
            Platform::Bilibili => {
                let bad = || InputError::InvalidPlaylistId(BILIBILI_HINT);
                if let Some(mid) = id.strip_prefix("space-") {
                    return Ok(PlaylistRef::BilibiliSpace { mid: digits(mid).ok_or_else(bad)? });
                }
                let mut parts = id.splitn(3, '-');
                let kind = match parts.next() {
                    Some("collection") => BiliList::Collection,
                    Some("series") => BiliList::Series,
                    _ => return Err(bad()),
                };
                let mid = parts.next().and_then(digits).ok_or_else(bad)?;
                let sid = parts.next().and_then(digits).ok_or_else(bad)?;
                Ok(PlaylistRef::Bilibili { kind, mid, sid })
            }
            other => Err(no_playlists(other)),
        }
    }

    /// `?url=`: a YouTube playlist link (also a watch link with `list=`) or
    /// channel link, a Bilibili space or space list link, a Twitch channel's
    /// videos, or another site's page.
    pub fn from_url(raw: &str) -> Result<Self, InputError> {
        let (url, host) = parse_http_url(raw).map_err(|e| match e {
            InputError::InvalidUrl(why) => InputError::InvalidPlaylistUrl(why),
            other => other,
        })?;
        let segs: Vec<String> = url
            .path_segments()
            .map(|s| {
                s.filter(|p| !p.is_empty())
                    .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let query = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
        let platform = known_host(&host);
        if platform == Some(Platform::YouTube) {
            return match query("list") {
                Some(list) => Ok(PlaylistRef::YouTube { list: youtube_list(&list)? }),
                None => youtube_channel(&segs),
            };
        }
        if platform == Some(Platform::Twitch) {
            return match segs.as_slice() {
                [channel, videos] if videos == "videos" => Ok(PlaylistRef::TwitchVideos {
                    channel: twitch_channel(channel).ok_or(InputError::InvalidPlaylistId(TWITCH_HINT))?,
                }),
                _ => Err(InputError::InvalidPlaylistUrl("a Twitch playlist link is twitch.tv/<channel>/videos".into())),
            };
        }
        if host == "space.bilibili.com" {
            let not_list = || InputError::InvalidPlaylistUrl("not a Bilibili space, collection or series link".into());
            let mid = segs.first().map(String::as_str).and_then(digits).ok_or_else(not_list)?;
            let rest: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
            let (kind, sid) = match rest.as_slice() {
                [] | ["video"] | ["upload", "video"] => return Ok(PlaylistRef::BilibiliSpace { mid }),
                ["channel", "collectiondetail"] => (BiliList::Collection, query("sid")),
                ["channel", "seriesdetail"] => (BiliList::Series, query("sid")),
                ["lists", sid] if query("type").as_deref() == Some("series") => {
                    (BiliList::Series, Some(sid.to_string()))
                }
                ["lists", sid] => (BiliList::Collection, Some(sid.to_string())),
                _ => return Err(not_list()),
            };
            let sid = sid.as_deref().and_then(digits).ok_or_else(not_list)?;
            return Ok(PlaylistRef::Bilibili { kind, mid, sid });
        }
        match platform {
            Some(Platform::Bilibili) => {
                Err(InputError::InvalidPlaylistUrl("not a Bilibili collection or series link".into()))
            }
            Some(other) => Err(no_playlists(other)),
            None => Ok(PlaylistRef::Generic { url }),
        }
    }

    /// The URL handed to the extractor.
    pub fn source_url(&self) -> String {
        match self {
            PlaylistRef::YouTube { list } => format!("https://www.youtube.com/playlist?list={list}"),
            PlaylistRef::YouTubeChannel { channel, tab } => {
                format!("https://www.youtube.com/{}/{}", channel.path(), tab.as_str())
            }
            PlaylistRef::BilibiliSpace { mid } => format!("https://space.bilibili.com/{mid}/video"),
            PlaylistRef::TwitchVideos { channel } => format!("https://www.twitch.tv/{channel}/videos"),
            PlaylistRef::Bilibili { kind: BiliList::Collection, mid, sid } => {
                format!("https://space.bilibili.com/{mid}/lists/{sid}?type=season")
            }
            PlaylistRef::Bilibili { kind: BiliList::Series, mid, sid } => {
                format!("https://space.bilibili.com/{mid}/lists/{sid}?type=series")
            }
            PlaylistRef::Generic { url } => url.as_str().to_owned(),
        }
    }

    /// The platform whose sign-in applies; `None` for other sites.
    pub fn platform(&self) -> Option<Platform> {
        match self {
            PlaylistRef::YouTube { .. } | PlaylistRef::YouTubeChannel { .. } => Some(Platform::YouTube),
            PlaylistRef::Bilibili { .. } | PlaylistRef::BilibiliSpace { .. } => Some(Platform::Bilibili),
            PlaylistRef::TwitchVideos { .. } => Some(Platform::Twitch),
            PlaylistRef::Generic { .. } => None,
        }
    }

    /// The name of the platform, `generic` for other sites.
    pub fn platform_name(&self) -> &'static str {
        self.platform().map_or("generic", Platform::as_str)
    }

    /// `playlist:{platform}:{id}`, beside the videos' `video:{platform}:{id}`.
    pub fn cache_key(&self) -> String {
        match self {
            PlaylistRef::YouTube { list } => format!("playlist:youtube:{list}"),
            PlaylistRef::YouTubeChannel { channel, tab } => {
                format!("playlist:youtube:{}/{}", channel.path(), tab.as_str())
            }
            PlaylistRef::BilibiliSpace { mid } => format!("playlist:bilibili:space-{mid}"),
            PlaylistRef::TwitchVideos { channel } => format!("playlist:twitch:{channel}/videos"),
            PlaylistRef::Bilibili { kind, mid, sid } => format!("playlist:bilibili:{}-{mid}-{sid}", kind.as_str()),
            PlaylistRef::Generic { url } => format!("playlist:generic:{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let yt = PlaylistRef::from_path("youtube", "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", None).unwrap();
        assert_eq!(yt.source_url(), "https://www.youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf");
        let bili = PlaylistRef::from_path("bilibili", "series-1958703906-547718", None).unwrap();
        assert_eq!(bili.source_url(), "https://space.bilibili.com/1958703906/lists/547718?type=series");
        assert_eq!(bili.cache_key(), "playlist:bilibili:series-1958703906-547718");
        for (p, id) in [
            ("youtube", "dQw4w9WgXcQ"),
            ("youtube", "PL--exec=rm"),
            ("youtube", "XXrAXtmErZgOeiKm4sgNOk"),
            ("bilibili", "collection-12-x"),
            ("bilibili", "season-1-2"),
            ("twitter", "123"),
            ("myspace", "PLabcdefghijkl"),
        ] {
            assert!(PlaylistRef::from_path(p, id, None).is_err(), "{p}/{id}");
        }
        let url = |p: &str, id: &str, tab: Option<&str>| PlaylistRef::from_path(p, id, tab).map(|l| l.source_url());
        assert_eq!(url("youtube", "@LinusTechTips", None).unwrap(), "https://www.youtube.com/@LinusTechTips/videos");
        assert_eq!(url("youtube", "@ltt", Some("shorts")).unwrap(), "https://www.youtube.com/@ltt/shorts");
        assert_eq!(
            url("youtube", "UCXuqSBlHAE6Xw-yeJA0Tunw", Some("streams")).unwrap(),
            "https://www.youtube.com/channel/UCXuqSBlHAE6Xw-yeJA0Tunw/streams"
        );
        assert_eq!(url("bilibili", "space-2142762", None).unwrap(), "https://space.bilibili.com/2142762/video");
        assert_eq!(url("twitch", "Some_Channel", None).unwrap(), "https://www.twitch.tv/some_channel/videos");
        for (p, id, tab) in [
            ("youtube", "@a", None),
            ("youtube", "@has space", None),
            ("youtube", "@--exec", Some("community")),
            ("youtube", "UCshort", None),
            ("youtube", "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", Some("videos")),
            ("twitch", "a", None),
            ("twitch", "no/slash", None),
            ("bilibili", "space-x", None),
        ] {
            assert!(PlaylistRef::from_path(p, id, tab).is_err(), "{p}/{id} {tab:?}");
        }
    }

    #[test]
    fn urls() {
        let cases = [
            ("https://www.youtube.com/playlist?list=UUabcdefghijklmnop", "playlist:youtube:UUabcdefghijklmnop"),
            ("https://youtube.com/watch?v=dQw4w9WgXcQ&list=OLAK5uy_abcdefghij", "playlist:youtube:OLAK5uy_abcdefghij"),
            (
                "https://space.bilibili.com/2142762/lists/3662502?type=season",
                "playlist:bilibili:collection-2142762-3662502",
            ),
            ("https://space.bilibili.com/2142762/channel/seriesdetail?sid=7", "playlist:bilibili:series-2142762-7"),
            ("http://127.0.0.1:8080/list.html", "playlist:generic:http://127.0.0.1:8080/list.html"),
            ("https://www.youtube.com/@LinusTechTips", "playlist:youtube:@LinusTechTips/videos"),
            ("https://m.youtube.com/@ltt/shorts?feature=x", "playlist:youtube:@ltt/shorts"),
            ("https://www.youtube.com/@%E3%81%82%E3%81%84%E3%81%86", "playlist:youtube:@あいう/videos"),
            (
                "https://www.youtube.com/channel/UCXuqSBlHAE6Xw-yeJA0Tunw/streams",
                "playlist:youtube:channel/UCXuqSBlHAE6Xw-yeJA0Tunw/streams",
            ),
            ("https://www.youtube.com/c/LinusTechTips/videos", "playlist:youtube:c/LinusTechTips/videos"),
            ("https://youtube.com/user/LinusTechTips", "playlist:youtube:user/LinusTechTips/videos"),
            ("https://space.bilibili.com/2142762", "playlist:bilibili:space-2142762"),
            ("https://space.bilibili.com/2142762/upload/video", "playlist:bilibili:space-2142762"),
            ("https://www.twitch.tv/SomeChannel/videos", "playlist:twitch:somechannel/videos"),
        ];
        for (url, key) in cases {
            assert_eq!(PlaylistRef::from_url(url).unwrap().cache_key(), key, "{url}");
        }
        for bad in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/playlist?list=--exec",
            "https://space.bilibili.com/2142762/dynamic",
            "https://www.youtube.com/@ltt/community",
            "https://www.youtube.com/channel/UCshort",
            "https://www.youtube.com/@a",
            "https://www.twitch.tv/somechannel",
            "https://www.bilibili.com/video/BV1xx411c7mD",
            "https://x.com/a/status/1",
            "ftp://example.com/list",
        ] {
            assert!(PlaylistRef::from_url(bad).is_err(), "{bad}");
        }
    }
}
