//! The real yt-dlp against the local origin, through its generic extractor.

use crate::helpers::*;

#[tokio::test]
async fn real_ytdlp_on_a_direct_media_url() {
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let media_url = format!("{}/media/clip.mp4", app.origin.base);
    let (status, body) = app.json(&format!("/api/v2/videos?url={media_url}")).await;
    assert_eq!(status, 200, "{body}");
    let formats = body["data"]["formats"].as_array().unwrap();
    assert!(formats.iter().any(|f| f["url"] == media_url.as_str()), "{body}");

    let resp = app.get(&format!("/api/v2/stream/direct?url={media_url}")).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], media_url.as_str());

    let resp = app.get(&format!("/api/v2/stream/proxy?url={media_url}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());
}

#[tokio::test]
async fn real_ytdlp_on_an_html_page_with_a_video() {
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let (status, body) = app.json(&format!("/api/v2/videos?url={}/page.html", app.origin.base)).await;
    assert_eq!(status, 200, "{body}");
    let formats = body["data"]["formats"].as_array().unwrap();
    assert!(formats.iter().any(|f| f["url"].as_str().unwrap().ends_with("/media/clip.mp4")), "{body}");
    assert_eq!(app.health_until("healthy").await.0, 200);
}

#[tokio::test]
async fn real_ytdlp_reports_a_missing_page_as_an_error() {
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/none.mp4", app.origin.base)).await;
    assert!(status == 404 || status == 502, "{status}: {body}");
    assert_error_shape(status, &body);
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");
}

/// The Python that has yt_dlp (next to the real yt-dlp).
fn venv_python() -> std::path::PathBuf {
    real_ytdlp().parent().unwrap().join("python")
}

/// Everything about worker mode in one test, since it kills workers.
#[tokio::test]
async fn worker_mode_extracts_with_a_warm_yt_dlp_and_survives_losing_it() {
    let app = spawn().arg("--extractor", "worker").arg("--ytdlp-python", venv_python().display()).start().await;
    let (_, health) = app.health_until("healthy").await;
    assert_eq!(health["services"]["yt-dlp"], "available");
    let media_url = format!("{}/media/clip.mp4", app.origin.base);
    let (status, body) = app.json(&format!("/api/v2/videos?url={media_url}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["formats"].as_array().unwrap().iter().any(|f| f["url"] == media_url.as_str()));
    let (status, body) = app.json(&format!("/api/v2/videos?url={}/page.html", app.origin.base)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.json(&format!("/api/v2/playlists?url={}/list.html", app.origin.base)).await;
    assert_eq!((status.as_u16(), &body["data"]["entry_count"]), (200, &3.into()), "flat listing in a worker: {body}");
    // A warm extraction is fast; the figure belongs to the benchmark, this only shows the pool is reused.
    let resp = app.get(&format!("/api/v2/stream/proxy?url={}/media/clip.mp4%3Fx=1", app.origin.base)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());

    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/none.mp4", app.origin.base)).await;
    assert!(status == 404 || status == 502, "{status}: {body}");
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");

    // Workers killed from outside are replaced on the next request.
    std::process::Command::new("pkill").args(["-f", "reelay's persistent extractor"]).status().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut last = 0;
    for i in 0..2 {
        let (status, _) = app.json(&format!("/api/v2/videos?url={}/media/clip.mp4%3Fafter={i}", app.origin.base)).await;
        last = status.as_u16();
    }
    assert_eq!(last, 200, "a fresh worker answers");
}

#[tokio::test]
async fn worker_mode_with_a_python_lacking_yt_dlp_is_unavailable() {
    let app = spawn().arg("--extractor", "worker").arg("--ytdlp-python", "/usr/bin/false").start().await;
    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/clip.mp4", app.origin.base)).await;
    assert_eq!(status, 503, "{body}");
    assert_error_shape(status, &body);
}
