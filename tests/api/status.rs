//! The operators' status page: the streams running now with their viewers
//! and bytes, the store, extractions, yt-dlp and Redis, charts of the last
//! minutes; refused to strangers; looked at in headless Chromium while
//! streams run (tests/browser/status.mjs, a screenshot in target/tmp/ui/).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// A viewer that reads a big file slowly, so its stream stays open.
/// A viewer at about 2 MB/s: `big.bin` (300 MB) lasts minutes, longer than
/// any test that counts viewers (paced by chunk, at 20 ms a chunk, three of
/// them finished it within a loaded suite's Chromium run and the row read 0).
fn slow_viewer(app: &TestApp, path: String) -> tokio::task::JoinHandle<()> {
    let (http, url) = (app.http.clone(), format!("{}{path}", app.base));
    tokio::spawn(async move {
        let mut resp = http.get(url).send().await.unwrap();
        while let Ok(Some(chunk)) = resp.chunk().await {
            tokio::time::sleep(Duration::from_micros(chunk.len() as u64 / 2)).await;
        }
    })
}

async fn status(app: &TestApp, headers: &[(&str, &str)], query: &str) -> (u16, Value) {
    let mut req = app.http.get(format!("{}/api/v2/system/status{query}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Two viewers of one video: one row, two viewers, bytes flowing, most of
/// them from the store; the store, extractions and yt-dlp reported; no
/// client address anywhere in it.
#[tokio::test]
async fn the_status_names_what_is_watched_now() {
    let app = spawn().arg("--api-keys", "api-key").start().await;
    let id = yt_id("bigbigbigbi");
    let path = format!("/api/v2/stream/proxy/youtube/{id}?quality=360p&api_key=api-key");
    let viewers = [slow_viewer(&app, path.clone()), slow_viewer(&app, path)];
    // Two samples with the viewers on (the board samples every 5 s).
    let mut report = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (code, body) = status(&app, &[], "").await;
        assert_eq!(code, 200, "loopback needs no key, API_KEYS or not: {body}");
        if body["streams"].as_array().is_some_and(|s| s.iter().any(|r| r["out_bps"].as_f64() > Some(0.0))) {
            report = body;
            break;
        }
    }
    let row = &report["streams"][0];
    assert_eq!(row["title"], format!("Stand-in video {id}"), "{report:#}");
    assert_eq!(
        (row["platform"].as_str(), row["viewers"].as_i64(), row["live"].as_bool()),
        (Some("youtube"), Some(2), Some(false))
    );
    assert!(row["origin_bps"].as_f64().unwrap() <= row["out_bps"].as_f64().unwrap(), "one fetch for two: {row}");
    assert!(row["store_share"].as_f64().is_some_and(|s| s > 0.0), "some of it from the store: {row}");
    // What the origin says: no byte of the file was asked for twice.
    let mut ranges: Vec<(u64, u64)> = app
        .origin
        .requests("/media/big.bin")
        .iter()
        .map(|(_, h)| {
            let range = h.get("range").map(|r| r.to_str().unwrap().trim_start_matches("bytes=").to_owned());
            let (a, b) = range.as_deref().and_then(|r| r.split_once('-')).unwrap_or(("0", ""));
            (a.parse().unwrap(), b.parse().unwrap_or(u64::MAX))
        })
        .collect();
    ranges.sort();
    assert!(!ranges.is_empty());
    assert!(ranges.windows(2).all(|p| p[1].0 > p[0].1), "each byte fetched once for both viewers: {ranges:?}");
    assert!(report["totals"]["active_streams"].as_i64().unwrap() >= 2, "{report:#}");
    assert!(report["store"]["memory_budget"].as_u64().unwrap() > 0);
    assert!(report["store"]["memory_bytes"].as_u64().unwrap() > 0, "{:#}", report["store"]);
    assert_eq!(report["store"]["disk_budget"], Value::Null, "no disk tier here");
    assert!(report["extractions"]["outcomes"].as_array().unwrap().iter().any(|o| o[0] == "ok"), "{report:#}");
    assert_eq!(report["ytdlp"]["version"], "2099.01.01-stand-in");
    assert_eq!(report["redis"], "disabled");
    assert!(!report["history"].as_array().unwrap().is_empty());
    assert!(!report.to_string().contains("127.0.0.1"), "no addresses: {report}");
    for v in viewers {
        v.abort();
    }
}

/// Not for strangers: a client behind a trusted proxy with no admin key is
/// refused (neither the proxy's own address nor an address written into
/// `X-Forwarded-For` lets it in); an admin key does.
#[tokio::test]
async fn strangers_are_refused() {
    let app = spawn().arg("--trusted-proxies", "127.0.0.1/32").arg("--admin-keys", "adm-1,adm-2").start().await;
    let stranger = [("x-forwarded-for", "203.0.113.5")];
    let (code, body) = status(&app, &stranger, "").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("ADMIN_KEYS"), "{body}");
    assert_eq!(status(&app, &[stranger[0], ("x-admin-key", "adm-2")], "").await.0, 200);
    assert_eq!(status(&app, &stranger, "?admin_key=adm-1").await.0, 200);
    assert_eq!(status(&app, &[stranger[0], ("authorization", "Bearer adm-1")], "").await.0, 200);
    assert_eq!(status(&app, &stranger, "?admin_key=wrong").await.0, 403);
    let page =
        app.http.get(format!("{}/ui/status", app.base)).header("x-forwarded-for", "203.0.113.5").send().await.unwrap();
    assert_eq!(page.status(), 403);
    // A client cannot claim to be local.
    assert_eq!(status(&app, &[("x-forwarded-for", "127.0.0.1")], "").await.0, 403);
    // The operator on this machine (or a trusted one), asking directly, needs no key.
    assert_eq!(status(&app, &[], "").await.0, 200);
    let page = app.get("/ui/status").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing from elsewhere");
}

/// The page in Chromium while streams run: the row appears with its title
/// and viewers, the numbers change between refreshes, the charts are drawn.
#[tokio::test]
async fn an_operator_watches_it_in_chromium() {
    let app = spawn_app().await;
    let id = yt_id("bigbigbigbi");
    let path = format!("/api/v2/stream/proxy/youtube/{id}?quality=360p");
    let viewers = [slow_viewer(&app, path.clone()), slow_viewer(&app, path.clone()), slow_viewer(&app, path)];
    // Lookups while the page watches.
    let (http, base) = (app.http.clone(), app.base.clone());
    let lookups = tokio::spawn(async move {
        loop {
            let _ = http.get(format!("{base}/api/v2/videos/youtube/{}", yt_id("stat"))).send().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&artifacts).unwrap();
    let config = serde_json::json!({"base": app.base, "artifacts": artifacts});
    let report = browser_report("status.mjs", &config).await;
    lookups.abort();
    for v in viewers {
        v.abort();
    }
    assert_eq!(report["status"], 200);
    assert_eq!(report["outside_requests"], serde_json::json!([]), "nothing from a CDN");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report:#}");
    let (first, later) = (&report["first"], &report["later"]);
    let row = &later["rows"][0];
    assert_eq!(row[0], format!("Stand-in video {id}"), "{later:#}");
    assert_eq!((row[1].as_str(), row[3].as_str()), (Some("youtube"), Some("3")), "{later:#}");
    assert!(row[4].as_str().unwrap().ends_with("/s") && row[4] != "0 B/s", "bytes flow: {row}");
    assert_ne!(first["meta"], later["meta"], "the page refreshed");
    // A steady load keeps one rate steady (1.4/s twice is right), so the
    // check is that the board's figures as a whole move between refreshes.
    let figures = |r: &Value| ["requests", "out", "origin", "store"].map(|k| r[k].clone());
    assert_ne!(figures(first), figures(later), "the numbers change: {first} {later}");
    let drawn: Vec<u64> = later["drawn"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
    assert_eq!(drawn.len(), 4);
    assert!(drawn[0] > 0 && drawn[1] > 0, "the bytes and requests charts are drawn: {drawn:?}");
    assert!(later["deps"].as_str().unwrap().contains("2099.01.01-stand-in"), "{later:#}");
    assert!(later["store"].as_str().unwrap().contains(" of "), "memory against its budget: {later:#}");
    assert!(std::path::Path::new(report["screenshot"].as_str().unwrap()).exists());
}
