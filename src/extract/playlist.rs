//! `yt-dlp --flat-playlist -J` output, normalised into a [`Playlist`], and
//! the page of it a client asked for.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ParseError;
use super::info::{f64_of, str_of};

/// A playlist as cached: its metadata and every entry (flat extraction
/// lists entries without resolving them, so even long lists are small).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Playlist {
    pub id: String,
    pub title: Option<String>,
    pub uploader: Option<String>,
    pub platform: String,
    pub webpage_url: Option<String>,
    pub entries: Vec<PlaylistEntry>,
}

/// One entry of a playlist: enough to show it and to look it up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PlaylistEntry {
    /// Position in the playlist, from 1 (what `start` counts).
    pub index: usize,
    pub id: Option<String>,
    pub title: Option<String>,
    /// Seconds, when the site lists it.
    pub duration: Option<f64>,
    /// The entry's own link: pass it to `/api/v2/videos?url=`.
    pub url: Option<String>,
    pub thumbnail: Option<String>,
}

/// One page of a playlist, as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaylistPage<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub uploader: Option<&'a str>,
    pub platform: &'a str,
    pub webpage_url: Option<&'a str>,
    /// Entries in the whole playlist.
    pub entry_count: usize,
    /// Index of the first entry of this page (from 1).
    pub start: usize,
    /// The most entries a page holds.
    pub limit: usize,
    /// `start` of the next page; `null` on the last one.
    pub next_start: Option<usize>,
    pub entries: &'a [PlaylistEntry],
}

impl Playlist {
    /// Normalises flat-playlist JSON. A single video is refused: the client
    /// should ask `/api/v2/videos` instead.
    pub fn from_ytdlp_value(v: Value, platform: &str) -> Result<Self, ParseError> {
        let Some(list) = v.get("entries").and_then(Value::as_array) else {
            return Err(ParseError::NotAPlaylist);
        };
        let entries = list
            .iter()
            .filter(|e| e.is_object())
            .enumerate()
            .map(|(i, e)| PlaylistEntry {
                index: i + 1,
                id: str_of(e, "id"),
                title: str_of(e, "title"),
                duration: f64_of(e, "duration"),
                url: str_of(e, "url").or_else(|| str_of(e, "webpage_url")),
                thumbnail: str_of(e, "thumbnail").or_else(|| largest_thumbnail(e)),
            })
            .collect();
        let platform = match platform {
            "generic" => str_of(&v, "extractor_key").map_or_else(|| platform.to_owned(), |e| e.to_ascii_lowercase()),
            known => known.to_owned(),
        };
        Ok(Playlist {
            id: str_of(&v, "id").unwrap_or_default(),
            title: str_of(&v, "title"),
            uploader: str_of(&v, "uploader").or_else(|| str_of(&v, "channel")),
            platform,
            webpage_url: str_of(&v, "webpage_url"),
            entries,
        })
    }

    /// Entries `start..start + limit` (from 1); past the end is an empty page.
    pub fn page(&self, start: usize, limit: usize) -> PlaylistPage<'_> {
        let from = start.saturating_sub(1).min(self.entries.len());
        let to = from.saturating_add(limit).min(self.entries.len());
        PlaylistPage {
            id: &self.id,
            title: self.title.as_deref(),
            uploader: self.uploader.as_deref(),
            platform: &self.platform,
            webpage_url: self.webpage_url.as_deref(),
            entry_count: self.entries.len(),
            start,
            limit,
            next_start: (to < self.entries.len()).then_some(to + 1),
            entries: &self.entries[from..to],
        }
    }
}

/// Flat entries carry a list of thumbnails rather than one; yt-dlp orders
/// them from worst to best.
fn largest_thumbnail(e: &Value) -> Option<String> {
    e.get("thumbnails")?.as_array()?.iter().rev().find_map(|t| str_of(t, "url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_youtube_playlist_and_pages() {
        let v = serde_json::json!({
            "_type": "playlist", "id": "PLx", "title": "Mix", "uploader": "Chan", "webpage_url": "https://y/p",
            "entries": [
                {"_type": "url", "id": "a", "title": "A", "duration": 10, "url": "https://www.youtube.com/watch?v=a",
                 "thumbnails": [{"url": "https://i/small.jpg"}, {"url": "https://i/big.jpg"}]},
                {"_type": "url", "id": "b", "title": "B", "url": "https://www.youtube.com/watch?v=b"},
                null,
                {"_type": "url", "id": "c", "url": "https://www.youtube.com/watch?v=c"}
            ]
        });
        let p = Playlist::from_ytdlp_value(v, "youtube").unwrap();
        assert_eq!(p.entries.len(), 3);
        assert_eq!(p.entries[0].thumbnail.as_deref(), Some("https://i/big.jpg"));
        assert_eq!(p.entries[2].index, 3);
        let page = p.page(2, 1);
        assert_eq!((page.entries.len(), page.entries[0].id.as_deref(), page.next_start), (1, Some("b"), Some(3)));
        assert_eq!(p.page(3, 10).next_start, None);
        assert!(p.page(99, 10).entries.is_empty());
        assert!(matches!(
            Playlist::from_ytdlp_value(serde_json::json!({"id": "v"}), "youtube"),
            Err(ParseError::NotAPlaylist)
        ));
    }
}
