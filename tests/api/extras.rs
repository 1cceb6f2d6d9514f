//! yt-dlp's extras on a default install: the venv `scripts/setup` makes has
//! a JavaScript runtime (Deno from PyPI), the challenge solver (yt-dlp-ejs)
//! and impersonation (curl_cffi); `/health` and `/metrics` say so in both
//! extractor modes, and a yt-dlp without them is reported as such, with a
//! warning at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::*;

#[test]
fn the_venvs_ytdlp_lists_a_js_runtime_the_challenge_solver_and_impersonation() {
    let out = std::process::Command::new(real_ytdlp()).arg("-v").output().unwrap();
    let header = String::from_utf8_lossy(&out.stderr);
    assert!(header.contains("[debug] JS runtimes: deno-"), "{header}");
    assert!(header.contains("yt_dlp_ejs-"), "{header}");
    assert!(header.contains("curl_cffi-"), "{header}");
}

/// Waits for the first yt-dlp reading of `/health`.
async fn health_with_ytdlp(app: &TestApp) -> serde_json::Value {
    for _ in 0..200 {
        let (_, body) = app.json("/health").await;
        if body["ytdlp_version"].is_string() {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("yt-dlp was never read: {:?}", app.json("/health").await);
}

#[tokio::test]
async fn health_and_metrics_name_the_runtime_in_both_extractor_modes() {
    for mode in ["process", "worker"] {
        let app = spawn()
            .ytdlp(real_ytdlp())
            .arg("--extractor", mode)
            .arg("--ytdlp-python", venv_python().display())
            .start()
            .await;
        let body = health_with_ytdlp(&app).await;
        assert_eq!(body["services"]["yt-dlp"], "available", "{mode}: {body}");
        let runtime = body["ytdlp_js_runtime"].as_str().unwrap_or_default();
        assert!(runtime.starts_with("deno 2."), "{mode}: {body}");
        assert!(body["ytdlp_ejs"].as_str().is_some_and(|v| v.starts_with("0.")), "{mode}: {body}");
        let impersonate = body["ytdlp_impersonate"].as_str().unwrap_or_default();
        assert!(impersonate.starts_with("curl_cffi "), "{mode}: {body}");
        let version = body["ytdlp_version"].as_str().unwrap();
        let labels = [("version", version), ("js_runtime", runtime), ("impersonate", impersonate)];
        assert_eq!(app.prom_with("reelay_ytdlp_info", &labels).await, 1.0, "{mode}");
    }
}

/// The venv's yt_dlp package alone, run by a Python outside the venv with no
/// site-packages and a PATH without Deno: what a bare `pip install yt-dlp`
/// gives. Returns the yt-dlp launcher and the Python for worker mode.
fn bare_ytdlp(dir: &Path) -> (PathBuf, PathBuf) {
    let site = std::process::Command::new(venv_python())
        .args(["-c", "import sys, yt_dlp, os; print(os.path.dirname(yt_dlp.__path__[0])); print(sys.base_prefix)"])
        .output()
        .unwrap();
    let said = String::from_utf8(site.stdout).unwrap();
    let (site, base) = said.trim().split_once('\n').unwrap();
    let only = dir.join("only-yt-dlp");
    std::fs::create_dir_all(&only).unwrap();
    std::os::unix::fs::symlink(Path::new(site).join("yt_dlp"), only.join("yt_dlp")).unwrap();
    let python = format!("PATH=/usr/bin:/bin PYTHONPATH={} exec {base}/bin/python3 -S", only.display());
    let (ytdlp, worker) = (dir.join("yt-dlp"), dir.join("python"));
    write_executable(&ytdlp, &format!("#!/bin/sh\n{python} -m yt_dlp \"$@\"\n"));
    write_executable(&worker, &format!("#!/bin/sh\n{python} \"$@\"\n"));
    (ytdlp, worker)
}

#[tokio::test]
async fn a_ytdlp_without_its_extras_reports_nulls_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (ytdlp, python) = bare_ytdlp(dir.path());
    let out = std::process::Command::new(&ytdlp).arg("-v").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("JS runtimes: none"), "the stand-in is bare");
    for mode in ["process", "worker"] {
        let python = python.display().to_string();
        let bin = Binary::start_ytdlp(&ytdlp, &["--extractor", mode, "--ytdlp-python", &python], &[]).await;
        let http = reqwest::Client::new();
        let mut body = serde_json::Value::Null;
        for _ in 0..200 {
            body = http.get(format!("{}/health", bin.base)).send().await.unwrap().json().await.unwrap();
            if body["ytdlp_version"].is_string() && bin.logs().contains("lacks extras") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(body["services"]["yt-dlp"], "available", "{mode}: {body}");
        for key in ["ytdlp_js_runtime", "ytdlp_ejs", "ytdlp_impersonate", "ytdlp_sabr"] {
            assert!(body[key].is_null(), "{mode}: {key} in {body}");
        }
        let logs = bin.logs();
        let warning = logs.lines().find(|l| l.contains("lacks extras")).unwrap_or_else(|| panic!("{mode}: {logs}"));
        assert!(warning.contains("YouTube formats may be missing: no JavaScript runtime"), "{warning}");
        assert!(warning.contains("yt-dlp-ejs") && warning.contains("curl_cffi"), "{warning}");
        assert_eq!(logs.matches("lacks extras").count(), 1, "said once: {logs}");
    }
}

/// The allocator's own counters: live bytes within the pages in use within
/// what is mapped, three readings and not one number repeated, the heap's
/// pages fewer than the resident set the kernel reports.
#[tokio::test]
async fn health_memory_comes_from_the_allocator() {
    let app = spawn_app().await;
    let (_, body) = app.json("/health").await;
    let m = &body["memory"];
    let (alloc, active, mapped) =
        (m["alloc_mb"].as_f64().unwrap(), m["total_alloc_mb"].as_f64().unwrap(), m["sys_mb"].as_f64().unwrap());
    assert!(alloc > 0.0 && alloc <= active && active <= mapped, "{m}");
    assert!(alloc < mapped, "three readings, not one number repeated: {m}");
    assert_eq!(m["num_gc"], 0);
    let rss = app.prom("process_resident_memory_bytes").await / (1024.0 * 1024.0);
    assert!(rss > 0.0);
    // The resident set also holds the program's code and stacks: the heap's
    // pages are fewer.
    assert!(active + 0.5 < rss, "the heap's pages ({active} MB) are not the resident set ({rss:.1} MB): {m}");
}
