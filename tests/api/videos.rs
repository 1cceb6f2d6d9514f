use std::time::{Duration, Instant};

use crate::helpers::*;

const REFERENCE_KEYS: [&str; 11] = [
    "id",
    "title",
    "description",
    "duration",
    "thumbnail",
    "platform",
    "uploader",
    "view_count",
    "like_count",
    "upload_date",
    "formats",
];
const FORMAT_KEYS: [&str; 8] = ["format_id", "url", "ext", "quality", "resolution", "filesize", "bitrate", "codec"];

#[tokio::test]
async fn info_has_the_reference_shape_and_is_extracted_once_in_memory() {
    info_has_the_reference_shape_and_is_extracted_once(spawn()).await;
}

#[tokio::test]
async fn info_has_the_reference_shape_and_is_extracted_once_with_redis() {
    info_has_the_reference_shape_and_is_extracted_once(spawn().redis(&redis_url())).await;
}

async fn info_has_the_reference_shape_and_is_extracted_once(spawn: Spawn) {
    let app = spawn.start().await;
    let id = yt_id("info");
    let path = format!("/api/v2/videos/youtube/{id}");
    let (status, body) = app.json(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert!(body["message"].is_string() && body["timestamp"].is_string());
    let data = &body["data"];
    for key in REFERENCE_KEYS {
        assert!(data.get(key).is_some(), "missing {key}: {data}");
    }
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["platform"], "youtube");
    assert_eq!(data["view_count"], 1234);
    let formats = data["formats"].as_array().unwrap();
    assert_eq!(formats.len(), 6, "storyboards are dropped");
    for f in formats {
        for key in FORMAT_KEYS {
            assert!(f.get(key).is_some(), "missing format key {key}: {f}");
        }
        assert!(f.get("http_headers").is_none(), "upstream headers never reach clients");
    }
    let f18 = formats.iter().find(|f| f["format_id"] == "18").unwrap();
    assert_eq!(f18["resolution"], "640x360");
    assert_eq!(f18["has_audio"], true);

    // Every later request, any quality, any mode: the same one extraction.
    for p in [
        path.clone(),
        format!("/api/v2/videos?url=https://youtu.be/{id}"),
        format!("/api/v2/videos?url=https://www.youtube.com/watch?v={id}%26t=3"),
        format!("/api/v2/stream/direct/youtube/{id}?quality=720p"),
        format!("/api/v2/stream/direct/youtube/{id}?quality=worst"),
    ] {
        let status = app.get(&p).await.status();
        assert!(status == 200 || status == 302, "{p}: {status}");
    }
    assert_eq!(app.fake.runs(), 1);
    let m = app.metrics().await;
    assert_eq!(m["cache_misses"], 1, "{m}");
    assert_eq!(m["cache_hits"], 5, "{m}");
    assert_eq!(m["total_requests"], 6, "{m}");
}

#[tokio::test]
async fn concurrent_misses_share_one_extraction_in_memory() {
    concurrent_misses_share_one_extraction(spawn()).await;
}

#[tokio::test]
async fn concurrent_misses_share_one_extraction_with_redis() {
    concurrent_misses_share_one_extraction(spawn().redis(&redis_url())).await;
}

async fn concurrent_misses_share_one_extraction(spawn: Spawn) {
    let app = spawn.delay_ms(400).start().await;
    let id = yt_id("flight");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let path = match i % 3 {
            0 => format!("/api/v2/videos/youtube/{id}"),
            1 => format!("/api/v2/stream/direct/youtube/{id}?quality=720p"),
            _ => format!("/api/v2/stream/direct/youtube/{id}?quality=360p"),
        };
        let (http, base) = (app.http.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move { http.get(format!("{base}{path}")).send().await.unwrap().status() }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 302, "{status}");
    }
    assert_eq!(app.fake.runs(), 1);
    let m = app.metrics().await;
    assert_eq!(m["cache_misses"], 1, "{m}");
    assert_eq!(m["cache_hits"], 19, "{m}");
}

#[tokio::test]
async fn extractor_errors_carry_its_message_and_a_fitting_status_in_memory() {
    extractor_errors_carry_its_message_and_a_fitting_status(spawn()).await;
}

#[tokio::test]
async fn extractor_errors_carry_its_message_and_a_fitting_status_with_redis() {
    extractor_errors_carry_its_message_and_a_fitting_status(spawn().redis(&redis_url())).await;
}

async fn extractor_errors_carry_its_message_and_a_fitting_status(spawn: Spawn) {
    let app = spawn.start().await;
    // Ids with three random characters: Redis keeps refusals across runs.
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("removedv"))).await;
    assert_eq!(status, 404);
    assert_error_shape(status, &body);
    assert!(body["detail"].as_str().unwrap().contains("Video unavailable"), "{body}");

    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("brokenbroke"))).await;
    assert_eq!(status, 502);
    assert_error_shape(status, &body);
    assert!(body["detail"].as_str().unwrap().contains("Unable to extract"), "{body}");

    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("garbagegarb"))).await;
    assert_eq!(status, 502);
    assert_error_shape(status, &body);

    // A removed video is remembered (ERROR_CACHE_TTL); other failures are
    // not: asking again runs the extractor again.
    let id = yt_id("removedv");
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(app.fake.runs(), 4);
    let id = yt_id("brokenbroke");
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(app.fake.runs(), 6);
}

#[tokio::test]
async fn a_hung_extractor_is_killed_at_the_timeout() {
    let app = spawn().arg("--extract-timeout", 1).start().await;
    let id = yt_id("sleepysleep");
    let started = Instant::now();
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 504, "{body}");
    assert_error_shape(status, &body);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Neither the wrapper nor the python child under it survives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = std::process::Command::new("pgrep").args(["-f", &id]).output().unwrap();
    assert!(left.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&left.stdout));
}

#[tokio::test]
async fn platforms_and_links_map_to_canonical_urls() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v2/videos/bilibili/BV1xx411c7mD", "https://www.bilibili.com/video/BV1xx411c7mD"),
        ("/api/v2/videos/x/1234567890123", "https://twitter.com/i/status/1234567890123"),
        ("/api/v2/videos?url=https://x.com/user/status/42", "https://twitter.com/i/status/42"),
        (
            "/api/v2/videos?url=https://www.bilibili.com/video/BV1ab411c7mD?p=1",
            "https://www.bilibili.com/video/BV1ab411c7mD",
        ),
    ];
    for (path, want) in cases {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let calls = app.fake.calls();
        assert_eq!(calls.last().unwrap().last().unwrap(), want, "{path}");
    }
    let (_, body) = app.json("/api/v2/videos/twitter/1234567890123").await;
    assert_eq!(app.fake.runs(), 4, "twitter and x share a cache entry: {body}");
}
