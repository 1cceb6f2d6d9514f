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

    let resp = app.follow(&format!("/api/v2/stream/proxy?url={media_url}")).await;
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
    let resp = app.follow(&format!("/api/v2/stream/proxy?url={}/media/clip.mp4%3Fx=1", app.origin.base)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());

    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/none.mp4", app.origin.base)).await;
    assert!(status == 404 || status == 502, "{status}: {body}");
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");

    // Workers killed from outside are replaced on the next request.
    // (Only this test's: other tests' workers run a different interpreter.)
    let ours = format!("^{} -u -c", venv_python().display());
    let killed = std::process::Command::new("pkill").args(["-f", &ours]).status().unwrap();
    assert!(killed.success(), "there were workers to kill");
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

/// A Python whose yt_dlp is the stand-in in tests/fixtures/stand_in_yt_dlp,
/// recording worker pids in `pids`.
fn stand_in_python(dir: &std::path::Path, pids: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("python");
    let script = format!(
        "#!/bin/sh\nPYTHONPATH={MANIFEST_DIR}/tests/fixtures/stand_in_yt_dlp STAND_IN_PIDS={} exec python3 \"$@\"\n",
        pids.display()
    );
    write_executable(&path, &script);
    path
}

#[tokio::test]
async fn a_hung_worker_is_killed_at_the_timeout_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let python = stand_in_python(dir.path(), &pids);
    let app = spawn()
        .arg("--extractor", "worker")
        .arg("--ytdlp-python", python.display())
        .arg("--extract-timeout", 1)
        .start()
        .await;
    // The health check's worker is in the pool first; the lookup below takes it.
    assert_eq!(app.health_until("healthy").await.1["services"]["yt-dlp"], "available");
    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/sleepy.mp4", app.origin.base)).await;
    assert_eq!(status, 504, "{body}");
    assert_error_shape(status, &body);

    let (status, body) = app.json(&format!("/api/v2/videos?url={}/media/clip.mp4", app.origin.base)).await;
    assert_eq!((status.as_u16(), &body["data"]["title"]), (200, &"Worker stand-in".into()), "a fresh worker: {body}");

    // The hung worker is gone (not even a zombie); its replacement lives on in the pool.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(' ').nth(2).is_none_or(|st| st != "Z"))
    };
    let all = std::fs::read_to_string(&pids).unwrap();
    let alive: Vec<bool> = all.lines().map(alive).collect();
    assert_eq!(alive, [false, true], "{all}");
}

#[tokio::test]
async fn workers_get_the_cookie_copy_and_it_is_gone_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let python = stand_in_python(dir.path(), &pids);
    let cookies = dir.path().join("cookies");
    std::fs::create_dir(&cookies).unwrap();
    std::fs::write(cookies.join("youtube.txt"), ".youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret\n").unwrap();
    let app = spawn()
        .arg("--extractor", "worker")
        .arg("--ytdlp-python", python.display())
        .arg("--cookies-dir", cookies.display())
        .start()
        .await;
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("wk"))).await;
    assert_eq!((status.as_u16(), &body["data"]["title"]), (200, &"Worker stand-in (signed in)".into()), "{body}");
    let given = std::fs::read_to_string(dir.path().join("pids.cookies")).unwrap();
    let copy = std::path::Path::new(given.trim());
    assert!(!copy.starts_with(&cookies), "a copy: {given}");
    assert!(!copy.exists(), "written back by the worker, then removed: {given}");
}

/// `YTDLP_ARGS` reach yt-dlp in both extractor modes (the origin sees the
/// header they add), and options yt-dlp rejects stop start-up with its words.
#[tokio::test]
async fn ytdlp_args_apply_in_both_modes_and_bad_ones_stop_start_up() {
    let args = "--add-headers 'X-Reelay-Args:from YTDLP_ARGS' --socket-timeout 20";
    for mode in ["process", "worker"] {
        let app = spawn()
            .ytdlp(real_ytdlp())
            .arg("--extractor", mode)
            .arg("--ytdlp-python", venv_python().display())
            .arg("--ytdlp-args", args)
            .start()
            .await;
        let (status, body) = app.json(&format!("/api/v2/videos?url={}/page.html?{mode}", app.origin.base)).await;
        assert_eq!(status, 200, "{mode}: {body}");
        let seen = app.origin.requests(&format!("/page.html?{mode}"));
        assert!(!seen.is_empty(), "{mode}: yt-dlp fetched the page");
        assert!(
            seen.iter().all(|(_, h)| h.get("x-reelay-args").is_some_and(|v| v == "from YTDLP_ARGS")),
            "{mode}: the header YTDLP_ARGS adds: {:?}",
            seen.iter().map(|(_, h)| h.get("x-reelay-args")).collect::<Vec<_>>()
        );
    }
    for mode in ["process", "worker"] {
        let config = reelay::config::Config::from_args([
            "reelay",
            "--port",
            "0",
            "--ytdlp-path",
            real_ytdlp().to_str().unwrap(),
            "--ytdlp-python",
            venv_python().to_str().unwrap(),
            "--extractor",
            mode,
            "--ytdlp-args",
            "--no-such-option-anywhere",
        ])
        .unwrap();
        let err = reelay::app::App::build(config).await.err().expect("start-up refused").to_string();
        assert!(err.contains("YTDLP_ARGS") && err.contains("no such option"), "{mode}: {err}");
    }
    let config =
        reelay::config::Config::from_args(["reelay", "--port", "0", "--ytdlp-args", "--a 'unbalanced"]).unwrap();
    let err = reelay::app::App::build(config).await.err().expect("start-up refused").to_string();
    assert!(err.contains("unbalanced quotes"), "{err}");
}

/// The generic extractor gives one file, not separate DASH video and audio:
/// the manifest routes say so and name the proxy link, which plays it.
#[tokio::test]
async fn real_ytdlp_on_one_file_has_no_manifest_but_a_proxy_link() {
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let media_url = format!("{}/media/dash-v720.mp4", app.origin.base);
    let (status, body) = app.json(&format!("/api/v2/stream/manifest/master.m3u8?url={media_url}")).await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(status, &body);
    let detail = body["detail"].as_str().unwrap();
    let proxy = &detail[detail.find("/api/v2/stream/proxy?url=").unwrap_or_else(|| panic!("{body}"))..];
    let resp = app.get(&format!("{proxy}&player=unity")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), media("dash-v720.mp4").as_slice());
}
