//! Playlists: the stand-in's flat listings (YouTube, Bilibili), the real
//! yt-dlp on a local page with several videos, paging, caching and errors.

use crate::helpers::*;

#[tokio::test]
async fn a_youtube_playlist_by_id_and_by_link_pages_from_one_extraction() {
    let app = spawn_app().await;
    let list = format!("PL{}", yt_id("pl"));
    let (status, body) = app.json(&format!("/api/v2/playlists/youtube/{list}")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["title"], format!("Playlist {list}"));
    assert_eq!(data["uploader"], "Stand-in Channel");
    assert_eq!(data["entry_count"], 7);
    assert_eq!((data["start"].as_u64(), data["next_start"].as_u64()), (Some(1), None));
    let first = &data["entries"][0];
    assert_eq!(first["index"], 1);
    assert_eq!(first["id"], "entry000001");
    assert_eq!(first["title"], "Entry 1");
    assert_eq!(first["duration"], 11.0);
    assert_eq!(first["url"], "https://www.youtube.com/watch?v=entry000001");
    assert_eq!(first["thumbnail"], "https://i.ytimg.com/vi/entry000001/hqdefault.jpg", "the largest thumbnail");

    // Pages come from the cached listing; a watch link with list= names the same playlist.
    let (status, body) = app
        .json(&format!(
            "/api/v2/playlists?url=https://www.youtube.com/watch%3Fv=dQw4w9WgXcQ%26list={list}&start=3&limit=2"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> =
        body["data"]["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["entry000003", "entry000004"]);
    assert_eq!(body["data"]["next_start"], 5);
    let (_, body) = app.json(&format!("/api/v2/playlists/youtube/{list}?start=6&limit=5")).await;
    assert_eq!(
        (body["data"]["entries"].as_array().unwrap().len(), &body["data"]["next_start"]),
        (2, &serde_json::Value::Null)
    );
    let (_, body) = app.json(&format!("/api/v2/playlists/youtube/{list}?start=50")).await;
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 0, "past the end is an empty page");

    let calls = app.fake.calls();
    assert_eq!(calls.len(), 1, "one flat extraction for every page: {calls:?}");
    assert!(calls[0].contains(&"--flat-playlist".to_owned()), "{calls:?}");
    assert_eq!(calls[0].last().unwrap(), &format!("https://www.youtube.com/playlist?list={list}"));
    let m = app.metrics().await;
    assert_eq!((m["cache_misses"].as_u64(), m["cache_hits"].as_u64()), (Some(1), Some(3)), "{m}");
}

#[tokio::test]
async fn long_playlists_page_with_limits() {
    let app = spawn_app().await;
    let list = format!("PLbig{}", yt_id("b"));
    let (_, body) = app.json(&format!("/api/v2/playlists/youtube/{list}")).await;
    assert_eq!(body["data"]["entry_count"], 250);
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 100, "100 by default");
    assert_eq!(body["data"]["next_start"], 101);
    let (_, body) = app.json(&format!("/api/v2/playlists/youtube/{list}?start=201&limit=1000")).await;
    let entries = body["data"]["entries"].as_array().unwrap();
    assert_eq!((entries.len(), &entries[0]["index"]), (50, &serde_json::json!(201)));
}

#[tokio::test]
async fn bilibili_collections_and_series() {
    let app = spawn_app().await;
    let (status, body) = app.json("/api/v2/playlists/bilibili/collection-2142762-3662502").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["entry_count"], 3);
    assert_eq!(body["data"]["entries"][0]["url"], "https://www.bilibili.com/video/BV1xx411c7mA");
    let (status, _) =
        app.json("/api/v2/playlists?url=https://space.bilibili.com/2142762/channel/seriesdetail%3Fsid=547718").await;
    assert_eq!(status, 200);
    let urls: Vec<String> = app.fake.calls().iter().map(|c| c.last().unwrap().clone()).collect();
    assert_eq!(
        urls,
        [
            "https://space.bilibili.com/2142762/lists/3662502?type=season",
            "https://space.bilibili.com/2142762/lists/547718?type=series"
        ]
    );
}

