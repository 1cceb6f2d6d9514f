//! A live origin made from the wall clock, shaped like Twitch's: 2 s
//! segments, a window of 5, `PROGRAM-DATE-TIME` on each, Twitch's header
//! extras (the client's address among them) and prefetch lines, an ad
//! marker carrying a tracking URL, low-latency parts and a preload hint.
//! Each session (`session=`, the extraction's time in ms) numbers the
//! segments from 100 at its start, so a new session renumbers them; its
//! URLs carry `expire=` (and, for sessions cut short, `until=`), after
//! which the origin answers 403 (`helpers::url_refused`).
//!
//! Channels named `flaky…` answer 503 to playlist requests three seconds
//! in every ten.
//!
//! Segment N is the real MPEG-TS segment `N mod 30` of a minute of test
//! pattern, with `EXT-X-DISCONTINUITY` where the minute starts again, so
//! real players (hls.js) play it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Segment length, ms.
pub const SEGMENT_MS: i64 = 2000;
/// Segments listed.
pub const WINDOW: i64 = 5;
/// Real segments the pattern has (a minute).
pub const LOOP: i64 = 30;

/// The segment being made now (not listed yet).
pub fn current() -> i64 {
    chrono::Utc::now().timestamp_millis() / SEGMENT_MS
}

/// The session's number of wall-clock segment `n`.
fn numbered(n: i64, session: Option<i64>) -> i64 {
    match session {
        Some(s) => n - s / SEGMENT_MS + 100,
        None => n,
    }
}

fn date(n: i64) -> String {
    chrono::DateTime::from_timestamp_millis(n * SEGMENT_MS).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Writes the minute of test pattern as `live/seg{0..30}.ts` (once).
pub fn make_segments(dir: &Path) {
    let live = dir.join("live");
    if live.join(format!("seg{}.ts", LOOP - 1)).exists() {
        return;
    }
    let tmp = dir.join(format!("live-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "60"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(tmp.join("seg%d.ts"))
        .arg(tmp.join("index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg failed making the live segments");
    let _ = std::fs::rename(&tmp, &live);
}

fn param(query: &str, name: &str) -> Option<i64> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// `/live/{channel}/{variant}/index.m3u8?session=&expire=`.
pub async fn playlist(
    UrlPath((channel, variant)): UrlPath<(String, String)>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    if channel.starts_with("flaky") && (chrono::Utc::now().timestamp() % 10) >= 7 {
        // Three seconds in every ten, the playlist fails.
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let session = param(&query, "session");
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}/live/{channel}/{variant}");
    let now = current();
    let first = now - WINDOW;
    let mut t = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n");
    t += &format!("#EXT-X-MEDIA-SEQUENCE:{}\n", numbered(first, session));
    t += "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-PART-INF:PART-TARGET=0.5\n";
    t += &format!("#EXT-X-TWITCH-ELAPSED-SECS:{}.000\n", (now - first) * 2);
    t += &format!(
        "#EXT-X-TWITCH-INFO:NODE=\"video-edge-test\",MANIFEST-NODE-URL=\"{base}/node\",USER-IP=\"{}\",SERVER-TIME=\"{now}\"\n",
        peer.ip()
    );
    for n in first..now {
        if n % LOOP == 0 {
            t += "#EXT-X-DISCONTINUITY\n";
        }
        t += &format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", date(n));
        if n % 15 == 7 {
            t += &format!(
                "#EXT-X-DATERANGE:ID=\"ad-{n}\",CLASS=\"twitch-stitched-ad\",START-DATE=\"{}\",DURATION=2.000,X-TV-TWITCH-AD-CLICK-TRACKING-URL=\"{base}/ads/click\"\n",
                date(n)
            );
        }
        if n == now - 1 {
            for p in 0..4 {
                t += &format!("#EXT-X-PART:DURATION=0.500,URI=\"{base}/{n}.{p}.ts?{query}\"\n");
            }
        }
        t += &format!("#EXTINF:2.000,live\n{base}/{n}.ts?{query}\n");
    }
    t += &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{base}/{now}.0.ts?{query}\"\n");
    for n in now..now + 2 {
        t += &format!("#EXT-X-TWITCH-PREFETCH:{base}/{n}.ts?{query}\n");
    }
    ([(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")], t).into_response()
}

/// `/live/{channel}/{variant}/{n}.ts`: the pattern's segment, once it is
/// complete (404 before).
pub async fn segment(UrlPath((_channel, _variant, name)): UrlPath<(String, String, String)>) -> Response {
    let Some(n) = name.strip_suffix(".ts").and_then(|n| n.parse::<i64>().ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if n >= current() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = crate::helpers::media_dir().join(format!("live/seg{}.ts", n.rem_euclid(LOOP)));
    match tokio::fs::read(path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "video/mp2t")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The bytes the origin serves for wall-clock segment `n`.
pub fn segment_bytes(n: i64) -> Vec<u8> {
    crate::helpers::media(&format!("live/seg{}.ts", n.rem_euclid(LOOP)))
}
