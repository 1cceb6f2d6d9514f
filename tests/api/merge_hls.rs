//! Merged DASH streams (ffmpeg) and HLS through the proxy.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// ffprobe's view of a file: (codec_type, width, height) per stream.
async fn probe(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.mp4");
    std::fs::write(&path, bytes).unwrap();
    probe_target(path.to_str().unwrap()).await
}

/// Runs ffprobe without blocking the runtime (the server under test may be
/// what it reads from).
async fn probe_target(target: &str) -> Vec<(String, u64, u64)> {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json", target])
        .output()
        .await
        .expect("ffprobe must be installed");
    assert!(out.status.success(), "ffprobe {target}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap().to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn has_video_and_audio(streams: &[(String, u64, u64)], width: u64, height: u64) -> bool {
    streams.iter().any(|s| s.0 == "video" && s.1 == width && s.2 == height) && streams.iter().any(|s| s.0 == "audio")
}

#[tokio::test]
async fn proxy_merges_720p_video_and_audio_without_reencoding() {
    let app = spawn_app().await;
    let id = yt_id("merge");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.headers()["accept-ranges"], "none");
    assert_eq!(resp.headers()["x-reelay-format"], "136+140");
    let bytes = resp.bytes().await.unwrap();
    let streams = probe(&bytes).await;
    assert!(has_video_and_audio(&streams, 1280, 720), "{streams:?}");
    assert_eq!(app.metrics().await["active_streams"], 0);
    assert_eq!(app.fake.runs(), 1);

    // Complete now: a stored object with a length, served like a file.
    let resp = app
        .http
        .get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=720p", app.base))
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.headers()["content-range"], format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()));
    assert_eq!(resp.bytes().await.unwrap(), bytes, "the same bytes as the live merge");
    assert_eq!(app.fake.runs(), 1);

    // HEAD answers without starting ffmpeg.
    let resp =
        app.http.head(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=1080p", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-reelay-format"], "137+140");
}

#[tokio::test]
async fn bilibili_merges_with_its_referer() {
    let app = spawn_app().await;
    let resp = app.get("/api/v2/stream/proxy/bilibili/BV1xx411c7mD?quality=720p").await;
    assert_eq!(resp.status(), 200);
    let streams = probe(&resp.bytes().await.unwrap()).await;
    assert!(has_video_and_audio(&streams, 1280, 720), "{streams:?}");
    let seen = app.origin.seen.lock().unwrap().clone();
    let bili: Vec<_> = seen.iter().filter(|(p, _)| p.starts_with("/bili/")).collect();
    assert!(bili.len() >= 2, "ffmpeg fetched both parts: {:?}", bili.iter().map(|b| &b.0).collect::<Vec<_>>());
    for (path, headers) in bili {
        assert_eq!(headers["referer"], "https://www.bilibili.com/", "{path}");
        assert_eq!(headers["user-agent"], "Mozilla/5.0 (stand-in)", "{path}");
    }
}

#[tokio::test]
async fn a_hang_up_kills_ffmpeg() {
    let app = spawn_app().await;
    let id = yt_id("slowslowslo");
    let mut resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.chunk().await.unwrap().is_some());
    assert_eq!(app.metrics().await["active_streams"], 1);
    let running = || {
        let out = std::process::Command::new("pgrep").args(["-f", &format!("ffmpeg.*{id}")]).output().unwrap();
        !out.stdout.is_empty()
    };
    assert!(running(), "ffmpeg is working while the client reads");
    drop(resp);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !running() && app.metrics().await["active_streams"] == 0 {
            return;
        }
    }
    panic!("ffmpeg still running or stream still counted after the hang-up");
}

#[tokio::test]
async fn merge_failures_are_502_without_ffmpeg_noise() {
    let dead = Origin::dead();
    let app = spawn().origin(&dead).start().await;
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{}?quality=720p", yt_id("mdead"))).await;
    assert_eq!(status, 502, "{body}");
    assert_error_shape(status, &body);
    assert!(!body["detail"].as_str().unwrap().contains("ffmpeg version"), "{body}");
}