#[tokio::test]
async fn bad_playlist_input_is_refused_before_any_extraction() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v2/playlists/youtube/dQw4w9WgXcQ", "Invalid playlist id"),
        ("/api/v2/playlists/youtube/PL--exec=rm", "Invalid playlist id"),
        ("/api/v2/playlists/bilibili/season-1-2", "Invalid playlist id"),
        ("/api/v2/playlists/twitter/123", "Invalid playlist URL"),
        ("/api/v2/playlists/myspace/PLabcdefghijkl", "Unsupported platform"),
        ("/api/v2/playlists?url=https://www.youtube.com/watch%3Fv=dQw4w9WgXcQ", "Invalid playlist URL"),
        ("/api/v2/playlists?url=https://www.bilibili.com/video/BV1xx411c7mD", "Invalid playlist URL"),
        ("/api/v2/playlists?url=ftp://example.com/x", "Invalid playlist URL"),
        ("/api/v2/playlists", "Missing url"),
        ("/api/v2/playlists/youtube/PLabcdefghijkl?start=0", "Invalid paging"),
        ("/api/v2/playlists/youtube/PLabcdefghijkl?limit=1001", "Invalid paging"),
        ("/api/v2/playlists/youtube/PLabcdefghijkl?limit=ten", "Invalid paging"),
    ];
    for (path, error) in cases {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error_shape(status, &body);
        assert_eq!(body["error"], error, "{path}: {body}");
    }
    for path in ["/api/v2/playlists/youtube/%FF", "/api/v2/playlists?url=a&url=b", "/api/v2/auth/status/%FF"] {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error_shape(status, &body);
    }
    assert_eq!(app.fake.runs(), 0);
}

#[tokio::test]
async fn a_missing_playlist_is_404() {
    let app = spawn_app().await;
    let (status, body) = app.json(&format!("/api/v2/playlists/youtube/PLgone{}", yt_id("g"))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "Playlist unavailable");
    assert!(body["detail"].as_str().unwrap().contains("does not exist"), "{body}");
}

