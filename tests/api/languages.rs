//! Audio languages: a video with an English original and German, French
//! and Spanish dubs of equal bitrate (the stand-in writes them as yt-dlp
//! writes YouTube's). Every plan that picks audio serves the original by
//! default, and `lang=` picks another; the origin's log says which track
//! was fetched (each track's URL names its language).

use crate::helpers::*;

/// The languages of the audio track URLs the origin was asked for.
fn languages_fetched(app: &TestApp, id: &str) -> Vec<String> {
    let mut langs: Vec<String> = app
        .origin
        .requests("/media/dash-a")
        .into_iter()
        .filter(|(p, _)| p.contains(id))
        .filter_map(|(p, _)| p.split("lang=").nth(1).map(|l| l.split('&').next().unwrap_or("").to_owned()))
        .collect();
    langs.sort();
    langs.dedup();
    langs
}

#[tokio::test]
async fn the_info_lists_audio_languages_original_first_and_chapters() {
    let app = spawn_app().await;
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("dubs"))).await;
    assert_eq!(status, 200, "{body}");
    let langs = &body["data"]["audio_languages"];
    assert_eq!(langs[0], serde_json::json!({"code": "en", "name": "English", "original": true}), "{langs}");
    let codes: Vec<&str> = langs.as_array().unwrap().iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["en", "de", "fr", "es"]);
    assert_eq!(langs[1]["name"], "German");
    assert_eq!(langs[3]["original"], false);
    let chapters = &body["data"]["chapters"];
    assert_eq!(chapters[1], serde_json::json!({"start_time": 3.0, "end_time": 8.0, "title": "The rest"}));
    let format = body["data"]["formats"].as_array().unwrap().iter().find(|f| f["format_id"] == "140-2").unwrap();
    assert_eq!(format["language"], "fr");
}

#[tokio::test]
async fn audio_only_is_the_original_unless_lang_says_otherwise() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=audio")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-reelay-format"], "140-0");
    assert_eq!(resp.bytes().await.unwrap(), media("dash-a.m4a"));
    assert_eq!(languages_fetched(&app, &id), ["en"]);
    // Direct: the redirect names the original's URL; lang= a dub's.
    let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=audio")).await;
    assert_eq!(resp.status(), 302);
    assert!(resp.headers()["location"].to_str().unwrap().ends_with("&lang=en"));
    for (lang, format) in [("de", "140-1"), ("es", "140-3"), ("original", "140-0"), ("FR", "140-2")] {
        let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=audio&lang={lang}")).await;
        assert_eq!((resp.status().as_u16(), resp.headers()["x-reelay-format"].to_str().unwrap()), (302, format));
    }
    // A language the video lacks: 404, naming those it has; a malformed one: 400.
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?quality=audio&lang=ja")).await;
    assert_eq!(status, 404, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(body["error"], "Language unavailable");
    assert!(body["detail"].as_str().unwrap().ends_with("it has en, de, fr, es"), "{body}");
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?lang=--exec")).await;
    assert_eq!((status.as_u16(), &body["error"]), (400, &serde_json::json!("Invalid lang")), "{body}");
}

