//! The relay engine against origins that behave like real ones
//! (tests/api/quirks.rs): one shared fetch for many viewers, ranges decided
//! by reelay, resumes after cuts, stalls and expiring URLs, googlevideo's
//! query ranges, the memory budget and the disk tier, and merges that are
//! made once and then served like files.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::quirks::file;

fn digest(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn noise() -> String {
    digest(&file("rand64.bin"))
}

/// The whole stream of `id` at 360p, checked to be a 200.
async fn download(app: &TestApp, id: &str) -> Vec<u8> {
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert_eq!(resp.status(), 200, "{id}");
    resp.bytes().await.unwrap().to_vec()
}

/// Every `Range: bytes=a-b` the origin saw for `prefix`, as lengths.
fn range_lengths(origin: &Origin, prefix: &str) -> Vec<u64> {
    origin
        .requests(prefix)
        .iter()
        .map(|(p, h)| {
            let r = h.get("range").unwrap_or_else(|| panic!("{p} asked without a Range")).to_str().unwrap();
            let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
            b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1
        })
        .collect()
}

#[tokio::test]
async fn twenty_viewers_of_one_video_share_one_fetch() {
    let app = spawn_app().await;
    let id = yt_id("qshare");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    let viewers: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (app.http.clone(), url.clone());
            tokio::spawn(async move {
                let resp = http.get(url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.headers()["content-length"], RAND_LEN.to_string().as_str());
                digest(&resp.bytes().await.unwrap())
            })
        })
        .collect();
    for v in viewers {
        assert_eq!(v.await.unwrap(), noise(), "every viewer gets the file intact");
    }
    let sent = app.origin.sent("/q/ranged/rand64.bin");
    assert!(sent <= RAND_LEN * 105 / 100, "the origin sent {sent} bytes for 20 viewers of {RAND_LEN}");
    assert!(app.prom("reelay_relay_coalesced_readers_total").await >= 19.0);
    assert_eq!(app.fake.runs(), 1);
    assert_eq!(app.metrics().await["active_streams"], 0);

    // Later viewers are served from the store, ranges included.
    let again = app.http.get(&url).header("range", "bytes=1000000-1999999").send().await.unwrap();
    assert_eq!(again.status(), 206);
    assert_eq!(again.bytes().await.unwrap().as_ref(), &file("rand64.bin")[1_000_000..2_000_000]);
    assert_eq!(app.origin.sent("/q/ranged/rand64.bin"), sent, "no new origin bytes for a stored range");
}

