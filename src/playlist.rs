//! Playlist names, parsed at the edge like videos are (see [`crate::platform`]):
//! a YouTube playlist id, a Bilibili collection or series, or any other
//! page for yt-dlp's generic extractor. yt-dlp only ever sees the canonical
//! URL that [`PlaylistRef::source_url`] builds.

use url::Url;

use crate::platform::{InputError, Platform, known_host, parse_http_url};

/// A playlist a request names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlaylistRef {
    /// `PL…` (user playlists), `UU…` (a channel's uploads), `OL…` (albums),
    /// `FL…` (favourites) or `RD…` (mixes).
    YouTube { list: String },
    /// A Bilibili space list: a collection ("season") or a series.
    Bilibili { kind: BiliList, mid: u64, sid: u64 },
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

const YOUTUBE_PREFIXES: [&str; 5] = ["PL", "UU", "OL", "FL", "RD"];
const YOUTUBE_HINT: &str =
    "a YouTube playlist id is PL, UU, OL, FL or RD and then 10 to 70 letters, digits, '_' or '-'";
const BILIBILI_HINT: &str =
    "a Bilibili playlist id is collection-<space id>-<list id> or series-<space id>-<list id>, digits only";

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
        "playlists are supported for YouTube and Bilibili, and for other sites' pages by ?url=; not for {platform}"
    ))
}

impl PlaylistRef {
    /// `/api/v2/playlists/{platform}/{playlist_id}`.
    pub fn from_path(platform: &str, id: &str) -> Result<Self, InputError> {
        match platform.parse::<Platform>()? {
            Platform::YouTube => Ok(PlaylistRef::YouTube { list: youtube_list(id)? }),
            Platform::Bilibili => {
                let bad = || InputError::InvalidPlaylistId(BILIBILI_HINT);
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

    /// `?url=`: a YouTube playlist link (also a watch link with `list=`), a
    /// Bilibili space list link, or another site's page.
    pub fn from_url(raw: &str) -> Result<Self, InputError> {
        let (url, host) = parse_http_url(raw).map_err(|e| match e {
            InputError::InvalidUrl(why) => InputError::InvalidPlaylistUrl(why),
            other => other,
        })?;
        let segs: Vec<&str> = url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
        let query = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
        let platform = known_host(&host);
        if platform == Some(Platform::YouTube) {
            return match query("list") {
                Some(list) => Ok(PlaylistRef::YouTube { list: youtube_list(&list)? }),
                None => Err(InputError::InvalidPlaylistUrl("not a YouTube playlist link (it has no list=)".into())),
            };
        }
        if host == "space.bilibili.com" {
            let not_list = || InputError::InvalidPlaylistUrl("not a Bilibili collection or series link".into());
            let mid = segs.first().copied().and_then(digits).ok_or_else(not_list)?;
            let (kind, sid) = match segs.get(1..).unwrap_or_default() {
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
            PlaylistRef::YouTube { .. } => Some(Platform::YouTube),
            PlaylistRef::Bilibili { .. } => Some(Platform::Bilibili),
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
        let yt = PlaylistRef::from_path("youtube", "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf").unwrap();
        assert_eq!(yt.source_url(), "https://www.youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf");
        let bili = PlaylistRef::from_path("bilibili", "series-1958703906-547718").unwrap();
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
            assert!(PlaylistRef::from_path(p, id).is_err(), "{p}/{id}");
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
        ];
        for (url, key) in cases {
            assert_eq!(PlaylistRef::from_url(url).unwrap().cache_key(), key, "{url}");
        }
        for bad in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/playlist?list=--exec",
            "https://space.bilibili.com/2142762/video",
            "https://www.bilibili.com/video/BV1xx411c7mD",
            "https://x.com/a/status/1",
            "ftp://example.com/list",
        ] {
            assert!(PlaylistRef::from_url(bad).is_err(), "{bad}");
        }
    }
}
