//! Batch lookups and thumbnails.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

async fn post_batch(app: &TestApp, body: &Value) -> (reqwest::StatusCode, Value) {
    let resp = app.http.post(format!("{}/api/v2/videos/batch", app.base)).json(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_batch_mixes_good_and_bad_items_in_order() {
    let app = spawn().delay_ms(300).start().await;
    let (a, b) = (yt_id("batcha"), yt_id("batchb"));
    // One video looked up alone first: the batch shares its cache entry.
    assert_eq!(app.get(&format!("/api/v2/videos/youtube/{a}")).await.status(), 200);
    let items = json!([
        {"url": format!("https://youtu.be/{a}")},
        {"url": "https://example.com/x.mp4?not=private", "quality": "potato"},
        {"url": format!("https://www.youtube.com/watch?v={b}"), "quality": "720p"},
        {"url": "ftp://nope"},
        {"url": format!("https://www.youtube.com/watch?v={}", yt_id("unavailabl"))},
        {"url": format!("https://youtu.be/{b}")},
    ]);
    let started = Instant::now();
    let (status, body) = post_batch(&app, &json!({"videos": items, "max_concurrent": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 6);
    assert_eq!(body["completed"], 3);
    assert_eq!(body["failed"], 3);
    assert_eq!(body["success"], true);
    let results = body["results"].as_array().unwrap();
    let ok: Vec<bool> = results.iter().map(|r| r["success"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, false, true, false, false, true], "{body}");
    assert_eq!(results[0]["video_info"]["id"], a.as_str());
    assert!(results[0]["video_info"]["formats"].is_array());
    assert!(results[1]["error"].as_str().unwrap().contains("quality"), "{body}");
    assert!(results[4]["error"].as_str().unwrap().contains("unavailable"), "{body}");
    assert!(body["duration_seconds"].is_number());
    // a was cached, b was extracted once for two items, the unavailable one once: 3 runs in all.
    assert_eq!(app.fake.runs(), 3);
    // One at a time: the two misses (300 ms each) ran one after the other.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn lookups_run_concurrently_within_the_bound() {
    let app = spawn().delay_ms(1000).arg("--extract-concurrency", 8).start().await;
    let items: Vec<Value> = (0..6).map(|_| json!({"url": format!("https://youtu.be/{}", yt_id("conc"))})).collect();
    let started = Instant::now();
    let (status, body) = post_batch(&app, &json!({"videos": items, "max_concurrent": 3})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["completed"], 6);
    // Six 1 s extractions, three at a time: exactly three ran at once (read
    // from the order of their starts and ends, not a clock), so two rounds.
    assert_eq!(app.fake.runs(), 6);
    assert_eq!(app.fake.most_at_once(), 3, "max_concurrent bounds the batch, and it is used");
    assert!(started.elapsed() >= Duration::from_millis(2000), "two rounds of 1 s at least");
}

#[tokio::test]
async fn bad_batches_are_refused() {
    let app = spawn_app().await;
    let too_many: Vec<Value> = (0..51).map(|i| json!({"url": format!("https://youtu.be/abcdefghi{:02}", i)})).collect();
    for body in [json!({"videos": []}), json!({"videos": too_many}), json!({"nope": 1})] {
        let (status, resp) = post_batch(&app, &body).await;
        assert_eq!(status, 400, "{resp}");
        assert_error_shape(status, &resp);
    }
    let resp = app
        .http
        .post(format!("{}/api/v2/videos/batch", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let huge = json!({"videos": [{"url": format!("https://example.com/{}", "a".repeat(70_000))}]});
    let (status, resp) = post_batch(&app, &huge).await;
    assert_eq!(status, 413, "{resp}");
    assert_error_shape(status, &resp);
    assert_eq!(app.fake.runs(), 0);
}

#[tokio::test]
async fn thumbnails_come_through_the_server() {
    let app = spawn_app().await;
    let id = yt_id("thumb");
    for path in [format!("/api/v2/thumbnail/youtube/{id}"), format!("/api/v2/thumbnail?url=https://youtu.be/{id}")] {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.headers()["cache-control"], "public, max-age=86400");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), media("thumb.jpg").as_slice());
    }
    assert_eq!(app.fake.runs(), 1);
    // No thumbnail: a clear 404.
    let (status, body) = app.json("/api/v2/thumbnail/bilibili/BV1xx411c7mD").await;
    assert_eq!(status, 404, "{body}");
    assert_error_shape(status, &body);
}
