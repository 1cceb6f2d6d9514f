//! The web page: served from the binary, reached from `/` by browsers, and
//! used for real in Debian's chromium (headless, driven by
//! tests/browser/ui.mjs with playwright-core): paste a link, the formats
//! fill in, the video plays, a playlist lists its videos, errors read
//! plainly, and it fits a phone.
//! Screenshots land in target/tmp/ui/.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let app = spawn().arg("--api-keys", "k1").start().await;
    let resp = app.get("/ui").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<video") && html.contains("/ui/app.js"), "{html}");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing is loaded from elsewhere");
    for (path, kind) in
        [("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css"), ("/ui/vendor/hls.min.js", "text/javascript")]
    {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
    }
    // The page needs no key; the API behind it still does.
    assert_eq!(app.get("/api/v2/videos/youtube/dQw4w9WgXcQ").await.status(), 401);
}

#[tokio::test]
async fn browsers_asking_for_the_root_are_sent_to_the_page() {
    let app = spawn_app().await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let resp = app.http.get(format!("{}/", app.base)).header("accept", browser).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ui");
    for accept in ["application/json", "*/*"] {
        let resp = app.http.get(format!("{}/", app.base)).header("accept", accept).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{accept}");
        assert_eq!(resp.headers()["vary"], "Accept");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["service"], "reelay");
    }
}