#[tokio::test]
async fn the_merge_and_the_manifest_take_the_original_audio() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-reelay-format"], "136+140-0");
    assert!(!resp.bytes().await.unwrap().is_empty());
    assert_eq!(languages_fetched(&app, &id), ["en"], "ffmpeg merged the original's audio");

    let other = yt_id("dubs");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{other}?quality=720p&lang=fr")).await;
    assert_eq!(resp.headers()["x-reelay-format"], "136+140-2");
    assert!(!resp.bytes().await.unwrap().is_empty());
    assert_eq!(languages_fetched(&app, &other), ["fr"]);

    // The manifest's default audio rendition: the original, or lang='s
    // alone; its media playlist and a part come through the relay from
    // that track (its links name the format).
    for (lang, want, file) in [("", "140-0", "dash-a.m4a"), ("&lang=de", "140-1", "dash-a-de.m4a")] {
        let id = yt_id("dubs");
        let master = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=360p{lang}")).await;
        assert_eq!(master.status(), 200);
        let master = master.text().await.unwrap();
        let audio = master
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA:").filter(|m| m.contains("TYPE=AUDIO")))
            .and_then(|m| m.split("URI=\"").nth(1))
            .map(|u| u.split('"').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no audio rendition:\n{master}"));
        assert!(audio.contains(&format!("/{want}.m3u8")), "{audio}");
        let playlist = app.get(&audio).await.text().await.unwrap();
        let part = playlist.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap();
        assert!(part.contains(&format!("/{want}.m4a")), "{part}");
        let resp = app.http.get(format!("{}{part}", app.base)).header("range", "bytes=0-99").send().await.unwrap();
        assert!(resp.status().is_success(), "{part}");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &media(file)[..100]);
        // Each language is its own file: the whole part is that track's.
        let whole = app.http.get(format!("{}{part}", app.base)).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(whole, media(file), "the {file} track");
    }
    assert_ne!(media("dash-a.m4a"), media("dash-a-de.m4a"), "the tracks differ");
    let (status, _) = app.json(&format!("/api/v2/stream/manifest/youtube/{}/master.m3u8?lang=ja", yt_id("dubs"))).await;
    assert_eq!(status, 404);
    // AVPro is handed the manifest, with the language asked for.
    let id = yt_id("dubs");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p&player=avpro&lang=es")).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap();
    assert_eq!(location, format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=720p&player=avpro&lang=es"));
}

/// The master lists every language in one audio group (the original the
/// only default), the MPD one audio AdaptationSet per language with its
/// `lang` and Role; ffprobe reads the master; `lang=` lists that one alone.
#[tokio::test]
async fn the_manifests_list_every_language_the_original_as_default() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    let master = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8")).await.text().await.unwrap();
    let media: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO")).collect();
    assert_eq!(media.len(), 4, "{master}");
    let attr = |line: &str, key: &str| {
        line.split(',').find_map(|a| a.strip_prefix(&format!("{key}="))).map(|v| v.trim_matches('"').to_owned())
    };
    let langs: Vec<String> = media.iter().map(|m| attr(m, "LANGUAGE").unwrap()).collect();
    assert_eq!(langs, ["en", "de", "fr", "es"]);
    assert_eq!(attr(media[1], "NAME").as_deref(), Some("German"));
    // DEFAULT left out means NO (RFC 8216 §4.4.6.1).
    let defaults: Vec<String> = media.iter().map(|m| attr(m, "DEFAULT").unwrap_or_else(|| "NO".into())).collect();
    assert_eq!(defaults, ["YES", "NO", "NO", "NO"], "{master}");
    assert!(media.iter().all(|m| attr(m, "GROUP-ID").as_deref() == Some("audio")));
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type:stream_tags=language", "-of", "json"])
        .arg(format!("{}/api/v2/stream/manifest/youtube/{id}/master.m3u8", app.base))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let audio = probed["streams"].as_array().unwrap().iter().filter(|s| s["codec_type"] == "audio").count();
    assert!(audio >= 4, "ffprobe finds every language's audio: {probed}");

    let mpd = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/manifest.mpd")).await.text().await.unwrap();
    for (lang, role) in [("en", "main"), ("de", "dub"), ("fr", "dub"), ("es", "dub")] {
        let set = mpd
            .split("<AdaptationSet")
            .find(|s| s.contains(&format!("lang=\"{lang}\"")))
            .unwrap_or_else(|| panic!("{lang}: {mpd}"));
        assert!(set.contains("contentType=\"audio\"") && set.contains(&format!("value=\"{role}\"")), "{lang}: {set}");
    }
    let one = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?lang=fr")).await.text().await.unwrap();
    let media: Vec<&str> = one.lines().filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO")).collect();
    assert_eq!((media.len(), attr(media[0], "LANGUAGE").as_deref()), (1, Some("fr")), "{one}");
}
