//! Subtitles: the tracks yt-dlp lists (the stand-in writes the uploader's
//! English and German, YouTube's automatic English captions and their
//! machine translation, and the live chat) are listed in the info with
//! reelay's own links, and served as WebVTT converted from json3 and srv3.

use crate::helpers::*;

async fn vtt(app: &TestApp, path: &str) -> String {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    assert_eq!(resp.headers()["content-type"], "text/vtt; charset=utf-8");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn tracks_are_listed_and_served_as_webvtt() {
    // yt-dlp's Python, with curl_cffi, fetches the German file as a browser.
    let app = spawn().arg("--ytdlp-python", venv_python().display()).start().await;
    let id = yt_id("dubs");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let subs = body["data"]["subtitles"].as_array().unwrap();
    let listed: Vec<(&str, bool)> =
        subs.iter().map(|s| (s["lang"].as_str().unwrap(), s["auto"].as_bool().unwrap())).collect();
    assert_eq!(listed, [("de", false), ("en", false), ("en", true)], "no translations, no live chat: {subs:?}");
    assert_eq!(subs[0]["name"], "German");
    assert_eq!(subs[0]["url"], format!("/api/v2/subtitles/youtube/{id}?lang=de"));
    assert_eq!(subs[2]["url"], format!("/api/v2/subtitles/youtube/{id}?lang=en&auto=true"));
    assert!(!body.to_string().contains("sub-de.srv3"), "no origin URL reaches the client");

    // WebVTT passes through; srv3 and json3 are converted.
    assert_eq!(
        vtt(&app, &format!("/api/v2/subtitles/youtube/{id}?lang=en")).await,
        String::from_utf8(media("sub-en.vtt")).unwrap()
    );
    let de = vtt(&app, subs[0]["url"].as_str().unwrap()).await;
    assert_eq!(de, "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHallo Welt\n\n");
    let auto = vtt(&app, subs[2]["url"].as_str().unwrap()).await;
    assert_eq!(auto, "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nautomatic words\n\n");
    // Kept: the origin was asked once for the German file, as a browser.
    vtt(&app, subs[0]["url"].as_str().unwrap()).await;
    let asked = app.origin.requests("/imp/sub-de.srv3");
    assert_eq!(asked.len(), 1);
    assert!(asked[0].1["user-agent"].to_str().unwrap().contains("Chrome/"), "{:?}", asked[0].1);
    assert!(!body.to_string().contains("/imp/"), "no origin URL reaches the client");

    // Without curl_cffi (a Python that lacks it) the server's own client is
    // tried, and the origin's refusal is a 502 that says so.
    let bare = spawn().arg("--ytdlp-python", "python3").start().await;
    let (status, body) = bare.json(&format!("/api/v2/subtitles/youtube/{id}?lang=de")).await;
    assert_eq!(status, 502, "{body}");
    assert_error_shape(status, &body);
    assert!(body["detail"].as_str().unwrap().contains("refused the subtitles"), "{body}");

    // A language it lacks: 404, listing those it has; bad input: 400.
    let (status, body) = app.json(&format!("/api/v2/subtitles/youtube/{id}?lang=ja")).await;
    assert_eq!(status, 404, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(body["error"], "Subtitles unavailable");
    assert!(body["detail"].as_str().unwrap().ends_with("this video has de, en, en (auto)"), "{body}");
    let (status, _) = app.json(&format!("/api/v2/subtitles/youtube/{id}?lang=fr&auto=true")).await;
    assert_eq!(status, 404, "a machine translation is not offered");
    let (status, body) = app.json(&format!("/api/v2/subtitles/youtube/{id}?lang=%3Cx%3E")).await;
    assert_eq!((status.as_u16(), &body["error"]), (400, &serde_json::json!("Invalid lang")));
    let (status, body) = app.json(&format!("/api/v2/subtitles/youtube/{}", yt_id("plain"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "this video has no subtitles");
}

/// The manifests offer every track: the HLS master as
/// `EXT-X-MEDIA:TYPE=SUBTITLES` with a WebVTT media playlist of signed
/// links (which work without an API key, as the other parts do), the MPD as
/// text AdaptationSets. ffprobe (Debian's 5.1 skips WebVTT renditions)
/// still reads the master's video and audio with them listed; a player that
/// reads the subtitle renditions, hls.js, is `ui.rs`'s.
#[tokio::test]
async fn the_manifests_offer_the_subtitles() {
    let app = spawn().arg("--api-keys", "k1").start().await;
    let id = yt_id("dubs");
    let path = format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?api_key=k1");
    let master = app.get(&path).await.text().await.unwrap();
    let subs: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES")).collect();
    assert_eq!(subs.len(), 3, "{master}");
    assert!(subs[0].contains("LANGUAGE=\"de\"") && subs[0].contains("NAME=\"German\""), "{}", subs[0]);
    assert!(
        subs[2].contains("NAME=\"English (auto-generated)\"") && !subs[2].contains("AUTOSELECT=YES"),
        "{}",
        subs[2]
    );
    assert!(master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).all(|l| l.contains("SUBTITLES=\"subs\"")));
    let uri = subs[1].split("URI=\"").nth(1).unwrap().split('"').next().unwrap();
    let playlist = app.get(uri).await.text().await.unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST") && playlist.contains("#EXTINF:"), "{playlist}");
    let vtt_link = playlist.lines().find(|l| l.starts_with("/api/v2/stream/media/")).unwrap();
    let resp = app.get(vtt_link).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/vtt; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), String::from_utf8(media("sub-en.vtt")).unwrap());

    let mpd = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/manifest.mpd?api_key=k1")).await;
    let mpd = mpd.text().await.unwrap();
    assert_eq!(mpd.matches("contentType=\"text\"").count(), 3, "{mpd}");
    assert!(mpd.contains("mimeType=\"text/vtt\" lang=\"en\"") && mpd.contains("value=\"caption\""), "{mpd}");

    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(format!("{}{path}", app.base))
        .output()
        .await
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let types = String::from_utf8_lossy(&probe.stdout);
    assert!(types.contains("video") && types.contains("audio"), "{types}");
}