#[tokio::test]
async fn a_cut_connection_is_resumed_from_the_next_missing_byte() {
    let app = spawn_app().await;
    let body = download(&app, &yt_id("qcut")).await;
    assert_eq!(body.len() as u64, RAND_LEN);
    assert_eq!(digest(&body), noise());
    assert!(app.prom(r#"reelay_relay_resumes_total{reason="dropped"}"#).await >= 1.0);
    let sent = app.origin.sent("/q/cut/rand64.bin");
    assert!(sent <= RAND_LEN * 11 / 10, "resumes ask only for what is missing: {sent}");
}

#[tokio::test]
async fn a_throttling_origin_is_asked_in_the_formats_chunk_size() {
    let app = spawn_app().await;
    let body = download(&app, &yt_id("qthrot")).await;
    assert_eq!(digest(&body), noise());
    let lengths = range_lengths(&app.origin, "/q/throttle/");
    assert!(lengths.len() >= 7, "{lengths:?}");
    assert!(lengths.iter().all(|n| *n <= 10 << 20), "no request past http_chunk_size: {lengths:?}");
}

/// What is fetched is sized to what is read: a seek costs the origin the
/// one block (1 MiB) it lands in, not a range; a reader that goes on gets
/// ranges that grow as it reads, up to the chunk size (8 MiB here) and
/// never past it.
#[tokio::test]
async fn a_seek_fetches_its_block_and_reading_on_fetches_more() {
    let app = spawn_app().await;
    let id = yt_id("qshare");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    // A seek to 40 MB, cold: its block's response also says the length.
    let mut seek = app.http.get(&url).header("range", "bytes=40000000-").send().await.unwrap();
    assert_eq!(seek.status(), 206);
    assert!(seek.chunk().await.unwrap().is_some());
    drop(seek);
    let asked: Vec<String> = app
        .origin
        .requests("/q/ranged/rand64.bin")
        .iter()
        .map(|(_, h)| h["range"].to_str().unwrap().to_owned())
        .collect();
    // First the block the seek lands in, alone. The server runs on its own
    // threads and may read on while the client still holds the connection:
    // what it fetched then is what a reader going on gets, never a chunk.
    assert_eq!(asked.first().map(String::as_str), Some("bytes=39845888-40894463"), "{asked:?}");
    let seek_lengths = range_lengths(&app.origin, "/q/ranged/");
    assert!(seek_lengths.iter().all(|n| *n < 8 << 20), "a seek fetched a whole chunk: {asked:?}");
    // A whole download of another video: growing ranges, within the chunk.
    let body = download(&app, &yt_id("qshare")).await;
    assert_eq!(digest(&body), noise());
    let lengths = range_lengths(&app.origin, "/q/ranged/");
    let lengths = &lengths[asked.len()..];
    assert_eq!(lengths[0], 1 << 20, "{lengths:?}");
    assert!(lengths.iter().all(|n| *n <= 8 << 20), "{lengths:?}");
    assert!(lengths.contains(&(8 << 20)), "ranges grow to the chunk size: {lengths:?}");
    assert!(lengths.len() < 20, "64 MiB in few requests: {lengths:?}");
}

#[tokio::test]
async fn googlevideo_gets_its_range_in_the_query() {
    let app = spawn_app().await;
    let body = download(&app, &yt_id("qgoogle")).await;
    assert_eq!(digest(&body), noise());
    let seen = app.origin.requests("/videoplayback");
    assert!(seen.len() >= 7, "{}", seen.len());
    for (target, headers) in &seen {
        assert!(headers.get("range").is_none(), "{target}");
        let url = url::Url::parse(&format!("http://x{target}")).unwrap();
        let range = url.query_pairs().find(|(k, _)| k == "range").unwrap_or_else(|| panic!("{target}")).1.into_owned();
        let (a, b) = range.split_once('-').unwrap();
        assert!(b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() < 10 << 20, "{target}");
    }
}

#[tokio::test]
async fn a_stalled_origin_is_asked_again() {
    let app = spawn().arg("--stream-idle-timeout", 1).start().await;
    let body = download(&app, &yt_id("qstall")).await;
    assert_eq!(digest(&body), noise());
    assert!(app.prom(r#"reelay_relay_resumes_total{reason="dropped"}"#).await >= 1.0);
}

#[tokio::test]
async fn a_url_that_expires_mid_body_is_extracted_again_and_continued() {
    let app = spawn_app().await;
    let body = download(&app, &yt_id("qexpire")).await;
    assert_eq!(digest(&body), noise());
    assert_eq!(app.fake.runs(), 2, "one extraction, and one more for the refused URL");
    assert!(app.prom(r#"reelay_relay_resumes_total{reason="expired"}"#).await >= 1.0);
}

#[tokio::test]
async fn a_slow_reader_does_not_hold_back_a_fast_one() {
    let app = spawn_app().await;
    let id = yt_id("qshare");
    let mut slow = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    let first = slow.chunk().await.unwrap().unwrap();
    // The slow one stops reading; the fast one reads everything.
    let fast = download(&app, &id).await;
    assert_eq!(digest(&fast), noise());
    let mut rest = first.to_vec();
    while let Some(chunk) = slow.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(digest(&rest), noise(), "and the slow one still gets it all");
}

#[tokio::test]
async fn ranges_are_decided_by_rfc_9110() {
    let app = spawn_app().await;
    let id = yt_id("qshare");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    let noise = file("rand64.bin");
    let get = |range: &'static str| app.http.get(&url).header("range", range).send();
    // Invalid: ignored, the whole file.
    let resp = get("bytes=500-100").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], RAND_LEN.to_string().as_str());
    drop(resp);
    // A zero-length suffix is unsatisfiable: 416, in the API's error shape.
    let resp = get("bytes=-0").await.unwrap();
    assert_eq!(resp.status(), 416);
    assert_eq!(resp.headers()["content-range"], format!("bytes */{RAND_LEN}").as_str());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error_shape(reqwest::StatusCode::RANGE_NOT_SATISFIABLE, &body);
    // Several ranges: the first.
    let resp = get("bytes=10-19,100-199").await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 10-19/{RAND_LEN}").as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &noise[10..20]);
    // The last bytes, and a range that starts past the end.
    let resp = get("bytes=-5").await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &noise[noise.len() - 5..]);
    assert_eq!(get("bytes=99999999999-").await.unwrap().status(), 416);
    // HEAD: the length, nothing else.
    let head = app.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], RAND_LEN.to_string().as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
}

#[tokio::test]
async fn a_small_budget_evicts_and_still_serves_every_byte() {
    let app = spawn().arg("--stream-cache-memory", "4MiB").start().await;
    let id = yt_id("qshare");
    for _ in 0..2 {
        assert_eq!(digest(&download(&app, &id).await), noise());
    }
    assert!(app.prom(r#"reelay_relay_evictions_total{tier="memory"}"#).await > 0.0);
    let held = app.prom("reelay_relay_store_bytes").await;
    assert!(held <= (5 << 20) as f64, "the store holds {held} bytes with a 4 MiB budget");
    let sent = app.origin.sent("/q/ranged/rand64.bin");
    assert!(sent >= 2 * RAND_LEN, "what was evicted is fetched again: {sent}");
}

/// Waits until the disk tier has written `n` blocks.
async fn disk_writes(app: &TestApp, n: f64) {
    for _ in 0..200 {
        if app.prom("reelay_relay_disk_writes_total").await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the disk tier never wrote {n} blocks");
}

#[tokio::test]
async fn the_disk_tier_survives_a_restart_and_drops_a_corrupt_block() {
    let dir = tempfile::tempdir().unwrap();
    let origin = spawn_origin().await;
    let id = yt_id("qshare");
    let with_disk = || spawn().origin(&origin).arg("--stream-cache-dir", dir.path().display());
    let blocks = (RAND_LEN >> 20) as f64;
    {
        let app = with_disk().start().await;
        assert_eq!(digest(&download(&app, &id).await), noise());
        disk_writes(&app, blocks).await;
    }
    let sent = origin.sent("/q/ranged/rand64.bin");
    assert_eq!(sent, RAND_LEN);

    // A new process: every block comes from disk, none from the origin.
    let app = with_disk().start().await;
    assert_eq!(digest(&download(&app, &id).await), noise());
    assert_eq!(origin.sent("/q/ranged/rand64.bin"), sent, "nothing fetched again");
    assert_eq!(app.prom("reelay_relay_disk_reads_total").await, blocks);
    drop(app);

    // One block file damaged: detected, dropped, fetched again alone.
    let object = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let block = object.join("00000007.blk");
    let mut raw = std::fs::read(&block).unwrap();
    raw[1000] ^= 0xff;
    std::fs::write(&block, raw).unwrap();
    let app = with_disk().start().await;
    assert_eq!(digest(&download(&app, &id).await), noise());
    assert_eq!(app.prom("reelay_relay_disk_corrupt_blocks_total").await, 1.0);
    assert_eq!(origin.sent("/q/ranged/rand64.bin") - sent, 1 << 20, "only the damaged block is fetched");
}

#[tokio::test]
async fn an_unusable_disk_leaves_streams_to_memory() {
    let app = spawn().arg("--stream-cache-dir", "/dev/null/reelay").start().await;
    assert_eq!(digest(&download(&app, &yt_id("qshare")).await), noise());
    assert!(app.prom("reelay_relay_disk_errors_total").await >= 1.0);
}

#[tokio::test]
async fn hls_segments_are_fetched_once_for_every_viewer() {
    let app = spawn().arg("--url-signing-key", "k").start().await;
    let master = app.get("/api/v2/stream/proxy/twitch/123456").await.text().await.unwrap();
    let variant = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap().to_owned();
    let media_pl = app.get(&variant).await.text().await.unwrap();
    let segment = media_pl.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap().to_owned();
    for _ in 0..3 {
        let resp = app.get(&segment).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), media("hls/v0/seg0.m4s").as_slice());
    }
    assert_eq!(app.origin.requests("/media/hls/v0/seg0.m4s").len(), 1);
}

/// ffprobe's streams of `target` (codec type, width, height).
async fn probe(target: &str) -> Vec<(String, u64, u64)> {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json", target])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "ffprobe {target}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            (s["codec_type"].as_str().unwrap().to_owned(), n("width"), n("height"))
        })
        .collect()
}

#[tokio::test]
async fn ten_viewers_of_a_merge_share_one_ffmpeg_and_then_seek_in_it() {
    let app = spawn_app().await;
    let id = yt_id("qmerge");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=720p", app.base);
    let viewers: Vec<_> = (0..10)
        .map(|_| {
            let (http, url) = (app.http.clone(), url.clone());
            tokio::spawn(async move {
                let resp = http.get(url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap()
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for v in viewers {
        outputs.push(v.await.unwrap());
    }
    assert!(outputs.iter().all(|o| *o == outputs[0]), "every viewer got the same bytes");
    assert_eq!(app.prom("reelay_relay_merges_total").await, 1.0, "one ffmpeg");
    for input in ["v720.mp4", "a.m4a"] {
        // Once, besides the head read that looked for a DASH index (these
        // files have none, so ffmpeg merges them): at most 64 KiB.
        let (sent, len) = (app.origin.sent(&format!("/q/ranged/{input}")), media(input).len() as u64);
        assert!((len..=len + (64 << 10)).contains(&sent), "{input} fetched once: {sent} of {len}");
    }

    // Complete: a file with a length, ranges and seeking.
    let len = outputs[0].len();
    let head = app.http.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let part = app.http.get(&url).header("range", "bytes=1000-1999").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &outputs[0][1000..2000]);
    let streams = probe(&url).await;
    assert!(streams.iter().any(|s| s.0 == "video" && s.1 == 1280 && s.2 == 720), "{streams:?}");
    assert!(streams.iter().any(|s| s.0 == "audio"), "{streams:?}");
    let seek = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "2", "-i", &url, "-frames:v", "1", "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(seek.status.success(), "{}", String::from_utf8_lossy(&seek.stderr));
    assert_eq!(app.prom("reelay_relay_merges_total").await, 1.0, "seeking needs no new merge");
}

#[tokio::test]
async fn a_viewer_who_leaves_does_not_stop_a_merge_others_watch() {
    let app = spawn_app().await;
    let id = yt_id("qpaced");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=720p", app.base);
    let mut leaving = app.http.get(&url).send().await.unwrap();
    let mut staying = app.http.get(&url).send().await.unwrap();
    assert_eq!((leaving.status().as_u16(), staying.status().as_u16()), (200, 200));
    let mut got = staying.chunk().await.unwrap().unwrap().to_vec();
    assert!(leaving.chunk().await.unwrap().is_some());
    drop(leaving);
    while let Some(chunk) = staying.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(app.prom("reelay_relay_merges_total").await, 1.0, "the merge went on for the one who stayed");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("merged.mp4");
    std::fs::write(&path, &got).unwrap();
    let streams = probe(path.to_str().unwrap()).await;
    assert!(
        streams.iter().any(|s| s.0 == "video" && s.2 == 720) && streams.iter().any(|s| s.0 == "audio"),
        "{streams:?}"
    );
}
