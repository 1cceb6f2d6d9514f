//! Platform sign-in: cookie files in COOKIES_DIR reach the extractor as a
//! private copy, the status endpoint reads their expiry dates, signed-in
//! results are cached apart from anonymous ones, and no cookie value ever
//! appears in a response or a log line.

use std::path::Path;
use std::time::Duration;

use crate::helpers::*;

const SECRET: &str = "s3cr3t-cookie-value-9f8e7d";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A Netscape cookie file with `platform`'s session cookies, expiring at `expiry`.
fn cookie_file(dir: &Path, platform: &str, expiry: i64) {
    let body = match platform {
        "youtube" => format!(
            "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t{expiry}\tSID\t{SECRET}\n\
             #HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t{}\t__Secure-3PSID\t{SECRET}\n.youtube.com\tTRUE\t/\tFALSE\t0\tPREF\tf6=8\n",
            expiry + 3600
        ),
        "bilibili" => format!(".bilibili.com\tTRUE\t/\tFALSE\t{expiry}\tSESSDATA\t{SECRET}\n"),
        other => panic!("no cookie file for {other}"),
    };
    std::fs::write(dir.join(format!("{platform}.txt")), body).unwrap();
}

#[tokio::test]
async fn status_reflects_valid_expired_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let expiry = now() + 30 * 86400;
    cookie_file(dir.path(), "youtube", expiry);
    cookie_file(dir.path(), "bilibili", now() - 60);
    let app = spawn().arg("--cookies-dir", dir.path().display()).start().await;

    let resp = app.get("/api/v2/auth/status").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = body["data"].as_array().unwrap();
    let platforms: Vec<&str> = list.iter().map(|s| s["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["youtube", "bilibili", "twitter", "instagram", "twitch"]);
    let expected = chrono_like(expiry);
    assert_eq!(
        list[0],
        serde_json::json!({"platform": "youtube", "authenticated": true, "cookies_valid": true, "expires_at": expected})
    );
    assert_eq!((&list[1]["authenticated"], &list[1]["cookies_valid"]), (&true.into(), &false.into()), "expired");
    assert_eq!(
        list[2],
        serde_json::json!({"platform": "twitter", "authenticated": false, "cookies_valid": false, "expires_at": null})
    );

    let (status, body) = app.json("/api/v2/auth/status/x").await;
    assert_eq!((status.as_u16(), &body["data"]["platform"]), (200, &"twitter".into()));
    let (status, body) = app.json("/api/v2/auth/status/myspace").await;
    assert_eq!(status, 400);
    assert_error_shape(status, &body);
}

/// RFC 3339 at the second, UTC, as the API prints it.
fn chrono_like(unix: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn status_is_cached_for_auth_status_ttl() {
    let dir = tempfile::tempdir().unwrap();
    cookie_file(dir.path(), "youtube", now() + 3600);
    let app = spawn().arg("--cookies-dir", dir.path().display()).arg("--auth-status-ttl", 1).start().await;
    assert_eq!(app.json("/api/v2/auth/status/youtube").await.1["data"]["authenticated"], true);
    std::fs::remove_file(dir.path().join("youtube.txt")).unwrap();
    assert_eq!(app.json("/api/v2/auth/status/youtube").await.1["data"]["authenticated"], true, "still cached");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(app.json("/api/v2/auth/status/youtube").await.1["data"]["authenticated"], false, "read again");
}

#[tokio::test]
async fn without_cookies_dir_every_platform_is_anonymous() {
    let app = spawn_app().await;
    let (status, body) = app.json("/api/v2/auth/status").await;
    assert_eq!(status, 200);
    assert!(body["data"].as_array().unwrap().iter().all(|s| s["authenticated"] == false && s["expires_at"].is_null()));
}

#[tokio::test]
async fn extractions_get_a_private_copy_of_the_platform_cookie_file() {
    let dir = tempfile::tempdir().unwrap();
    cookie_file(dir.path(), "youtube", now() + 3600);
    let original = std::fs::read(dir.path().join("youtube.txt")).unwrap();
    let app = spawn().arg("--cookies-dir", dir.path().display()).start().await;
    let id = yt_id("ck");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["title"], format!("Stand-in video {id} (signed in)"));
    let (status, body) = app.json("/api/v2/videos/twitter/1234567890").await;
    assert_eq!(
        (status.as_u16(), body["data"]["title"].as_str()),
        (200, Some("Post 1234567890")),
        "no file, no sign-in"
    );

    let calls = app.fake.calls();
    let yt = &calls[0];
    let at = yt.iter().position(|a| a == "--cookies").expect("--cookies passed for YouTube");
    let copy = Path::new(&yt[at + 1]);
    assert!(!copy.starts_with(dir.path()), "a copy, not the operator's file: {copy:?}");
    assert!(!copy.exists(), "the copy is removed after the extraction");
    assert!(at < yt.iter().position(|a| a == "--").unwrap(), "options before --");
    assert!(!calls[1].contains(&"--cookies".to_owned()), "{calls:?}");
    assert_eq!(std::fs::read(dir.path().join("youtube.txt")).unwrap(), original, "the file is untouched");
}

#[tokio::test]
async fn signed_in_and_anonymous_results_never_share_a_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    cookie_file(dir.path(), "youtube", now() + 3600);
    let url = redis_url();
    let signed = spawn().redis(&url).arg("--cookies-dir", dir.path().display()).start().await;
    let anonymous = spawn().redis(&url).origin(&signed.origin).start().await;
    let id = yt_id("sh");
    let (_, body) = signed.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(body["data"]["title"], format!("Stand-in video {id} (signed in)"));
    let (_, body) = anonymous.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(body["data"]["title"], format!("Stand-in video {id}"), "not the signed-in result");
    assert_eq!((signed.fake.runs(), anonymous.fake.runs()), (1, 1));
    // The anonymous entry sits under the reference's key; the signed-in one apart.
    let mut redis = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("*{id}*")).query_async(&mut redis).await.unwrap();
    assert!(keys.contains(&format!("video:youtube:{id}")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("auth:") && k.ends_with(&format!(":video:youtube:{id}"))), "{keys:?}");
}

