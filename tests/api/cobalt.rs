//! cobalt's API at `/cobalt/`, against the request and answer shapes of
//! cobalt's `docs/api.md` and its request schema: what a cobalt client
//! (its web app, a chat bot, a phone shortcut) sends and expects back.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn, spawn_app, yt_id};
use crate::outputs::{codecs, disposition_name, duration, probe_bytes};

/// `POST /cobalt/` as cobalt's clients send it.
pub async fn post(app: &TestApp, body: Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let resp = app
        .http
        .post(format!("{}/cobalt/", app.base))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.json().await.unwrap(), headers)
}

fn yt(id: &str) -> String {
    format!("https://www.youtube.com/watch?v={id}")
}

#[tokio::test]
async fn instance_info_is_cobalts() {
    let app = spawn_app().await;
    let (status, info) = app.json("/cobalt/").await;
    assert_eq!(status, 200);
    assert_eq!(info["cobalt"]["url"], format!("{}/cobalt/", app.base));
    assert!(info["cobalt"]["version"].is_string() && info["git"]["commit"].is_string(), "{info}");
    let started: u128 = info["cobalt"]["startTime"].as_str().unwrap().parse().unwrap();
    assert!(started > 1_700_000_000_000, "unix milliseconds: {started}");
    let services: Vec<&str> =
        info["cobalt"]["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(services, ["youtube", "bilibili", "twitter", "instagram", "twitch"]);
    assert_eq!(app.json("/cobalt").await.1, info, "with or without the slash");
}

/// Audio as mp3 through a tunnel: the JSON names the file, the tunnel
/// serves it under that name with cobalt's bitrate, title and artist.
#[tokio::test]
async fn audio_comes_through_a_tunnel_as_mp3() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let (status, body, _) = post(&app, json!({"url": yt(&id), "downloadMode": "audio"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "tunnel", "{body}");
    assert_eq!(body["filename"], "Mañana： ＂Live＂ ／ Remix？ - Tune Maker.mp3");
    let url = body["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/cobalt/tunnel/", app.base)), "{url}");
    assert!(!url.contains(&app.origin.base), "no origin URL in a tunnel");
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cd = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert_eq!(disposition_name(&cd), body["filename"].as_str().unwrap());
    let p = probe_bytes("c.mp3", &resp.bytes().await.unwrap()).await;
    assert_eq!(codecs(&p), ["mp3"]);
    let bitrate: f64 = p["streams"][0]["bit_rate"].as_str().unwrap().parse().unwrap();
    assert!((bitrate - 128_000.0).abs() < 5_000.0, "cobalt's default 128 kb/s: {bitrate}");
    assert_eq!(p["format"]["tags"]["artist"], "Tune Maker");

    // Every audio format cobalt offers, and its styles.
    for (format, codec, name) in [
        ("ogg", "vorbis", format!("youtube_{id}_audio.ogg")),
        ("opus", "opus", format!("youtube_{id}_audio.opus")),
        ("wav", "pcm_s16le", format!("youtube_{id}_audio.wav")),
    ] {
        let req = json!({"url": yt(&id), "downloadMode": "audio", "audioFormat": format, "audioBitrate": "64",
                         "filenameStyle": "classic", "disableMetadata": true});
        let (_, body, _) = post(&app, req).await;
        assert_eq!(
            (body["status"].as_str(), body["filename"].as_str()),
            (Some("tunnel"), Some(name.as_str())),
            "{body}"
        );
        let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        let p = probe_bytes(&name, &bytes).await;
        assert_eq!(codecs(&p), [codec], "{format}");
        assert!(p["format"]["tags"].get("artist").is_none(), "disableMetadata: {:#}", p["format"]);
    }
    // `best`: the platform's own file, bytes untouched.
    let (_, body, _) = post(&app, json!({"url": yt(&id), "downloadMode": "audio", "audioFormat": "best"})).await;
    assert_eq!(body["filename"], "Mañana： ＂Live＂ ／ Remix？ - Tune Maker.m4a", "{body}");
    let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert!(bytes == std::fs::read(crate::helpers::media_dir().join("a.m4a")).unwrap());
}

