//! `YTDLP_UPDATE`: releases come from a package index the test makes from
//! stand-in wheels (tests/fixtures/make_ytdlp_wheel.py), never the network.
//! A broken release is refused by the canary and the old one stays; a good
//! one is switched to, in both extractor modes, without failing a request.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// Adds a stand-in release to the index in `dir`.
async fn release(dir: &Path, version: &str, broken: bool) {
    release_with(dir, version, if broken { &["--broken"] } else { &[] }).await
}

/// Adds a stand-in release made with these flags of make_ytdlp_wheel.py.
async fn release_with(dir: &Path, version: &str, flags: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make_ytdlp_wheel.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script).arg(version).arg(dir).args(flags);
    assert!(cmd.status().await.unwrap().success());
}

/// A Python (the venv's, which has pip) whose pip only knows the index in `wheels`.
fn python_with_index(dir: &Path, wheels: &Path) -> PathBuf {
    let path = dir.join("python");
    let script = format!(
        "#!/bin/sh\nPIP_NO_INDEX=1 PIP_FIND_LINKS={} exec {} \"$@\"\n",
        wheels.display(),
        venv_python().display()
    );
    write_executable(&path, &script);
    path
}

/// Polls `/health` until `done` holds (a minute at most).
async fn health_when(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (_, body) = app.json("/health").await;
        if done(&body) {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The title of a generic URL's video, from whichever yt-dlp is in use.
async fn title_of(app: &TestApp, url: &str) -> (u16, String) {
    let q: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    let (status, body) = app.json(&format!("/api/v2/videos?url={q}")).await;
    (status.as_u16(), body["data"]["title"].as_str().unwrap_or_default().to_owned())
}

/// A newer release that cannot extract is refused by the canary and the
/// release in use stays; the next good one is installed, checked and used.
#[tokio::test]
async fn a_broken_release_is_refused_and_a_good_one_is_switched_to() {
    let (wheels, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    release(wheels.path(), "2099.2.1", true).await;
    let origin = spawn_origin().await;
    let app = spawn()
        .origin(&origin)
        .arg("--ytdlp-update", "stable")
        .arg("--ytdlp-update-interval", "1s")
        .arg("--ytdlp-python", python_with_index(work.path(), wheels.path()).display())
        .arg("--ytdlp-update-dir", work.path().join("releases").display())
        .arg("--ytdlp-canary-url", format!("{}/media/clip.mp4", origin.base))
        .start()
        .await;
    let body = health_when(&app, "the canary refused", |b| b["ytdlp_update"]["last_outcome"] == "canary_failed").await;
    assert_eq!(body["ytdlp_version"], "2099.01.01-stand-in", "{body}");
    assert_eq!(body["ytdlp_update"]["channel"], "stable");
    assert!(body["ytdlp_update"]["last_error"].as_str().unwrap().contains("broken"), "{body}");
    assert_eq!(body["services"]["yt-dlp"], "available");
    assert!(app.prom("reelay_ytdlp_updates_total{outcome=\"canary_failed\"}").await >= 1.0);
    assert_eq!(app.prom_with("reelay_ytdlp_info", &[("version", "2099.01.01-stand-in")]).await, 1.0);
    let (status, title) = title_of(&app, &format!("https://www.youtube.com/watch?v={}", yt_id("before"))).await;
    assert_eq!((status, title.starts_with("Stand-in video")), (200, true), "the old release still extracts");

    release(wheels.path(), "2099.3.1", false).await;
    let body = health_when(&app, "switched", |b| b["ytdlp_version"] == "2099.3.1").await;
    assert!(body["ytdlp_update"]["last_update"].is_string(), "{body}");
    assert_eq!(app.prom_with("reelay_ytdlp_info", &[("version", "2099.3.1")]).await, 1.0);
    assert_eq!(
        app.prom_with("reelay_ytdlp_info", &[("version", "2099.01.01-stand-in")]).await,
        0.0,
        "one version series"
    );
    let clip = format!("{}/media/clip.mp4?after=1", origin.base);
    assert_eq!(title_of(&app, &clip).await, (200, "yt-dlp 2099.3.1".to_owned()));
    let q: String = url::form_urlencoded::byte_serialize(clip.as_bytes()).collect();
    let resp = app.get(&format!("/api/v2/stream/proxy?url={q}")).await;
    assert_eq!(resp.bytes().await.unwrap(), media("clip.mp4"));
    // Nothing newer: later checks leave it, and only its folder is kept.
    health_when(&app, "up to date", |b| b["ytdlp_update"]["last_outcome"] == "current").await;
    assert!(app.prom("reelay_ytdlp_updates_total{outcome=\"updated\"}").await == 1.0);
    let kept = std::fs::read_dir(work.path().join("releases")).unwrap().count();
    assert!(kept <= 2, "the release in use (and at most one being checked): {kept}");
}

/// `stable` never takes a pre-release; `nightly` does (yt-dlp's nightly
/// builds are PyPI pre-releases).
#[tokio::test]
async fn nightly_takes_pre_releases_and_stable_does_not() {
    let (wheels, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    release(wheels.path(), "2099.3.1", false).await;
    release(wheels.path(), "2099.4.2.dev7", false).await;
    let python = python_with_index(work.path(), wheels.path());
    for (channel, want) in [("stable", "2099.3.1"), ("nightly", "2099.4.2.dev7")] {
        let app = spawn()
            .arg("--ytdlp-update", channel)
            .arg("--ytdlp-python", python.display())
            .arg("--ytdlp-update-dir", work.path().join(channel).display())
            .start()
            .await;
        let body = health_when(&app, channel, |b| b["ytdlp_update"]["last_outcome"] == "updated").await;
        let body = if body["ytdlp_version"] == want {
            body
        } else {
            health_when(&app, channel, |b| b["ytdlp_version"] == want).await
        };
        assert_eq!(body["ytdlp_update"]["channel"], channel, "{body}");
    }
}

/// Worker mode: the pool rolls over to the new release while extractions
/// run; none fails, and those after the switch come from the new release.
#[tokio::test]
async fn workers_roll_over_without_failing_a_request() {
    let (wheels, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    release(wheels.path(), "2099.3.1", false).await;
    let origin = spawn_origin().await;
    let app = spawn()
        .origin(&origin)
        .ytdlp(real_ytdlp())
        .arg("--extractor", "worker")
        .arg("--extract-concurrency", 2)
        .arg("--ytdlp-update", "stable")
        .arg("--ytdlp-python", python_with_index(work.path(), wheels.path()).display())
        .arg("--ytdlp-update-dir", work.path().join("releases").display())
        .arg("--ytdlp-canary-url", format!("{}/media/clip.mp4", origin.base))
        .start()
        .await;
    let app = std::sync::Arc::new(app);
    let mut n = 0;
    let mut titles = Vec::new();
    let start = Instant::now();
    loop {
        // Two lookups at a time, each a new URL (a cache miss, so an extraction).
        let lookups: Vec<_> = (0..2)
            .map(|_| {
                n += 1;
                let (app, url) = (app.clone(), format!("{}/media/clip.mp4?n={n}", origin.base));
                tokio::spawn(async move { title_of(&app, &url).await })
            })
            .collect();
        for l in lookups {
            let (status, title) = l.await.unwrap();
            assert_eq!(status, 200, "every extraction succeeds while the workers roll over ({title})");
            titles.push(title);
        }
        if titles.last().is_some_and(|t| t == "yt-dlp 2099.3.1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{titles:?}");
    }
    assert!(titles.first().is_some_and(|t| t != "yt-dlp 2099.3.1"), "the old release answered first: {titles:?}");
    let (_, body) = app.json("/health").await;
    assert_eq!(body["ytdlp_update"]["last_outcome"], "updated", "{body}");
    let (status, title) = title_of(&app, &format!("{}/media/clip.mp4?n=last", origin.base)).await;
    assert_eq!((status, title.as_str()), (200, "yt-dlp 2099.3.1"));
}

/// The release in use has a JavaScript runtime (the venv's yt-dlp with Deno):
/// a newer release with which no runtime runs would cripple YouTube, so it
/// is refused; the next one, whose runtime runs, is taken.
#[tokio::test]
async fn a_release_without_a_working_js_runtime_is_refused() {
    let (wheels, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    release_with(wheels.path(), "2099.5.1", &["--no-js"]).await;
    let app = spawn()
        .ytdlp(real_ytdlp())
        .arg("--ytdlp-update", "stable")
        .arg("--ytdlp-update-interval", "1s")
        .arg("--ytdlp-python", python_with_index(work.path(), wheels.path()).display())
        .arg("--ytdlp-update-dir", work.path().join("releases").display())
        .start()
        .await;
    let body = health_when(&app, "refused", |b| b["ytdlp_update"]["last_outcome"] == "canary_failed").await;
    let why = body["ytdlp_update"]["last_error"].as_str().unwrap();
    assert!(why.contains("2099.5.1") && why.contains("no JavaScript runtime"), "{body}");
    assert!(body["ytdlp_js_runtime"].as_str().unwrap().starts_with("deno "), "still the venv's: {body}");
    assert_ne!(body["ytdlp_version"], "2099.5.1");

    release(wheels.path(), "2099.6.1", false).await;
    let body = health_when(&app, "switched", |b| b["ytdlp_version"] == "2099.6.1").await;
    assert!(body["ytdlp_js_runtime"].as_str().unwrap().starts_with("deno "), "{body}");
    assert_eq!(app.prom_with("reelay_ytdlp_info", &[("version", "2099.6.1"), ("ejs", "none")]).await, 1.0);
}

/// `YTDLP_UPDATE` set to a pip requirement installs what it names: a SABR
/// build keeps the release's version, and is taken because it brings SABR
/// support the release in use lacks; `/health` says so, and names the
/// channel without the requirement (its URL may carry a token).
#[tokio::test]
async fn a_requirement_brings_a_sabr_build_of_the_same_version() {
    let (wheels, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = tokio::process::Command::new(real_ytdlp()).arg("--version").output().await.unwrap();
    let version = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    release_with(wheels.path(), &version, &["--sabr"]).await;
    let app = spawn()
        .ytdlp(real_ytdlp())
        .arg("--ytdlp-update", format!("yt-dlp=={version}"))
        .arg("--ytdlp-python", python_with_index(work.path(), wheels.path()).display())
        .arg("--ytdlp-update-dir", work.path().join("releases").display())
        .start()
        .await;
    let body = health_when(&app, "switched", |b| b["ytdlp_update"]["last_outcome"] != Value::Null).await;
    assert_eq!(body["ytdlp_update"]["last_outcome"], "updated", "{body}");
    assert_eq!(body["ytdlp_update"]["channel"], "requirement", "{body}");
    assert!(!body.to_string().contains("yt-dlp=="), "{body}");
    let body = health_when(&app, "SABR read", |b| !b["ytdlp_sabr"].is_null()).await;
    assert_eq!(body["ytdlp_sabr"], "protobug 1.0.0", "{body}");
    assert_eq!(body["ytdlp_version"], version.as_str());
}
