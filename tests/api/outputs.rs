//! What a stream is made into on its way out, checked with ffprobe: audio
//! as mp3, Ogg Vorbis, Opus or WAV at a bitrate, made once however many
//! ask; the source's own bytes where they already are what was asked; a
//! muted video; a merge in Matroska or WebM; the file's name.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, yt_id};

/// ffprobe's streams and format of a file or URL.
pub async fn probe(target: &str) -> Value {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_format", "-of", "json"])
        .arg(target)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{target}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The streams' `codec_name`s, in order.
pub fn codecs(p: &Value) -> Vec<String> {
    p["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap().to_owned()).collect()
}

pub fn duration(p: &Value) -> f64 {
    p["format"]["duration"].as_str().unwrap().parse().unwrap()
}

/// Writes `bytes` to a file named after `name` and probes it.
pub async fn probe_bytes(name: &str, bytes: &[u8]) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("out-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let p = probe(path.to_str().unwrap()).await;
    let _ = std::fs::remove_file(path);
    p
}

/// The decoded `filename*` of a `Content-Disposition`.
pub fn disposition_name(cd: &str) -> String {
    let encoded = cd.split("filename*=UTF-8''").nth(1).unwrap_or_else(|| panic!("no filename*: {cd}"));
    percent_encoding::percent_decode_str(encoded).decode_utf8().unwrap().into_owned()
}

/// Eight listeners ask for the same mp3 at once: one ffmpeg, the source
/// fetched once, the same file for all, an mp3 at the bitrate asked with
/// the title and artist in it; once made it answers `Range` and `HEAD`.
#[tokio::test]
async fn an_mp3_is_encoded_once_for_every_listener() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=audio&format=mp3&bitrate=96", app.base);
    let before = app.prom("reelay_relay_transcodes_total").await;
    let got = futures_util::future::join_all((0..8).map(|_| async {
        let resp = app.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "audio/mpeg");
        resp.bytes().await.unwrap()
    }))
    .await;
    let digest = |b: &[u8]| Sha256::digest(b).to_vec();
    assert!(got.iter().all(|b| digest(b) == digest(&got[0])), "every listener gets the same file");
    assert_eq!(app.prom("reelay_relay_transcodes_total").await - before, 1.0, "one encode for eight");
    let fetched: Vec<_> = app.origin.requests("/media/a.m4a").into_iter().filter(|(p, _)| p.contains(&id)).collect();
    assert_eq!(fetched.len(), 1, "the source once: {fetched:?}");

    let p = probe_bytes("a.mp3", &got[0]).await;
    assert_eq!(codecs(&p), ["mp3"]);
    let bitrate: f64 = p["streams"][0]["bit_rate"].as_str().unwrap().parse().unwrap();
    assert!((bitrate - 96_000.0).abs() < 4_000.0, "{bitrate}");
    assert!((duration(&p) - 4.0).abs() < 0.2, "{}", duration(&p));
    assert_eq!(p["format"]["tags"]["title"], "Mañana: \"Live\" / Remix?");
    assert_eq!(p["format"]["tags"]["artist"], "Tune Maker");

    // Finished: a file like any other.
    let head = app.http.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), got[0].len().to_string());
    let part = app.http.get(&url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), got[0][100..200]);
    assert_eq!(app.prom("reelay_relay_transcodes_total").await - before, 1.0);

    // `metadata=false`: no tags, another file.
    let bare = app.http.get(format!("{url}&metadata=false")).send().await.unwrap().bytes().await.unwrap();
    let p = probe_bytes("bare.mp3", &bare).await;
    assert!(p["format"]["tags"].get("title").is_none(), "{:#}", p["format"]);
}

/// Each format with the codec it names; the source's own bytes whenever
/// they already are what was asked (`best`, `m4a` from AAC); Opus from the
/// Opus source remuxed, not encoded from the AAC one.
#[tokio::test]
async fn each_audio_format_has_its_codec() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let get = |q: &'static str| {
        let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=audio&{q}", app.base);
        let http = app.http.clone();
        async move {
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{q}");
            let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (kind, resp.bytes().await.unwrap())
        }
    };
    let m4a = std::fs::read(crate::helpers::media_dir().join("a.m4a")).unwrap();
    for q in ["format=best", "format=m4a", ""] {
        let (_, body) = get(q).await;
        assert!(body == m4a, "{q}: the source's own bytes");
    }
    let before = app.prom("reelay_relay_transcodes_total").await;
    for (q, kind, codec, ext) in [
        ("format=ogg&bitrate=64", "audio/ogg", "vorbis", "ogg"),
        ("format=wav", "audio/wav", "pcm_s16le", "wav"),
        ("format=m4a&bitrate=64", "audio/mp4", "aac", "m4a"),
    ] {
        let (got_kind, body) = get(q).await;
        assert_eq!(got_kind, kind, "{q}");
        let p = probe_bytes(&format!("x.{ext}"), &body).await;
        assert_eq!(codecs(&p), [codec], "{q}");
        assert!((duration(&p) - 4.0).abs() < 0.3, "{q}: {}", duration(&p));
    }
    let (kind, body) = get("format=opus").await;
    assert_eq!(kind, "audio/ogg; codecs=opus");
    let p = probe_bytes("x.opus", &body).await;
    assert_eq!((codecs(&p), p["format"]["format_name"].as_str().unwrap()), (vec!["opus".to_owned()], "ogg"));
    let opus_fetches = app.origin.requests("/media/a-opus.webm").into_iter().filter(|(p, _)| p.contains(&id)).count();
    assert_eq!(opus_fetches, 1, "made from the Opus source");
    assert_eq!(app.prom("reelay_relay_transcodes_total").await - before, 4.0);
}

