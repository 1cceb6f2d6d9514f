//! The platform's refusals, read plainly from yt-dlp's own words through
//! both extractor modes, and the lasting ones remembered for
//! `ERROR_CACHE_TTL` in both cache tiers.

use std::time::Duration;

use crate::helpers::*;

/// (id prefix, status, error, whether a `Retry-After` comes, words of the detail).
const CASES: [(&str, u16, &str, bool, &str); 5] = [
    ("botcheck", 503, "Blocked by the platform", true, "not a bot"),
    ("toomany", 503, "Blocked by the platform", true, "429"),
    ("agegate", 403, "Sign-in required", false, "confirm your age"),
    ("geoblock", 451, "Not available in this country", false, "in your country"),
    ("privatev", 404, "Video unavailable", false, "Private video"),
];

/// A Python that imports the stand-in yt_dlp module (tests/fixtures/standin_yt_dlp)
/// instead of yt-dlp, for the worker mode.
fn standin_python(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("python");
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/standin_yt_dlp");
    std::fs::write(&path, format!("#!/bin/sh\nPYTHONPATH={module} exec python3 \"$@\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

async fn check_refusals(app: &TestApp, mode: &str) {
    for (prefix, want, error, retry, words) in CASES {
        let resp = app.get(&format!("/api/v2/videos/youtube/{}", yt_id(prefix))).await;
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status.as_u16(), want, "{mode} {prefix}: {body}");
        assert_error_shape(status, &body);
        assert_eq!(body["error"], error, "{mode} {prefix}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(words), "{mode} {prefix}: the platform's words: {body}");
        assert_eq!(retry_after.is_some(), retry, "{mode} {prefix}: Retry-After {retry_after:?}");
        // The stream routes say the same.
        let (status, _) = app.json(&format!("/api/v2/stream/direct/youtube/{}", yt_id(prefix))).await;
        assert_eq!(status.as_u16(), want, "{mode} {prefix} direct");
    }
    let bot = app.prom("reelay_extractions_total{outcome=\"bot_check\"}").await;
    let geo = app.prom("reelay_extractions_total{outcome=\"geo_blocked\"}").await;
    assert_eq!((bot, geo), (4.0, 2.0), "{mode}: extractions counted by outcome");
}

#[tokio::test]
async fn refusals_are_read_plainly_by_a_process_per_extraction() {
    let app = spawn_app().await;
    check_refusals(&app, "process").await;
}

#[tokio::test]
async fn refusals_are_read_plainly_by_the_worker_pool() {
    let dir = tempfile::tempdir().unwrap();
    let python = standin_python(dir.path());
    let app = spawn().arg("--extractor", "worker").arg("--ytdlp-python", python.display()).start().await;
    check_refusals(&app, "worker").await;
}

#[tokio::test]
async fn lasting_refusals_are_remembered_and_bot_checks_are_not() {
    let app = spawn().arg("--error-cache-ttl", 2).start().await;
    for (prefix, remembered) in [("unavailabl", true), ("geoblock", true), ("agegate", true), ("botcheck", false)] {
        let id = yt_id(prefix);
        let before = app.fake.runs();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(app.get(&format!("/api/v2/videos/youtube/{id}")).await.status().as_u16());
        }
        assert!(statuses.windows(2).all(|w| w[0] == w[1]), "{prefix}: the same answer each time: {statuses:?}");
        let runs = app.fake.runs() - before;
        assert_eq!(runs, if remembered { 1 } else { 5 }, "{prefix}: yt-dlp runs for five lookups");
    }
    // Remembered for ERROR_CACHE_TTL only: then yt-dlp is asked again.
    let id = yt_id("geoblock");
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    let before = app.fake.runs();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.get(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(app.fake.runs(), before + 1, "asked again after ERROR_CACHE_TTL");

    // Off with 0.
    let off = spawn().arg("--error-cache-ttl", 0).start().await;
    let id = yt_id("unavailabl");
    for _ in 0..3 {
        off.get(&format!("/api/v2/videos/youtube/{id}")).await;
    }
    assert_eq!(off.fake.runs(), 3);
}

#[tokio::test]
async fn a_refusal_is_shared_through_redis() {
    let url = redis_url();
    let a = spawn().redis(&url).start().await;
    let b = spawn().redis(&url).origin(&a.origin).start().await;
    let id = yt_id("geoblock");
    let (status, _) = a.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 451);
    let (status, body) = b.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 451, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("in your country"), "{body}");
    assert_eq!((a.fake.runs(), b.fake.runs()), (1, 0), "the second instance read the refusal from Redis");
}