#[tokio::test]
async fn hls_plays_through_the_server() {
    let app = spawn().arg("--url-signing-key", "test-key").start().await;
    let origin_host = app.origin.base.trim_start_matches("http://").to_owned();
    let resp = app.get("/api/v2/stream/proxy/twitch/123456").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/vnd.apple.mpegurl");
    let master = resp.text().await.unwrap();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    assert!(!master.contains(&origin_host), "no origin host in the playlist: {master}");
    let variant = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).expect("a rewritten variant");

    let resp = app.get(variant).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().contains("mpegurl"));
    let media_pl = resp.text().await.unwrap();
    assert!(!media_pl.contains(&origin_host), "{media_pl}");
    let map = media_pl.lines().find(|l| l.starts_with("#EXT-X-MAP:")).expect("an init section");
    let map_uri = map.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let segments: Vec<&str> = media_pl.lines().filter(|l| l.starts_with("/api/v2/stream/hls/")).collect();
    assert!(segments.len() >= 3, "{media_pl}");
    // Nor inside the links: each token (the grant is sealed, not just
    // signed) is base64url, and read every way a client could read it (as
    // it is, percent-decoded, as hex, as base64url) says nothing of the
    // origin and is no readable grant.
    for link in segments.iter().chain([&variant, &map_uri]) {
        let token = link.split('/').nth(5).unwrap();
        for part in token.split('.') {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap_or_else(|e| panic!("{link}: each part of a token is base64url ({e})"));
            assert!(!decoded.is_empty(), "{link}");
            let mut readings = vec![part.as_bytes().to_vec(), decoded];
            readings.push(percent_encoding::percent_decode_str(part).collect());
            if part.len() % 2 == 0 && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                readings.push(
                    (0..part.len()).step_by(2).map(|i| u8::from_str_radix(&part[i..i + 2], 16).unwrap()).collect(),
                );
            }
            for bytes in readings {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(&origin_host) && !text.contains("/media/hls"), "{link} reads as {text}");
                assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err(), "{link} reads as {text}");
            }
        }
    }

    let init = app.get(map_uri).await.bytes().await.unwrap();
    assert_eq!(init.as_ref(), media("hls/v0/init.mp4").as_slice());
    for (i, seg) in segments.iter().enumerate() {
        let resp = app.get(seg).await;
        assert_eq!(resp.status(), 200, "{seg}");
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            media(&format!("hls/v0/seg{i}.m4s")).as_slice(),
            "segment {i}"
        );
    }

    // A player (ffprobe) reads it all through the server.
    let streams = probe_target(&format!("{}/api/v2/stream/proxy/twitch/123456", app.base)).await;
    assert!(has_video_and_audio(&streams, 640, 360), "{streams:?}");

    // Direct mode redirects to the playlist itself, which plays by itself.
    let resp = app.get("/api/v2/stream/direct/twitch/123456").await;
    assert_eq!(resp.status(), 302);
    assert!(resp.headers()["location"].to_str().unwrap().ends_with("/media/hls/master.m3u8"));
    assert_eq!(app.fake.runs(), 1);
}

#[tokio::test]
async fn tampered_or_expired_links_are_refused() {
    let app = spawn().arg("--url-signing-key", "test-key").start().await;
    let master = app.get("/api/v2/stream/proxy/twitch/123456").await.text().await.unwrap();
    let link = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap().to_owned();
    let token = link.trim_start_matches("/api/v2/stream/hls/").split('/').next().unwrap().to_owned();
    let grant = |key: &str, e: i64| {
        reelay::hls::Signer::new(Some(key)).seal(&reelay::hls::Grant {
            u: format!("{}/media/clip.mp4", app.origin.base),
            v: "video:twitch:123456".into(),
            f: "360p".into(),
            e,
            p: false,
        })
    };
    // One character of the sealed token changed; sealed with another key;
    // expired; only signed (as links were before they were sealed); garbage.
    let mut altered = token.clone().into_bytes();
    altered[30] = if altered[30] == b'A' { b'B' } else { b'A' };
    let signed_only = reelay::hls::Signer::new(Some("test-key")).sign(&reelay::hls::Grant {
        u: format!("{}/media/clip.mp4", app.origin.base),
        v: "video:twitch:123456".into(),
        f: "360p".into(),
        e: i64::MAX,
        p: false,
    });
    for token in [
        String::from_utf8(altered).unwrap(),
        grant("another-key", i64::MAX),
        grant("test-key", 1),
        signed_only,
        "x".into(),
    ] {
        let (status, body) = app.json(&format!("/api/v2/stream/hls/{token}/seg.m4s")).await;
        assert_eq!(status, 403, "{token}: {body}");
        assert_error_shape(status, &body);
    }
    // The same key seals links the server accepts (instances share it).
    let good = grant("test-key", i64::MAX);
    assert_eq!(app.get(&format!("/api/v2/stream/hls/{good}/clip.mp4")).await.status(), 200);
}