#[tokio::test]
async fn playlists_are_shared_through_redis() {
    let url = redis_url();
    let a = spawn().redis(&url).start().await;
    let b = spawn().redis(&url).origin(&a.origin).start().await;
    let list = format!("PL{}", yt_id("r"));
    assert_eq!(a.json(&format!("/api/v2/playlists/youtube/{list}")).await.0, 200);
    let (status, body) = b.json(&format!("/api/v2/playlists/youtube/{list}?start=2&limit=1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["entries"][0]["id"], "entry000002");
    assert_eq!((a.fake.runs(), b.fake.runs()), (1, 0), "the second instance read the first one's listing");
}

#[tokio::test]
async fn real_ytdlp_lists_the_videos_of_a_local_page() {
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let page = format!("{}/list.html", app.origin.base);
    let (status, body) = app.json(&format!("/api/v2/playlists?url={page}&limit=2")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["title"], "Local list");
    assert_eq!(data["entry_count"], 3);
    assert_eq!(data["next_start"], 3);
    let urls: Vec<&str> = data["entries"].as_array().unwrap().iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [format!("{}/media/clip.mp4?n=1", app.origin.base), format!("{}/media/clip.mp4?n=2", app.origin.base)]
    );
    let (_, body) = app.json(&format!("/api/v2/playlists?url={page}&start=3")).await;
    assert!(body["data"]["entries"][0]["url"].as_str().unwrap().ends_with("clip.mp4?n=3"), "{body}");

    // Each entry's url is a link the video routes take.
    let entry = urls[0].replace('?', "%3F");
    let resp = app.follow(&format!("/api/v2/stream/proxy?url={entry}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());
    // A single video is not a playlist: the answer points at /api/v2/videos.
    let (status, body) = app.json(&format!("/api/v2/playlists?url={}/media/clip.mp4", app.origin.base)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/api/v2/videos"), "{body}");
    // And a video lookup of the page itself says it is a playlist.
    let (status, body) = app.json(&format!("/api/v2/videos?url={page}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/api/v2/playlists"), "{body}");
}

/// Channels are playlists: each form of a YouTube channel link, and the id
/// forms, list the tab's items from the stand-in's youtube:tab-shaped JSON;
/// one extraction per channel tab serves every page and every form naming it.
#[tokio::test]
async fn youtube_channels_and_their_tabs_list_like_playlists() {
    let app = spawn_app().await;
    let handle = format!("@{}", yt_id("ch"));
    let (status, body) = app.json(&format!("/api/v2/playlists/youtube/{handle}?limit=2")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let name = &handle[1..];
    assert_eq!(data["title"], format!("{name} - Videos"));
    assert!(data["id"].as_str().unwrap().starts_with("UC"), "the channel's id: {body}");
    assert_eq!((data["entry_count"].as_u64(), data["next_start"].as_u64()), (Some(5), Some(3)));
    assert_eq!(data["entries"][0]["url"], "https://www.youtube.com/watch?v=vi000000001");
    assert_eq!(data["entries"][0]["title"], format!("videos 1 of {name}"));
    // The link to the same tab, and the next page, come from the same listing.
    let (status, body) =
        app.json(&format!("/api/v2/playlists?url=https://www.youtube.com/{handle}/videos&start=5")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["entries"][0]["index"], 5);
    // Other tabs and forms: shorts by ?tab=, streams of a UC id, /c/ and /user/ links.
    let id = format!("UC{}", yt_id("id") + &yt_id("id")[..11]);
    let shorts = app.json(&format!("/api/v2/playlists/youtube/{handle}?tab=shorts")).await;
    assert_eq!(shorts.1["data"]["entries"][0]["url"], "https://www.youtube.com/shorts/sh000000001", "{}", shorts.1);
    for path in [
        format!("/api/v2/playlists/youtube/{id}?tab=streams"),
        format!("/api/v2/playlists?url=https://m.youtube.com/c/{name}"),
        format!("/api/v2/playlists?url=https://youtube.com/user/{name}/shorts"),
    ] {
        let (status, body) = app.json(&path).await;
        assert_eq!((status.as_u16(), body["data"]["entry_count"].as_u64()), (200, Some(5)), "{path}: {body}");
    }
    let urls: Vec<String> = app.fake.calls().iter().map(|c| c.last().unwrap().clone()).collect();
    assert_eq!(
        urls,
        [
            format!("https://www.youtube.com/{handle}/videos"),
            format!("https://www.youtube.com/{handle}/shorts"),
            format!("https://www.youtube.com/channel/{id}/streams"),
            format!("https://www.youtube.com/c/{name}/videos"),
            format!("https://www.youtube.com/user/{name}/shorts"),
        ],
        "yt-dlp gets the canonical tab URL, once per tab"
    );

    // A channel that does not exist is 404 in yt-dlp's words; bad names and tabs are 400.
    let (status, body) = app.json("/api/v2/playlists/youtube/@gone-channel").await;
    assert_eq!((status.as_u16(), &body["error"]), (404, &serde_json::json!("Playlist unavailable")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("does not exist"), "{body}");
    let runs = app.fake.runs();
    for path in [
        "/api/v2/playlists/youtube/@ab",
        "/api/v2/playlists/youtube/@ltt?tab=community",
        "/api/v2/playlists/youtube/UCshort",
        "/api/v2/playlists/youtube/PLabcdefghijkl?tab=videos",
        "/api/v2/playlists?url=https://www.youtube.com/@ltt/community",
        "/api/v2/playlists?url=https://www.youtube.com/@ltt/videos&tab=shorts",
    ] {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error_shape(status, &body);
    }
    assert_eq!(app.fake.runs(), runs, "refused before any extraction");
}

/// A Bilibili space lists its uploads; a Twitch channel its videos.
#[tokio::test]
async fn bilibili_spaces_and_twitch_channel_videos() {
    let app = spawn_app().await;
    let (status, body) = app.json("/api/v2/playlists?url=https://space.bilibili.com/2142762").await;
    assert_eq!((status.as_u16(), body["data"]["entry_count"].as_u64()), (200, Some(3)), "{body}");
    let (status, _) = app.json("/api/v2/playlists/bilibili/space-2142762").await;
    assert_eq!(status, 200, "the same space by id, from the cache");
    let (status, body) = app.json("/api/v2/playlists/twitch/Some_Streamer").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["entries"][0]["url"], "https://www.twitch.tv/videos/301");
    let (status, _) = app.json("/api/v2/playlists?url=https://www.twitch.tv/some_streamer/videos").await;
    assert_eq!(status, 200);
    let urls: Vec<String> = app.fake.calls().iter().map(|c| c.last().unwrap().clone()).collect();
    assert_eq!(urls, ["https://space.bilibili.com/2142762/video", "https://www.twitch.tv/some_streamer/videos"]);
    let (status, body) = app.json("/api/v2/playlists?url=https://www.twitch.tv/some_streamer").await;
    assert_eq!(status, 400, "a channel page itself is its live stream, not a list: {body}");
}
