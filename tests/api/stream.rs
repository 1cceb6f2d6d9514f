use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn direct_redirects_to_a_format_with_sound() {
    let app = spawn_app().await;
    let id = yt_id("direct");
    for quality in ["best", "1080p", "720p", "360p", "worst", "hd"] {
        let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality={quality}")).await;
        assert_eq!(resp.status(), 302, "{quality}");
        let location = resp.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(&format!("{}/media/clip.mp4?", app.origin.base)), "{quality}: {location}");
        assert!(!location.contains('\n'));
        assert_eq!(resp.headers()["x-reelay-format"], "18");
    }
    // The URL plays by itself: it is the muxed file.
    let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}")).await;
    let target = resp.headers()["location"].to_str().unwrap().to_owned();
    let bytes = app.http.get(target).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), media("clip.mp4").as_slice());
    // Audio only, by redirect.
    let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=audio")).await;
    assert_eq!(resp.headers()["x-reelay-format"], "140");
    assert_eq!(app.fake.runs(), 1);
}

#[tokio::test]
async fn direct_works_by_url_too() {
    let app = spawn_app().await;
    let id = yt_id("durl");
    let resp = app.get(&format!("/api/v2/stream/direct?url=https://youtu.be/{id}&quality=720p")).await;
    assert_eq!(resp.status(), 302);
}

#[tokio::test]
async fn proxy_relays_bytes_ranges_and_only_allowed_headers() {
    let app = spawn_app().await;
    let id = yt_id("proxy");
    let path = format!("/api/v2/stream/proxy/youtube/{id}?quality=360p");
    let file = media("clip.mp4");

    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .header("cookie", "client_session=leak")
        .header("authorization", "Bearer client-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.headers()["content-length"], file.len().to_string().as_str());
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert!(resp.headers().get("set-cookie").is_none(), "upstream cookies never reach the client");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), file.as_slice());

    let seen = app.origin.seen.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(seen["user-agent"], "Mozilla/5.0 (stand-in)", "the format's own headers go upstream");
    assert!(
        seen.get("cookie").is_none() && seen.get("authorization").is_none(),
        "client credentials never go upstream"
    );

    // Seeking.
    let resp = app.http.get(format!("{}{path}", app.base)).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 100-199/{}", file.len()).as_str());
    assert_eq!(resp.headers()["content-length"], "100");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &file[100..200]);

    // HEAD answers the headers without the body.
    let resp = app.http.head(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], file.len().to_string().as_str());

    let m = app.metrics().await;
    assert!(m["total_bytes_served"].as_u64().unwrap() >= file.len() as u64 + 100, "{m}");
    assert_eq!(m["active_streams"], 0);
    assert_eq!(app.fake.runs(), 1);
}

#[tokio::test]
async fn proxy_sends_bilibilis_referer() {
    let app = spawn_app().await;
    let resp = app.get("/api/v2/stream/proxy/bilibili/BV1xx411c7mD?quality=audio").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("a.m4a").as_slice());
    let seen = app.origin.seen.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(seen["referer"], "https://www.bilibili.com/");
}

#[tokio::test]
async fn active_streams_drop_when_the_client_hangs_up() {
    let app = spawn_app().await;
    // A slow origin (8 KiB every 50 ms, no length): the stream cannot have
    // finished in the second this waits, only been hung up on.
    let id = yt_id("slowslowslo");
    let mut resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    for _ in 0..20 {
        if app.metrics().await["active_streams"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("active_streams never returned to 0: {}", app.metrics().await);
}

#[tokio::test]
async fn an_unreachable_origin_is_bad_gateway() {
    let dead = Origin::dead();
    let app = spawn().origin(&dead).start().await;
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{}?quality=360p", yt_id("dead"))).await;
    assert_eq!(status, 502, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(app.metrics().await["active_streams"], 0);
}

/// A video YouTube serves only through SABR, as a yt-dlp without SABR
/// support lists it (`protocol: sabr`, no `_sabr_config`): reelay says so
/// plainly (501, the error shape, the protocol named) instead of sending
/// the SABR URL a GET and answering the origin's 405 as a 502; the refusal
/// is remembered like the video's other lasting states. While a format
/// with a plain URL exists beside the SABR ones, that one is played.
/// (`sabr.rs`: SABR formats with their session's config are played.)
#[tokio::test]
async fn a_video_only_in_sabr_is_refused_plainly_and_plain_urls_are_preferred() {
    let app = spawn_app().await;
    let id = yt_id("sabrold");
    for path in [format!("/api/v2/stream/proxy/youtube/{id}"), format!("/api/v2/videos/youtube/{id}")] {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), 501, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert!(body["detail"].as_str().unwrap().contains("SABR"), "{body}");
    }
    assert_eq!(app.fake.runs(), 1, "remembered");
    assert!(app.origin.requests("/videoplayback").is_empty(), "no GET of a SABR URL");

    let mixed = yt_id("sabrmixed");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{mixed}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-reelay-format"], "18");
    let (status, info) = app.json(&format!("/api/v2/videos/youtube/{mixed}")).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> =
        info["data"]["formats"].as_array().unwrap().iter().map(|f| f["format_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["18"], "SABR formats are not listed as playable: {info}");
}