#[tokio::test]
async fn a_person_pastes_a_link_and_watches_in_chromium() {
    let app = spawn_app().await;
    let real = spawn().ytdlp(real_ytdlp()).start().await;
    let limited = spawn().arg("--rate-limit-max-requests", 1).start().await;
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&artifacts).unwrap();
    let config = serde_json::json!({
        "base": app.base,
        "video": format!("https://www.youtube.com/watch?v={}", yt_id("ui")),
        "hls": "https://www.twitch.tv/videos/424242",
        "playlist": format!("https://www.youtube.com/playlist?list=PL{}", yt_id("pl")),
        "bad": "https://www.youtube.com/feed",
        "gone": format!("youtube {}", yt_id("unavailabl")),
        "artifacts": artifacts,
        "real_base": real.base,
        "real_video": format!("{}/page.html", real.origin.base),
        "limited_base": limited.base,
        "dash": format!("https://www.youtube.com/watch?v={}", yt_id("dashd")),
        "live": "https://www.twitch.tv/shortuichannel",
        "subs": format!("https://www.youtube.com/watch?v={}", yt_id("dubs")),
        "muxed": format!("/api/v2/stream/manifest/youtube/{}/master.m3u8?player=avpro", yt_id("dashd")),
    });
    let report = browser_report("ui.mjs", &config).await;
    assert_eq!(report["landing_url"], format!("{}/ui", app.base));

    let video = &report["video"];
    assert!(video["title"].as_str().unwrap().starts_with("Stand-in video ui"), "{video:#}");
    assert_eq!(video["facts"]["Uploader"], "Stand-in Channel");
    assert_eq!(video["facts"]["Duration"], "0:04", "the file lasts 4 s");
    assert_eq!(video["facts"]["Views"], "1,234");
    assert_eq!(video["facts"]["Uploaded"], "2026-01-01");
    let rows = video["format_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "every playable format: {rows:?}");
    assert!(rows.iter().any(|r| r[0] == "18" && r[1] == "640x360" && r[4] == "audio + video"), "{rows:?}");
    assert!(rows.iter().any(|r| r[0] == "140" && r[4] == "audio only"), "{rows:?}");
    assert!(video["thumbnail_width"].as_u64().unwrap() > 0, "the thumbnail loaded through the server");
    let playback = &video["playback"];
    assert!(playback["ready_state"].as_u64().unwrap() >= 2, "{playback}");
    assert_eq!(playback["advanced"], true, "currentTime advances: {playback}");
    assert_eq!(playback["height"], 360, "{playback}");
    assert!(video["proxy_link"].as_str().unwrap().contains("/api/v2/stream/proxy?url="), "{video:#}");
    assert_eq!(video["clipboard"], video["proxy_link"], "the copy button copies the proxy link");

    // A source with HLS only plays: through the manifest route's answer (its
    // playlist, with hls.js) or the proxied playlist, as the page finds them.
    // (`used_hls_js` says only that the page has loaded hls.js by then: no
    // claim that Chromium played it natively is made here.)
    let hls = &report["hls"];
    assert!(hls["playback"]["ready_state"].as_u64().unwrap() >= 2, "{hls:#}");
    assert_eq!(hls["playback"]["advanced"], true, "the HLS stream plays: {hls:#}");
    assert!(matches!(hls["source"].as_str(), Some("manifest" | "proxy")), "{hls:#}");

    let hls_js = &report["hls_js"]["playback"];
    assert_eq!(
        (&hls_js["used_hls_js"], &hls_js["advanced"]),
        (&true.into(), &true.into()),
        "hls.js plays it: {hls_js}"
    );

    // Separate DASH video and audio play through the manifest, with hls.js, and seek.
    let dash = &report["dash"];
    assert_eq!(dash["source"], "manifest", "{dash:#}");
    assert!(dash["manifest_link"].as_str().unwrap().contains("/api/v2/stream/manifest/master.m3u8?url="), "{dash:#}");
    assert_eq!(dash["playback"]["used_hls_js"], true, "{dash:#}");
    assert_eq!(dash["playback"]["advanced"], true, "{dash:#}");
    assert!(dash["levels"].as_u64().unwrap() >= 2, "720p and 360p at least: {dash:#}");
    assert_eq!(dash["audio_tracks"], 1, "{dash:#}");
    assert_eq!(dash["seek"]["seeked"], true, "{dash:#}");
    assert_eq!(dash["advanced_after_seek"], true, "plays on from the middle: {dash:#}");
    assert!(dash["audio_bytes"].as_u64().unwrap() > 0, "the separate audio is heard: {dash:#}");

    // Dubs and subtitles through the manifest with hls.js: every language,
    // the audio switched, a cue shown; the chapters listed on the page.
    let subs = &report["subs"];
    assert_eq!(subs["source"], "manifest", "{subs:#}");
    assert_eq!(subs["playback"]["advanced"], true, "{subs:#}");
    assert_eq!(subs["audio_tracks"], serde_json::json!(["en", "de", "fr", "es"]), "{subs:#}");
    assert_eq!(subs["subtitle_tracks"], serde_json::json!(["de", "en", "en"]), "{subs:#}");
    assert_eq!(subs["switched_to"], "de", "{subs:#}");
    assert!(subs["cue"].as_str().is_some_and(|c| !c.is_empty()), "a subtitle cue: {subs:#}");
    assert!(subs["chapters"].as_array().is_some_and(|c| c.len() >= 2), "{subs:#}");

    // Muxed HLS plays in hls.js, with sound, and seeks.
    let muxed = &report["muxed"];
    assert_eq!(muxed["playback"]["advanced"], true, "{muxed:#}");
    assert_eq!(muxed["playback"]["used_hls_js"], true, "{muxed:#}");
    assert_eq!((&muxed["seeked"], &muxed["advanced_after_seek"]), (&true.into(), &true.into()), "{muxed:#}");
    assert!(muxed["levels"].as_u64().unwrap() >= 2, "{muxed:#}");
    assert!(muxed["audio_bytes"].as_u64().unwrap() > 0, "the muxed audio is heard: {muxed:#}");

    // A live channel plays with hls.js through its shared session, marked
    // live, and goes on across the session's renewal.
    let live = &report["live"];
    assert_eq!(live["facts"]["Status"], "Live now", "{live:#}");
    assert_eq!(live["source"], "manifest", "{live:#}");
    assert_eq!(live["playback"]["advanced"], true, "{live:#}");
    assert!(live["played"].as_f64().unwrap() > 12.0, "18 s later it played on: {live:#}");
    assert!(live["error"].is_null(), "{live:#}");
    assert!(app.prom_with("reelay_live_session_renewals_total", &[("outcome", "ok")]).await >= 1.0);

    let real = &report["real"];
    assert!(real["title"].as_str().unwrap().starts_with("Local page"), "{real:#}");
    assert_eq!(real["playback"]["advanced"], true, "the real yt-dlp's result plays: {real:#}");

    let playlist = &report["playlist"];
    assert!(playlist["title"].as_str().unwrap().starts_with("Playlist PL"), "{playlist:#}");
    assert_eq!(playlist["meta"], "7 videos by Stand-in Channel. Pick one to play it.");
    assert_eq!(playlist["entries"].as_array().unwrap().len(), 7, "{playlist:#}");
    assert_eq!(playlist["picked"]["title"], "Stand-in video entry000002", "{playlist:#}");
    assert_eq!(playlist["picked"]["playback"]["advanced"], true, "{playlist:#}");
    assert_eq!(playlist["still_listed"], true);

    let bad = report["bad"]["error"].as_str().unwrap_or_default();
    assert!(bad.contains("This link is not supported"), "{bad}");
    let gone = report["gone"]["error"].as_str().unwrap_or_default();
    assert!(gone.contains("This video is unavailable"), "{gone}");

    let limited = report["limited"]["error"].as_str().unwrap_or_default();
    assert!(limited.contains("Rate limited") && limited.contains("Try again in"), "{limited}");

    let phone = &report["phone"];
    assert!(phone["page_width"].as_u64().unwrap() <= 390, "fits a phone: {phone:#}");
    assert_eq!(phone["playback"]["advanced"], true, "{phone:#}");
    assert_eq!(phone["playback"]["height"], 720, "best: 720p video and audio, merged by ffmpeg, play: {phone:#}");

    assert_eq!(report["outside_requests"], serde_json::json!([]), "the page talks only to reelay");
    assert!(artifacts.join("ui-video.png").exists());
}
