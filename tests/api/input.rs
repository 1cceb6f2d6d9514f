//! Bad input: a clear 4xx JSON error, and the extractor never runs.

use crate::helpers::*;

#[tokio::test]
async fn bad_input_is_refused_before_extraction() {
    let app = spawn_app().await;
    let long = "a".repeat(5000);
    let cases: Vec<(String, u16)> = vec![
        ("/api/v2/videos/myspace/dQw4w9WgXcQ".into(), 400),
        ("/api/v2/videos/youtube/short".into(), 400),
        (format!("/api/v2/videos/youtube/{long}"), 400),
        ("/api/v2/videos/youtube/--exec=rm%20-rf".into(), 400),
        ("/api/v2/videos/youtube/-J".into(), 400),
        ("/api/v2/videos/youtube/dQw4w9WgX%00".into(), 400),
        ("/api/v2/videos/youtube/dQw4w9W%0D%0Ax".into(), 400),
        ("/api/v2/videos/youtube/..%2F..%2Fetc".into(), 400),
        ("/api/v2/videos/youtube/%FF%FE%FDabcdefgh".into(), 400),
        ("/api/v2/videos/bilibili/BVshort".into(), 400),
        ("/api/v2/videos/twitter/abc".into(), 400),
        ("/api/v2/videos/x/12ab".into(), 400),
        // A Twitch id is a VOD number, a channel name (4 to 25 of a-z, 0-9, _) or clip:<slug>.
        ("/api/v2/videos/twitch/v-123".into(), 400),
        ("/api/v2/videos/instagram/a%20b".into(), 400),
        ("/api/v2/videos".into(), 400),
        ("/api/v2/videos?url=".into(), 400),
        ("/api/v2/videos?url=ftp://example.com/a.mp4".into(), 400),
        ("/api/v2/videos?url=javascript:alert(1)".into(), 400),
        ("/api/v2/videos?url=--exec%3Drm".into(), 400),
        (format!("/api/v2/videos?url=https://example.com/{long}"), 400),
        ("/api/v2/videos?url=https://www.youtube.com/feed/trending".into(), 400),
        ("/api/v2/videos?url=https://youtu.be/--exec=rm%20x".into(), 400),
        ("/api/v2/stream/direct/youtube/dQw4w9WgXcQ?quality=potato".into(), 400),
        ("/api/v2/stream/proxy/youtube/dQw4w9WgXcQ?quality=9000p".into(), 400),
        ("/api/v2/stream/direct/youtube/bad".into(), 400),
        ("/api/v2/stream/proxy?url=not%20a%20url".into(), 400),
        ("/api/v2/stream/direct".into(), 400),
    ];
    for (path, want) in &cases {
        let resp = app.get(path).await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(status.as_u16(), *want, "{path}: {body}");
        assert_error_shape(status, &body);
    }
    assert_eq!(app.fake.runs(), 0, "no bad input may reach the extractor");

    let (_, body) = app.json("/api/v2/stream/direct/youtube/dQw4w9WgXcQ?quality=potato").await;
    assert!(body["detail"].as_str().unwrap().contains("720p"), "the error lists accepted qualities: {body}");
    let (_, body) = app.json("/api/v2/videos/myspace/x").await;
    assert_eq!(body["error"], "Unsupported platform");
}

#[tokio::test]
async fn ids_starting_with_a_dash_are_urls_not_options() {
    let app = spawn_app().await;
    let id = yt_id("-");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let calls = app.fake.calls();
    assert_eq!(calls.len(), 1);
    let args = &calls[0];
    let n = args.len();
    assert_eq!(args[n - 2], "--");
    assert_eq!(args[n - 1], format!("https://www.youtube.com/watch?v={id}"));
    for flag in ["-J", "--no-playlist", "--no-warnings", "--ignore-config"] {
        assert!(args.contains(&flag.to_owned()), "{flag} in {args:?}");
    }
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let app = spawn().arg("--allow-private-networks", "false").start().await;
    for url in [
        "http://127.0.0.1:9/a.mp4",
        "http://localhost/a.mp4",
        "http://169.254.169.254/latest",
        "http://[::1]/a.mp4",
        "http://10.0.0.1/v.mp4",
    ] {
        let (status, body) = app.json(&format!("/api/v2/videos?url={url}")).await;
        assert_eq!(status, 403, "{url}: {body}");
        assert_error_shape(status, &body);
    }
    assert_eq!(app.fake.runs(), 0);
    // A name that does not resolve is DNS's failure, not the client's: 502, naming the host.
    let (status, body) = app.json("/api/v2/videos?url=http://no-such-host.invalid/a.mp4").await;
    assert_eq!(status, 502, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(body["error"], "Host not found");
    assert!(body["detail"].as_str().unwrap().contains("no-such-host.invalid"), "{body}");
    assert_eq!(app.fake.runs(), 0);
    // A platform video whose stream URL is on a private address is not proxied.
    let id = yt_id("priv");
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert_eq!(status, 403, "{body}");
    assert_error_shape(status, &body);
}