/// `audio=none`: a video-only file is served as it is; a file with sound
/// is remuxed without it (video copied).
#[tokio::test]
async fn a_muted_video_has_no_audio() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let (resp, body) = {
        let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p&audio=none")).await;
        let h = r.headers().clone();
        (h, r.bytes().await.unwrap())
    };
    assert_eq!(resp["x-reelay-format"], "136");
    assert!(
        body == std::fs::read(crate::helpers::media_dir().join("v720.mp4")).unwrap(),
        "the video-only file as it is"
    );

    // 360p in H.264: only the progressive file has it, so its audio is dropped.
    let before = app.prom("reelay_relay_transcodes_total").await;
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p&codec=h264&audio=none")).await;
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "video/mp4"));
    let p = probe_bytes("mute.mp4", &r.bytes().await.unwrap()).await;
    assert_eq!(codecs(&p), ["h264"], "video alone");
    assert!((duration(&p) - 4.0).abs() < 0.3);
    assert_eq!(app.prom("reelay_relay_transcodes_total").await - before, 1.0);

    // `codec=vp9`: the VP9 file.
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?codec=vp9&audio=none")).await;
    assert_eq!(r.headers()["x-reelay-format"], "243");
}

/// A merge written as Matroska, or as WebM when its codecs fit (VP9 with
/// the Opus audio chosen for it).
#[tokio::test]
async fn merges_in_matroska_and_webm() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p&container=mkv&filename=classic")).await;
    assert_eq!(r.headers()["content-type"], "video/x-matroska");
    let name = disposition_name(r.headers()["content-disposition"].to_str().unwrap());
    assert_eq!(name, format!("youtube_{id}_1280x720_h264.mkv"));
    let p = probe_bytes("m.mkv", &r.bytes().await.unwrap()).await;
    assert_eq!(codecs(&p), ["h264", "aac"]);
    assert!(p["format"]["format_name"].as_str().unwrap().starts_with("matroska"));

    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?codec=vp9&container=webm")).await;
    assert_eq!(r.headers()["content-type"], "video/webm");
    let p = probe_bytes("m.webm", &r.bytes().await.unwrap()).await;
    assert_eq!(codecs(&p), ["vp9", "opus"]);
    // H.264 cannot go into WebM: Matroska instead, and named so.
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p&container=webm&filename=classic")).await;
    assert_eq!(r.headers()["content-type"], "video/x-matroska");
    assert!(disposition_name(r.headers()["content-disposition"].to_str().unwrap()).ends_with(".mkv"));
}

/// `filename=` and `download=1`: a name safe on every OS, in ASCII and in
/// UTF-8, inline or as an attachment.
#[tokio::test]
async fn files_are_named() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=audio&format=mp3&download=1")).await;
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("attachment; filename=\""), "{cd}");
    assert_eq!(disposition_name(&cd), "Mañana： ＂Live＂ ／ Remix？ - Tune Maker.mp3");
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p&filename=nerdy")).await;
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("inline;"), "{cd}");
    assert_eq!(
        disposition_name(&cd),
        format!("Mañana： ＂Live＂ ／ Remix？ - Tune Maker (360p, h264, youtube, {id}).mp4")
    );
    // No name asked, none sent.
    let r = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert!(r.headers().get("content-disposition").is_none());
}

/// Output options that cannot be met are clear 4xx errors.
#[tokio::test]
async fn impossible_outputs_are_refused_clearly() {
    let app = spawn_app().await;
    let id = yt_id("tunes");
    for (q, status, says) in [
        ("quality=audio&format=flac", 400, "unknown audio format"),
        ("quality=audio&format=mp3&bitrate=999", 400, "8 to 320"),
        ("quality=720p&format=mp3", 400, "quality=audio"),
        ("quality=audio&audio=none", 400, "not with quality=audio"),
        ("audio=maybe", 400, "audio is none"),
        ("filename=fancy", 400, "filename style"),
        ("container=avi", 400, "container"),
        ("codec=theora", 400, "codec"),
        ("download=perhaps", 400, "download"),
    ] {
        let (got, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?{q}")).await;
        assert_eq!(got.as_u16(), status, "{q}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(says), "{q}: {body}");
    }
    // The direct route promises a redirect; a transcode is the proxy's.
    let (got, body) = app.json(&format!("/api/v2/stream/direct/youtube/{id}?quality=audio&format=mp3")).await;
    assert_eq!(got, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/api/v2/stream/proxy/youtube/"), "{body}");
    // An HLS-only source (a Twitch VOD) is not transcoded.
    let (got, body) = app.json("/api/v2/stream/proxy/twitch/123456789?quality=audio&format=mp3").await;
    assert_eq!(got, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("HLS"), "{body}");
}