/// A video above the muxed formats: merged through a tunnel, at the
/// quality asked; muted; a progressive file redirected unless `alwaysProxy`.
#[tokio::test]
async fn videos_tunnel_merge_mute_and_redirect() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let (_, body, _) = post(&app, json!({"url": yt(&id), "videoQuality": "720"})).await;
    assert_eq!(body["status"], "tunnel", "{body}");
    assert_eq!(body["filename"], "Mañana： ＂Live＂ ／ Remix？ - Tune Maker (720p, h264).mp4");
    let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let p = probe_bytes("v.mp4", &bytes).await;
    assert_eq!(codecs(&p), ["h264", "aac"]);
    assert_eq!(p["streams"][0]["height"], 720);

    let (_, body, _) = post(
        &app,
        json!({"url": yt(&id), "videoQuality": "360", "downloadMode": "mute",
                                         "youtubeVideoCodec": "vp9", "filenameStyle": "pretty"}),
    )
    .await;
    assert_eq!(body["filename"], "Mañana： ＂Live＂ ／ Remix？ - Tune Maker (360p, vp9, mute, youtube).webm", "{body}");
    let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(codecs(&probe_bytes("m.webm", &bytes).await), ["vp9"]);

    // The 360p progressive file plays by itself: a redirect to it.
    let (_, body, _) = post(&app, json!({"url": yt(&id), "videoQuality": "360"})).await;
    assert_eq!(body["status"], "redirect", "{body}");
    assert!(body["url"].as_str().unwrap().starts_with(&app.origin.base), "{body}");
    let (_, body, _) = post(&app, json!({"url": yt(&id), "videoQuality": "360", "alwaysProxy": true})).await;
    assert_eq!(body["status"], "tunnel", "{body}");
    let resp = app.http.get(body["url"].as_str().unwrap()).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!(resp.status(), 206, "a relayed file answers ranges");
    // mkv, as youtubeVideoContainer asks.
    let (_, body, _) = post(&app, json!({"url": yt(&id), "videoQuality": "720", "youtubeVideoContainer": "mkv"})).await;
    assert!(body["filename"].as_str().unwrap().ends_with(".mkv"), "{body}");
    let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let p = probe_bytes("v.mkv", &bytes).await;
    assert!(p["format"]["format_name"].as_str().unwrap().starts_with("matroska"), "{p}");
    assert_eq!(codecs(&p), ["h264", "aac"], "H.264 and AAC, so Matroska and not WebM");
}

/// `youtubeDubLang` picks the dub; one the video lacks plays the original,
/// as cobalt does.
#[tokio::test]
async fn dub_languages() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    for (lang, served) in [("de", "lang=de"), ("ja", "lang=en")] {
        let req = json!({"url": yt(&id), "downloadMode": "audio", "audioFormat": "best", "youtubeDubLang": lang,
                         "alwaysProxy": true, "filenameStyle": "classic"});
        let (_, body, _) = post(&app, req).await;
        assert_eq!(body["status"], "tunnel", "{body}");
        let dub = if lang == "de" { "_de" } else { "" };
        assert_eq!(body["filename"], format!("youtube_{id}{dub}_audio.m4a"), "the dub named as cobalt names it");
        let before = app.origin.requests("/media/dash-a").len();
        app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        let fetched = app.origin.requests("/media/dash-a");
        assert!(
            fetched[before..].iter().all(|(p, _)| p.contains(served)) && fetched.len() > before,
            "{lang}: {fetched:?}"
        );
    }
}

