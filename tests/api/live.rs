//! Live links (issue 20, first part): Twitch channels and clips, YouTube
//! channels' `/live`, by link and by id; the info says it is live; a channel
//! that is not live is a 404 in yt-dlp's words, remembered for seconds only.

use crate::helpers::*;

#[tokio::test]
async fn live_channels_and_clips_are_videos() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v2/videos?url=https://www.twitch.tv/SomeStreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos?url=https://m.twitch.tv/somestreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos/twitch/somestreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos?url=https://www.youtube.com/@LiveChannel/live", "https://www.youtube.com/@LiveChannel/live"),
        ("/api/v2/videos/youtube/@LiveChannel", "https://www.youtube.com/@LiveChannel/live"),
        (
            "/api/v2/videos?url=https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv/live",
            "https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv/live",
        ),
        ("/api/v2/videos?url=https://www.youtube.com/c/LiveName/live", "https://www.youtube.com/c/LiveName/live"),
    ];
    for (path, _) in &cases {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"]["is_live"], true, "{path}");
        assert_eq!(body["data"]["live_status"], "is_live", "{path}");
    }
    let urls: Vec<String> = app.fake.calls().iter().map(|c| c.last().unwrap().clone()).collect();
    let mut want: Vec<&str> = cases.iter().map(|(_, u)| *u).collect();
    want.dedup();
    assert_eq!(urls, want, "yt-dlp gets the canonical URL, one extraction per stream");

    for path in [
        "/api/v2/videos?url=https://clips.twitch.tv/FunnyClipSlug-abc123",
        "/api/v2/videos?url=https://www.twitch.tv/somestreamer/clip/FunnyClipSlug-abc123",
        "/api/v2/videos/twitch/clip:FunnyClipSlug-abc123",
    ] {
        let (status, body) = app.json(path).await;
        assert_eq!(
            (status.as_u16(), &body["data"]["title"]),
            (200, &serde_json::json!("Clip FunnyClipSlug-abc123")),
            "{path}"
        );
    }
    assert_eq!(app.fake.calls().last().unwrap().last().unwrap(), "https://clips.twitch.tv/FunnyClipSlug-abc123");
    assert_eq!(app.fake.runs(), urls.len() + 1, "both clip links and the id are one clip");

    for bad in [
        "/api/v2/videos/twitch/ab",
        "/api/v2/videos/twitch/videos",
        "/api/v2/videos/youtube/@x",
        "/api/v2/videos/twitch/clip:",
    ] {
        let (status, body) = app.json(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_error_shape(status, &body);
    }
}

#[tokio::test]
async fn a_channel_that_is_not_live_is_404_remembered_for_seconds() {
    let app = spawn_app().await;
    for path in ["/api/v2/videos/twitch/offlinechannel", "/api/v2/videos/youtube/@offlinechannel"] {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 404, "{body}");
        assert_error_shape(status, &body);
        assert_eq!(body["error"], "Not live");
        assert!(body["detail"].as_str().unwrap().ends_with("The channel is not currently live"), "{body}");
    }
    let (status, body) = app.json("/api/v2/videos/youtube/@soonchannel").await;
    assert_eq!((status.as_u16(), &body["error"]), (404, &serde_json::json!("Not live")), "{body}");
    // Asked again at once: remembered, yt-dlp not run again.
    let runs = app.fake.runs();
    let (status, _) = app.json("/api/v2/videos/twitch/offlinechannel").await;
    assert_eq!((status.as_u16(), app.fake.runs()), (404, runs));
    // A few seconds on, asked anew (the channel may have gone live).
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    let (status, _) = app.json("/api/v2/videos/twitch/offlinechannel").await;
    assert_eq!((status.as_u16(), app.fake.runs()), (404, runs + 1));
    assert!(app.prom("reelay_extractions_total{outcome=\"not_live\"}").await >= 3.0);
}

/// A live stream in each mode: direct is a 302 to the origin's playlist,
/// the proxy answers the playlist rewritten (no origin URL in it), AVPro
/// gets the HLS, and Unity, which plays no live HLS, a 409 naming the link
/// that plays.
#[tokio::test]
async fn a_live_stream_in_each_mode_and_player() {
    let app = spawn_app().await;
    let resp = app.get("/api/v2/stream/direct/twitch/somestreamer").await;
    assert_eq!(resp.status(), 302);
    assert!(resp.headers()["location"].to_str().unwrap().contains("/media/hls/master.m3u8?live=somestreamer"));
    for player in ["", "&player=avpro"] {
        let resp = app.get(&format!("/api/v2/stream/proxy/twitch/somestreamer?quality=best{player}")).await;
        assert_eq!(resp.status(), 200, "{player}");
        let text = resp.text().await.unwrap();
        assert!(text.starts_with("#EXTM3U") && text.contains("/api/v2/stream/hls/"), "{text}");
        assert!(!text.contains(&app.origin.base), "no origin URL: {text}");
    }
    let (status, body) = app.json("/api/v2/stream/proxy/twitch/somestreamer?player=unity").await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(status, &body);
    assert!(
        body["detail"].as_str().unwrap().contains("/api/v2/stream/proxy/twitch/somestreamer?quality=best"),
        "{body}"
    );
}