#[tokio::test]
async fn no_cookie_value_reaches_a_response_or_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    cookie_file(dir.path(), "youtube", now() + 3600);
    cookie_file(dir.path(), "bilibili", now() - 10);
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let cookies = dir.path().display().to_string();
    let bin =
        Binary::start(&fake, &["--cookies-dir", &cookies, "--log-level", "debug", "--environment", "production"]).await;
    let http = reqwest::Client::new();
    let mut bodies = String::new();
    for path in [
        "/api/v2/auth/status".to_owned(),
        "/api/v2/auth/status/bilibili".to_owned(),
        format!("/api/v2/videos/youtube/{}", yt_id("lg")),
        format!("/api/v2/videos/youtube/{}", yt_id("brokenbroke")),
        format!("/api/v2/videos/youtube/{}", yt_id("unavailabl")),
        "/api/v2/videos/bilibili/BV1xx411c7mD".to_owned(),
        format!("/api/v2/stream/proxy/youtube/{}", yt_id("st")),
        "/api/v2/playlists/youtube/PLabcdefghijklmn".to_owned(),
    ] {
        let resp = http.get(format!("{}{path}", bin.base)).send().await.unwrap();
        bodies.push_str(&format!("{path} {:?} ", resp.headers()));
        bodies.push_str(&String::from_utf8_lossy(&resp.bytes().await.unwrap()));
    }
    assert!(bodies.contains("(signed in)"), "the cookies were used: {bodies}");
    assert!(!bodies.contains(SECRET), "{bodies}");
    let logs = bin.logs();
    assert!(logs.contains("request_id"), "JSON logs were written: {logs}");
    assert!(!logs.contains(SECRET), "{logs}");
}

#[tokio::test]
async fn a_new_cookie_file_is_used_from_the_next_reading_for_both_key_and_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn().arg("--cookies-dir", dir.path().display()).arg("--auth-status-ttl", 1).start().await;
    let (a, b, c) = (yt_id("na"), yt_id("nb"), yt_id("nc"));
    let title = |body: &serde_json::Value| body["data"]["title"].as_str().unwrap().to_owned();
    assert_eq!(title(&app.json(&format!("/api/v2/videos/youtube/{a}")).await.1), format!("Stand-in video {a}"));
    cookie_file(dir.path(), "youtube", now() + 3600);
    // Until the reading expires, extractions stay anonymous: a key without
    // scope never holds a signed-in result.
    assert_eq!(title(&app.json(&format!("/api/v2/videos/youtube/{b}")).await.1), format!("Stand-in video {b}"));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        title(&app.json(&format!("/api/v2/videos/youtube/{c}")).await.1),
        format!("Stand-in video {c} (signed in)")
    );
    let with_cookies: Vec<bool> = app.fake.calls().iter().map(|c| c.contains(&"--cookies".to_owned())).collect();
    assert_eq!(with_cookies, [false, false, true]);
}