/// An X post with two videos: a picker, a tunnel and a thumbnail per
/// video, each tunnel that video alone.
#[tokio::test]
async fn a_post_with_two_videos_is_a_picker() {
    let app = spawn_app().await;
    let pid = format!("77{}", rand_digits());
    let (status, body, _) = post(&app, json!({"url": format!("https://x.com/someone/status/{pid}")})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("picker")), "{body}");
    let items = body["picker"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    for (n, item) in items.iter().enumerate() {
        assert_eq!(item["type"], "video");
        assert!(item["thumb"].as_str().unwrap().ends_with(&format!("thumb.jpg?n={}", n + 1)), "{item}");
        let resp = app.http.get(item["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{item}");
        assert!(
            disposition_name(resp.headers()["content-disposition"].to_str().unwrap())
                .starts_with(&format!("Post {pid} #{}", n + 1))
        );
        resp.bytes().await.unwrap();
        let fetched = app.origin.requests(&format!("/media/clip.mp4?item={}", n + 1));
        assert!(!fetched.is_empty(), "item {} is its own video", n + 1);
    }
}

fn rand_digits() -> String {
    format!("{:016}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000_000)
}

/// `localProcessing: forced`: the parts as tunnels, for the client to join.
#[tokio::test]
async fn local_processing_hands_out_the_parts() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    let req = json!({"url": yt(&id), "videoQuality": "720", "localProcessing": "forced", "subtitleLang": "en"});
    let (_, body, _) = post(&app, req).await;
    assert_eq!((body["status"].as_str(), body["type"].as_str()), (Some("local-processing"), Some("merge")), "{body}");
    assert_eq!(body["service"], "youtube");
    assert_eq!(body["output"]["type"], "video/mp4");
    assert_eq!(body["output"]["subtitles"], true);
    let tunnels: Vec<&str> = body["tunnel"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tunnels.len(), 3, "video, audio, subtitles: {body}");
    let video = app.http.get(tunnels[0]).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(video, std::fs::read(crate::helpers::media_dir().join("dash-v720.mp4")).unwrap());
    let audio = app.http.get(tunnels[1]).header("range", "bytes=0-9").send().await.unwrap();
    assert_eq!(audio.status(), 206);
    let audio = app.http.get(tunnels[1]).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(audio, std::fs::read(crate::helpers::media_dir().join("dash-a.m4a")).unwrap(), "the audio file");
    let vtt = app.http.get(tunnels[2]).send().await.unwrap().text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    // `preferred`: only work the server would run ffmpeg for is handed out.
    let tunes = yt_id("tunes");
    let (_, body, _) =
        post(&app, json!({"url": yt(&tunes), "downloadMode": "audio", "localProcessing": "preferred"})).await;
    assert_eq!((body["type"].as_str(), body["audio"]["format"].as_str()), (Some("audio"), Some("mp3")), "{body}");
    assert_eq!(body["audio"]["bitrate"], "128");
    let p = probe_bytes(
        "lp.m4a",
        &app.http.get(body["tunnel"][0].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap(),
    )
    .await;
    assert!((duration(&p) - 4.0).abs() < 0.3, "the source audio");
    // A progressive file that would be remuxed for its subtitles: `remux`,
    // the file as it is and the track; an X GIF: `gif`, the MP4 to convert.
    let req = json!({"url": yt(&id), "videoQuality": "360", "localProcessing": "forced", "subtitleLang": "en"});
    let (_, body, _) = post(&app, req).await;
    assert_eq!(body["type"], "remux", "{body}");
    let tunnels: Vec<&str> = body["tunnel"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tunnels.len(), 2, "the file and the subtitles: {body}");
    let file = app.http.get(tunnels[0]).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(file, std::fs::read(crate::helpers::media_dir().join("clip.mp4")).unwrap());
    assert!(app.http.get(tunnels[1]).send().await.unwrap().text().await.unwrap().starts_with("WEBVTT"));
    let gif = json!({"url": format!("https://x.com/someone/status/88{}", rand_digits()), "localProcessing": "forced"});
    let (_, body, _) = post(&app, gif).await;
    assert_eq!((body["type"].as_str(), body["output"]["type"].as_str()), (Some("gif"), Some("image/gif")), "{body}");
    let mp4 = app.http.get(body["tunnel"][0].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(mp4, std::fs::read(crate::helpers::media_dir().join("tweet_video/gif.mp4")).unwrap());
}

/// Bad requests, in cobalt's codes, each a 400 with cobalt's error shape.
#[tokio::test]
async fn requests_are_checked_as_cobalt_checks_them() {
    let app = spawn_app().await;
    let send = |accept: &'static str, kind: &'static str, body: &'static str| {
        let req = app.http.post(format!("{}/cobalt/", app.base)).header("accept", accept).header("content-type", kind);
        async move {
            let resp = req.body(body).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    for (accept, kind, body, code) in [
        ("text/html", "application/json", r#"{"url":"x"}"#, "error.api.header.accept"),
        ("application/json", "text/plain", r#"{"url":"x"}"#, "error.api.header.content_type"),
        ("application/json", "application/json", "not json", "error.api.invalid_body"),
        (
            "application/json",
            "application/json",
            r#"{"url":"https://youtu.be/x","mystery":1}"#,
            "error.api.invalid_body",
        ),
        (
            "application/json",
            "application/json",
            r#"{"url":"https://youtu.be/x","videoQuality":"999"}"#,
            "error.api.invalid_body",
        ),
        ("application/json", "application/json", r#"{"downloadMode":"audio"}"#, "error.api.link.missing"),
        ("application/json", "application/json", r#"{"url":"not a link"}"#, "error.api.link.invalid"),
        ("application/json", "application/json", r#"{"url":"file:///etc/passwd"}"#, "error.api.link.invalid"),
        (
            "application/json",
            "application/json",
            r#"{"url":"https://www.youtube.com/watch?v=short"}"#,
            "error.api.link.unsupported",
        ),
    ] {
        let (status, body) = send(accept, kind, body).await;
        assert_eq!(
            (status, body["status"].as_str(), body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("error"), Some(code)),
            "{body}"
        );
    }
    let (_, body) =
        send("application/json", "application/json", r#"{"url":"https://www.youtube.com/watch?v=short"}"#).await;
    assert_eq!(body["error"]["context"]["service"], "youtube");
}

/// The platform's refusals, as cobalt names them.
#[tokio::test]
async fn refusals_have_cobalts_codes() {
    let app = spawn_app().await;
    for (url, code) in [
        (yt(&yt_id("removedv")), "error.api.content.video.unavailable"),
        (yt(&yt_id("privatev")), "error.api.content.video.private"),
        (yt(&yt_id("agegate")), "error.api.content.video.age"),
        (yt(&yt_id("geoblock")), "error.api.content.video.region"),
        (yt(&yt_id("botcheck")), "error.api.youtube.login"),
        (yt(&yt_id("brokenbroke")), "error.api.fetch.fail"),
        ("https://www.twitch.tv/somestreamer".to_owned(), "error.api.content.video.live"),
    ] {
        let (status, body, _) = post(&app, json!({"url": url})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{url}: {body}");
    }
}

/// With `API_KEYS`: cobalt's `Api-Key` scheme; the tunnel needs no key.
#[tokio::test]
async fn api_keys_in_cobalts_scheme() {
    let app = spawn().arg("--api-keys", "cobalt-key").start().await;
    let id = yt_id("tunes");
    let ask = |auth: Option<&'static str>| {
        let mut req = app
            .http
            .post(format!("{}/cobalt/", app.base))
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(json!({"url": yt(&id), "downloadMode": "audio"}).to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(ask(None).await["error"]["code"], "error.api.auth.key.missing");
    assert_eq!(ask(Some("Api-Key wrong")).await["error"]["code"], "error.api.auth.key.not_found");
    let ok = ask(Some("Api-Key cobalt-key")).await;
    assert_eq!(ok["status"], "tunnel", "{ok}");
    assert_eq!(app.http.get(ok["url"].as_str().unwrap()).send().await.unwrap().status(), 200, "no key on the tunnel");
    // A tunnel this server did not sign is refused.
    let forged = ok["url"].as_str().unwrap().replace("/tunnel/", "/tunnel/x");
    assert_eq!(app.http.get(forged).send().await.unwrap().status(), 403);
}

/// cobalt's rate limit: `RateLimit-*` headers, a 429 in cobalt's shape with
/// the window; the instance info is never limited.
#[tokio::test]
async fn rate_limits_answer_in_cobalts_shape() {
    let app = spawn().arg("--rate-limit-max-requests", 2).arg("--rate-limit-window", 60).start().await;
    let id = yt_id("tunes");
    let (status, _, headers) = post(&app, json!({"url": yt(&id)})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["ratelimit-limit"], "2");
    assert_eq!(headers["ratelimit-remaining"], "1");
    post(&app, json!({"url": yt(&id)})).await;
    let (status, body, headers) = post(&app, json!({"url": yt(&id)})).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"status": "error", "error": {"code": "error.api.rate_exceeded", "context": {"limit": 60}}})
    );
    assert!(headers.contains_key("retry-after") && headers.contains_key("ratelimit-reset"));
    for _ in 0..3 {
        assert_eq!(app.get("/cobalt/").await.status(), 200);
    }
}

/// The cue text of a file's first subtitle track, as ffmpeg reads it out.
async fn first_cue_text(name: &str, bytes: &[u8]) -> String {
    let path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("subs-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-map", "0:s:0", "-f", "webvtt", "-"])
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `subtitleLang`: the track written into the file with the video, tagged
/// with its language — in a merge, in a progressive file (remuxed, so no
/// longer a redirect), as WebVTT in Matroska; a language the video lacks
/// leaves the file as it was. reelay's own `subtitles=` does the same.
#[tokio::test]
async fn subtitles_are_written_into_the_file() {
    let app = spawn_app().await;
    let id = yt_id("dubs");
    for (quality, container, ext, text_codec) in
        [("720", "auto", "mp4", "mov_text"), ("360", "auto", "mp4", "mov_text"), ("720", "mkv", "mkv", "webvtt")]
    {
        let req = json!({"url": yt(&id), "videoQuality": quality, "subtitleLang": "en",
                         "youtubeVideoContainer": container});
        let (_, body, _) = post(&app, req).await;
        assert_eq!(body["status"], "tunnel", "{quality} {container}: {body}");
        assert!(body["filename"].as_str().unwrap().ends_with(&format!(".{ext}")), "{body}");
        let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        let name = format!("s{quality}.{ext}");
        let p = probe_bytes(&name, &bytes).await;
        assert_eq!(codecs(&p), ["h264", "aac", text_codec], "{quality} {container}");
        assert_eq!(p["streams"][2]["tags"]["language"], "eng", "{:#}", p["streams"][2]);
        assert!(first_cue_text(&name, &bytes).await.contains("Hello"), "the uploader's English cue");
    }
    // No Japanese track: the file without subtitles.
    let (_, body, _) = post(&app, json!({"url": yt(&id), "videoQuality": "720", "subtitleLang": "ja"})).await;
    let bytes = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(codecs(&probe_bytes("nosubs.mp4", &bytes).await), ["h264", "aac"]);

    let own = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=720p&subtitles=en", app.base);
    let bytes = app.http.get(&own).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(codecs(&probe_bytes("own.mp4", &bytes).await), ["h264", "aac", "mov_text"]);
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?subtitles=e%20n")).await;
    assert_eq!(status, 400, "{body}");
}

/// `convertGif` (on by default): an X GIF, which X serves as a silent MP4,
/// comes as an animated GIF, made once however many fetch it; off, the MP4.
/// reelay's own `container=gif` makes one of a short clip, not of a film.
#[tokio::test]
async fn x_gifs_become_gifs() {
    let app = spawn_app().await;
    let pid = format!("88{}", rand_digits());
    let link = format!("https://x.com/someone/status/{pid}");
    let (_, body, _) = post(&app, json!({"url": link, "filenameStyle": "classic"})).await;
    assert_eq!(body["status"], "tunnel", "{body}");
    let name = body["filename"].as_str().unwrap().to_owned();
    assert!(name.starts_with("twitter_") && name.ends_with(".gif"), "{name}");
    let before = app.prom("reelay_relay_transcodes_total").await;
    let url = body["url"].as_str().unwrap().to_owned();
    let gets = (0..4).map(|_| {
        let (http, url) = (app.http.clone(), url.clone());
        async move {
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(resp.headers()["content-type"], "image/gif");
            resp.bytes().await.unwrap()
        }
    });
    let files = futures_util::future::join_all(gets).await;
    assert!(files.windows(2).all(|w| w[0] == w[1]), "the same GIF for all");
    assert_eq!(app.prom("reelay_relay_transcodes_total").await - before, 1.0, "made once for four");
    let p = probe_bytes("x.gif", &files[0]).await;
    assert_eq!(codecs(&p), ["gif"]);
    assert_eq!((p["streams"][0]["width"].as_i64(), p["streams"][0]["height"].as_i64()), (Some(320), Some(180)));
    assert!(duration(&p) > 1.5, "every frame: {:#}", p["format"]);

    let (_, body, _) = post(&app, json!({"url": link, "convertGif": false})).await;
    assert_eq!(body["status"], "redirect", "the MP4 as X serves it: {body}");
    assert!(body["url"].as_str().unwrap().ends_with("/tweet_video/gif.mp4"), "{body}");

    let clip = format!("{}/api/v2/stream/proxy/youtube/{}?container=gif", app.base, yt_id("tunes"));
    let resp = app.http.get(&clip).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(codecs(&probe_bytes("clip.gif", &resp.bytes().await.unwrap()).await), ["gif"]);
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{}?container=gif", yt_id("bench"))).await;
    assert_eq!(status, 409, "a 212 s video is no GIF: {body}");
    assert!(body["detail"].as_str().unwrap().contains("60 s"), "{body}");
}
