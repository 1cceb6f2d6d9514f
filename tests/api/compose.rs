//! Composed files (`relay::compose`): a two-hour film served the way
//! YouTube serves it above 360p, as separate DASH video (5 s fragments,
//! each with its `sidx`) and audio (AAC in fragments of about 10 s that
//! straddle the video's), merged in process. What a player checks: the
//! length and the duration from the first request, a seek anywhere on a
//! cold store that fetches only what it covers, the source's own picture
//! where a cut starts, the same bytes from every instance.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::helpers::*;

/// The film's files in the media folder (video, audio), made once: 320x180
/// at 2 fps with a keyframe every 5 s (about 100 MB), and 8 kHz AAC (15 MB).
fn film() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = media_dir();
        let jobs: [(&str, &[&str]); 2] = [
            (
                "film-v.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=320x180:rate=2",
                    "-t",
                    "7200",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                ]
                .into_iter()
                .chain(["-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-an"])
                .collect::<Vec<_>>(),
            ),
            (
                "film-a.m4a",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:sample_rate=8000",
                    "-t",
                    "7200",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "16k",
                ]
                .into_iter()
                .chain(["-ac", "1", "-frag_duration", "10000000"])
                .collect::<Vec<_>>(),
            ),
        ];
        for (name, args) in jobs {
            let out = dir.join(name);
            if out.exists() {
                continue;
            }
            let tmp = dir.join(format!("tmp-{}-{name}", std::process::id()));
            let status = Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error"])
                .args(args)
                .args(["-movflags", "+dash+global_sidx", "-f", "mp4"])
                .arg(&tmp)
                .status()
                .expect("ffmpeg runs");
            assert!(status.success(), "ffmpeg made {name}");
            std::fs::rename(&tmp, &out).unwrap();
        }
        (dir.join("film-v.mp4"), dir.join("film-a.m4a"))
    })
}

fn film_bytes() -> u64 {
    let (v, a) = film();
    std::fs::metadata(v).unwrap().len() + std::fs::metadata(a).unwrap().len()
}

/// An app whose origin ranges are small (256 KiB), so what a seek fetches
/// is measured finely.
async fn app() -> TestApp {
    film();
    spawn().arg("--stream-chunk-size", "256KiB").start().await
}

fn link(id: &str) -> String {
    format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")
}

/// Bytes of the film's files the origin was asked for (the ranges asked:
/// at least what it sent).
fn asked(app: &TestApp) -> u64 {
    let whole = |p: &str| if p.contains("film-v") { film().0.clone() } else { film().1.clone() };
    app.origin
        .requests("/media/film-")
        .iter()
        .map(|(p, h)| {
            let len = std::fs::metadata(whole(p)).unwrap().len();
            let range = h.get("range").and_then(|r| r.to_str().ok()).and_then(|r| r.strip_prefix("bytes="));
            match range.and_then(|r| r.split_once('-')) {
                Some((a, b)) => {
                    let a: u64 = a.parse().unwrap();
                    let b: u64 = b.parse().map_or(len - 1, |b: u64| b.min(len - 1));
                    b + 1 - a
                }
                None => len,
            }
        })
        .sum()
}

/// The text of a `200` from `path`.
async fn text(app: &TestApp, path: &str) -> String {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

async fn probe(url: &str) -> Value {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{url}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kinds(p: &Value) -> Vec<String> {
    p["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].as_str().unwrap().to_owned()).collect()
}

/// The first picture of `input` from `t` s on, as grey bytes.
async fn picture(input: &str, t: f64) -> Vec<u8> {
    frame(&["-ss", &t.to_string(), "-i", input]).await
}

/// The first picture ffmpeg decodes with `input_args` (`-i` among them),
/// as grey bytes.
async fn frame(input_args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new("ffmpeg")
        .arg("-v")
        .arg("error")
        .args(input_args)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success() && out.stdout.len() == 320 * 180,
        "{input_args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Cold, the merged film answers as a file: `HEAD` has its length and
/// ranges, a first request from 75% is a `206` with those bytes, ffprobe
/// reads both streams and the whole two hours; nothing of the film was
/// fetched but its heads and what was asked, and no ffmpeg ran.
#[tokio::test]
async fn a_merged_film_has_its_length_and_duration_from_the_first_request() {
    let app = app().await;
    let id = yt_id("film");
    let head = app.http.head(format!("{}{}", app.base, link(&id))).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let h = head.headers();
    let len: u64 = h["content-length"].to_str().unwrap().parse().unwrap();
    assert!(
        len > film_bytes() - 64 * 1024 && len < film_bytes() + 64 * 1024,
        "{len} for {} bytes of film",
        film_bytes()
    );
    assert_eq!((h["accept-ranges"].to_str().unwrap(), h["content-type"].to_str().unwrap()), ("bytes", "video/mp4"));
    assert_eq!(h["x-reelay-format"], "136+140");
    let etag = h["etag"].to_str().unwrap().to_owned();
    // The heads only: one block per file (the store's 1 MiB blocks are the
    // least a fetch asks for; nothing is fetched ahead of a first read).
    assert!(asked(&app) <= 2 << 20, "the heads only: {} bytes asked", asked(&app));

    let from = len * 3 / 4;
    let mut resp = app
        .http
        .get(format!("{}{}", app.base, link(&id)))
        .header("range", format!("bytes={from}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes {from}-{}/{len}", len - 1).as_str());
    assert_eq!(resp.headers()["etag"], etag.as_str());
    assert!(resp.chunk().await.unwrap().is_some_and(|c| !c.is_empty()));
    drop(resp);

    let p = probe(&format!("{}{}", app.base, link(&id))).await;
    assert_eq!(kinds(&p), ["video", "audio"], "{p}");
    let duration: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 7200.0).abs() < 1.0, "a player reads {duration} s");
    assert!(asked(&app) < 16 << 20, "{} of {} bytes asked", asked(&app), film_bytes());
    assert_eq!(app.prom("reelay_relay_merges_total").await, 0.0, "no ffmpeg");
}

/// 4 s of `url` from `t` s on, cut as a player seeks (`ffmpeg -ss T -i
/// <link> -c copy`), into `out`.
async fn cut(url: &str, t: f64, out: &Path) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", &t.to_string(), "-i", url])
        .args(["-t", "4", "-c", "copy", "-f", "mp4"])
        .arg(out)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "ffmpeg cut at {t}");
}

/// A cut made as a player seeks (`ffmpeg -ss T -i <link> -c copy`), near
/// the start, in the middle and near the end, each on a cold store: both
/// streams, the source's own picture at T, and the origin asked for a
/// small part of the film.
#[tokio::test]
async fn a_cut_anywhere_starts_at_the_sources_picture() {
    let source = film().0.to_str().unwrap();
    for t in [60.0, 3600.0, 7140.0] {
        let app = app().await;
        let id = yt_id("film");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cut-{}-{t}.mp4", std::process::id()));
        cut(&format!("{}{}", app.base, link(&id)), t, &out).await;
        let cut = out.to_str().unwrap();
        assert_eq!(kinds(&probe(cut).await), ["video", "audio"], "cut at {t}");
        assert_eq!(picture(cut, 0.0).await, picture(source, t).await, "the cut at {t} starts at the source's picture");
        let asked = asked(&app);
        assert!(asked < 16 << 20, "a cut at {t} asked the origin for {asked} of {} bytes", film_bytes());
        let _ = std::fs::remove_file(Path::new(cut));
    }
}

/// The film through SABR only (`sabrfilm…`: the stand-in SABR server's
/// formats 137 and 141, `sabr_origin.rs`): a cut at 1:30:00 made from the
/// composed file on a cold store has both streams and starts at the
/// source's picture there, and the SABR server sent each segment once: the
/// film's head and the store blocks around 1:30:00, none between.
#[tokio::test]
async fn a_seek_into_a_sabr_film_fetches_from_there() {
    let source = film().0.to_str().unwrap().to_owned();
    let app = app().await;
    let id = yt_id("sabrfilm");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sabr-cut-{}.mp4", std::process::id()));
    let t = std::time::Instant::now();
    cut(&format!("{}{}", app.base, link(&id)), 5400.0, &out).await;
    let took = t.elapsed();
    let cut = out.to_str().unwrap();
    assert_eq!(kinds(&probe(cut).await), ["video", "audio"]);
    assert_eq!(picture(cut, 0.0).await, picture(&source, 5400.0).await, "the source's picture at 5400 s");
    let _ = std::fs::remove_file(&out);
    let sent = crate::sabr_origin::stats(&id).sent;
    // 5 s video segments (n holds [5(n-1), 5n) s) and 10 s audio ones; the
    // store's 1 MiB blocks are fetched from their start (about 70 s of
    // video, 500 s of this audio).
    let between = |itag: u64, a: u64, b: u64| sent.iter().filter(move |&&(i, n)| i == itag && n > a && n < b);
    let video: Vec<_> = between(137, 60, 5400 / 5 - 20).collect();
    let audio: Vec<_> = between(141, 60, 5400 / 10 - 60).collect();
    assert!(video.is_empty() && audio.is_empty(), "sent between the head and 1:30:00: {video:?} {audio:?}");
    assert!(sent.iter().any(|&(i, n)| i == 137 && n > 1080), "the segments at 1:30:00 came: {sent:?}");
    // Two fetches that meet at a block boundary may both ask for the
    // segment across it.
    let once: std::collections::HashSet<_> = sent.iter().collect();
    assert!(sent.len() - once.len() <= 4, "each segment sent once, or twice at a boundary: {sent:?}");
    eprintln!("SABR cut at 5400 s: {} segments sent, {took:?}", sent.len());
}

/// A film watched while its stream URLs come within a minute of expiring
/// (the cache let the info go): the viewer's next fetches from the origin
/// take new URLs (the video extracted again) rather than the old ones,
/// which would be refused mid-body a minute later.
#[tokio::test]
async fn urls_about_to_expire_are_renewed_before_the_next_fetch() {
    let app = app().await;
    let id = yt_id("filmsoon");
    let mut resp = app.http.get(format!("{}{}", app.base, link(&id))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut read = 0usize;
    while read < 1 << 20 {
        read += resp.chunk().await.unwrap().unwrap().len();
    }
    // The first extraction's URLs now expire within the cache's minute.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let before = app.origin.requests("/media/film-v.mp4").len();
    while read < 40 << 20 {
        read += resp.chunk().await.unwrap().unwrap().len();
    }
    drop(resp);
    let expiry = |path: &str| -> i64 {
        let q = path.split_once('?').map_or("", |(_, q)| q);
        q.split('&').find_map(|kv| kv.strip_prefix("expire=")).and_then(|e| e.parse().ok()).unwrap_or(0)
    };
    let asked: Vec<i64> = app.origin.requests("/media/film-v.mp4").iter().map(|(p, _)| expiry(p)).collect();
    let now = chrono::Utc::now().timestamp();
    assert!(asked[0] < now + 100, "the first fetches took the first URL: {asked:?}");
    assert!(asked.len() > before, "the reader's later bytes were fetched after the pause: {asked:?}");
    assert!(*asked.last().unwrap() > now + 1000, "the fetches after took a new URL: {asked:?}");
    assert_eq!(app.fake.runs(), 2);
}

/// The same bytes and validator from two instances that share nothing but
/// the origin; `If-Range` with a stale validator gets the whole file, with
/// the right one the range; `If-None-Match` a `304`.
#[tokio::test]
async fn composed_bytes_are_the_same_everywhere() {
    let one = app().await;
    let two = spawn().origin(&one.origin).start().await;
    let id = yt_id("film");
    let get = |app: &TestApp, range: &str, extra: Option<(&'static str, String)>| {
        let mut req = app.http.get(format!("{}{}", app.base, link(&id))).header("range", range.to_owned());
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let mut etags = Vec::new();
    for range in ["bytes=0-65535", "bytes=9000000-9100000"] {
        let (a, b) = (get(&one, range, None).await.unwrap(), get(&two, range, None).await.unwrap());
        etags.push(a.headers()["etag"].to_str().unwrap().to_owned());
        assert_eq!(a.headers()["etag"], b.headers()["etag"]);
        assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap(), "{range}");
    }
    let etag = etags[0].clone();
    let stale = get(&one, "bytes=0-9", Some(("if-range", "\"m-stale\"".into()))).await.unwrap();
    assert_eq!(stale.status(), 200, "a stale If-Range gets the whole file");
    let len: u64 = stale.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(len > film_bytes() / 2);
    drop(stale);
    let fresh = get(&one, "bytes=0-9", Some(("if-range", etag.clone()))).await.unwrap();
    assert_eq!((fresh.status().as_u16(), fresh.bytes().await.unwrap().len()), (206, 10));
    let same = one.http.get(format!("{}{}", one.base, link(&id))).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(same.status(), 304);
}

/// Chromium's `<video>`, given the link: it reads the two hours, seeks to
/// 1:30:00 and plays on from there; given a clip's, its 30 s. (What it reads ahead is its own media
/// cache's choice: over loopback it takes the whole film in seconds.)
#[tokio::test]
async fn chromium_reads_the_duration_and_seeks_to_the_last_half_hour() {
    let app = app().await;
    let play = |url: String, seek: f64| async move {
        let report = browser_report("film.mjs", &serde_json::json!({"url": url, "seek": seek})).await;
        assert!(report["error"].is_null(), "{report}");
        report
    };
    let id = yt_id("film");
    // A clip of it: Chromium reads its 30 s and plays within it.
    let clip = play(format!("{}{}&start=5400&end=5430", app.base, link(&id)), 10.0).await;
    let duration = clip["duration"].as_f64().unwrap();
    assert!((duration - 30.0).abs() < 0.5, "Chromium reads a clip of {duration} s: {clip}");
    assert!(clip["playing_at"].as_f64().unwrap() > 10.5, "{clip}");
    let report = play(format!("{}{}", app.base, link(&id)), 5400.0).await;
    let (duration, at, later) = (
        report["duration"].as_f64().unwrap(),
        report["seeked_to"].as_f64().unwrap(),
        report["playing_at"].as_f64().unwrap(),
    );
    assert!((duration - 7200.0).abs() < 1.0, "Chromium reads {duration} s");
    assert!((at - 5400.0).abs() < 1.0 && later > at + 0.5, "seeked to {at}, then at {later}: {report}");
    assert_eq!(report["width"], 320);
}

/// `ffprobe`'s start time of each stream of `url`, video first.
async fn starts(url: &str) -> Vec<f64> {
    let p = probe(url).await;
    let mut out: Vec<(String, f64)> = p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["codec_type"].as_str().unwrap().to_owned(), s["start_time"].as_str().unwrap().parse().unwrap()))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out.into_iter().map(|(_, t)| t).collect()
}

/// Muxed HLS of the film for AVPro, a segment at 1:30:00 asked for first on
/// a cold store: written in process (no ffmpeg), MPEG-TS with both streams
/// starting together 5400 s after the first segment does, its first picture
/// the source's at 5400 s, and the origin asked for the blocks holding its
/// fragments and the two heads, nothing more.
#[tokio::test]
async fn a_muxed_segment_at_an_hour_and_a_half_is_written_in_process() {
    let app = app().await;
    let id = yt_id("film");
    let master = text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?player=avpro")).await;
    assert!(!master.contains("TYPE=AUDIO"), "{master}");
    // Each file's index read asked the origin for its head, not a block.
    assert!(asked(&app) <= 2 * (256 << 10), "the two indexes asked the origin for {} bytes", asked(&app));
    let variant = master.lines().find(|l| l.starts_with('/')).unwrap().to_owned();
    let media = text(&app, &variant).await;
    let segments: Vec<String> =
        media.lines().filter(|l| l.starts_with('/')).map(|l| format!("{}{l}", app.base)).collect();
    assert_eq!(segments.len(), 1440, "one per 5 s fragment");
    let before = asked(&app);
    let at = &segments[5400 / 5];
    let resp = app.http.get(at).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "video/mp2t");
    let bytes = resp.bytes().await.unwrap();
    let asked = asked(&app) - before;
    // A seek reads the fragments it is made of, not the store blocks
    // around them (1 MiB: this film's fragments are ~70 KB, so a block from
    // its start was 10 times the segment).
    assert!(asked <= 2 * bytes.len() as u64, "a cold segment of {} bytes asked the origin for {asked}", bytes.len());
    assert_eq!(app.prom("reelay_relay_muxed_segments_total").await, 1.0);
    assert_eq!(app.prom("reelay_relay_remuxed_segments_total").await, 0.0, "no ffmpeg");
    let here = starts(at).await;
    let first = starts(&segments[0]).await;
    assert_eq!((here.len(), first.len()), (2, 2), "video and audio: {here:?}");
    assert!((here[0] - first[0] - 5400.0).abs() < 0.01, "video at {here:?}, the film's start at {first:?}");
    assert!((here[1] - here[0]).abs() < 0.2, "audio with the video: {here:?}");
    // On the timeline ffmpeg writes for the same range of the source files
    // (what the relay's ffmpeg fallback runs: the files' own times, plus the
    // 1 s every muxed segment carries), so segments of either writer line up.
    let (v, a) = film();
    let range = ["-ss", "5400", "-to", "5405"];
    let ts = media_dir().join("film-5400.ts");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-copyts"])
        .args(range)
        .args(["-i", v.to_str().unwrap()])
        .args(range)
        .args(["-i", a.to_str().unwrap(), "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-muxdelay", "0"])
        .args(["-output_ts_offset", "1", "-f", "mpegts", ts.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    let ffmpeg = starts(ts.to_str().unwrap()).await;
    assert!((here[0] - ffmpeg[0]).abs() < 0.001 && (here[0] - 5401.0).abs() < 0.001, "{here:?}, ffmpeg {ffmpeg:?}");
    let source = film().0.to_str().unwrap();
    assert_eq!(picture(at, 0.0).await, picture(source, 5400.0).await, "the source's picture at 5400 s");
}

/// AVPro's muxed HLS of the film served only through SABR: its segment at
/// 1:30:00, asked first on a cold store, is written in process from the
/// SABR sessions' segments (no ffmpeg), both streams starting 5400 s after
/// the first segment's, the source's picture there; no SABR URL in a
/// playlist, and nothing between the heads and 1:30:00 sent.
#[tokio::test]
async fn a_muxed_segment_of_a_sabr_film_is_written_from_its_sessions() {
    let app = app().await;
    let id = yt_id("sabrfilm");
    let master = text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?player=avpro")).await;
    let variant = master.lines().find(|l| l.starts_with('/')).unwrap().to_owned();
    let media = text(&app, &variant).await;
    assert!(!format!("{master}{media}").contains("/sabr/"), "no SABR URL in a playlist");
    let segments: Vec<String> =
        media.lines().filter(|l| l.starts_with('/')).map(|l| format!("{}{l}", app.base)).collect();
    assert_eq!(segments.len(), 1440, "one per 5 s fragment");
    let at = &segments[5400 / 5];
    let resp = app.http.get(at).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, "video/mp2t"));
    drop(resp);
    let sent = crate::sabr_origin::stats(&id).sent;
    assert!(!sent.iter().any(|&(i, n)| i == 137 && n > 60 && n < 1060), "sent between the head and 1:30:00: {sent:?}");
    assert_eq!(app.prom("reelay_relay_remuxed_segments_total").await, 0.0, "no ffmpeg");
    let (here, first) = (starts(at).await, starts(&segments[0]).await);
    assert_eq!((here.len(), first.len()), (2, 2), "video and audio: {here:?}");
    assert!((here[0] - first[0] - 5400.0).abs() < 0.01, "video at {here:?}, the film's start at {first:?}");
    assert!((here[1] - here[0]).abs() < 0.2, "audio with the video: {here:?}");
    assert_eq!(picture(at, 0.0).await, picture(film().0.to_str().unwrap(), 5400.0).await);
}

/// The film's plain HLS (the DASH files' fragments as byte ranges, what
/// hls.js and most players take), its video segment at 1:30:00 asked for
/// first on a cold store by six players of a room at once: each gets the
/// file's bytes, and the origin is asked once, for that segment, not the
/// 1 MiB block around it. The player going on reads through the store's
/// blocks: the segment after the next costs the origin nothing.
#[tokio::test]
async fn a_plain_segment_at_an_hour_and_a_half_fetches_the_segment() {
    let app = app().await;
    let id = yt_id("film");
    let master = text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=720p")).await;
    let Ok(m3u8_rs::Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(master.as_bytes()) else {
        panic!("not a master: {master}")
    };
    let media = text(&app, &master.variants[0].uri).await;
    let Ok(m3u8_rs::Playlist::MediaPlaylist(media)) = m3u8_rs::parse_playlist_res(media.as_bytes()) else {
        panic!("not a media playlist: {media}")
    };
    let source = std::fs::read(&film().0).unwrap();
    let get = |n: usize| {
        let (app, seg, source) = (&app, &media.segments[n], &source);
        async move {
            let r = seg.byte_range.clone().unwrap();
            let (from, to) = (r.offset.unwrap(), r.offset.unwrap() + r.length - 1);
            let resp = app
                .http
                .get(format!("{}{}", app.base, seg.uri))
                .header("range", format!("bytes={from}-{to}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 206, "segment {n}");
            let range = format!("bytes {from}-{to}/{}", source.len());
            assert_eq!(resp.headers()["content-range"], range.as_str());
            let got = resp.bytes().await.unwrap();
            assert!(got[..] == source[from as usize..=to as usize], "segment {n}: the file's bytes");
            got.len() as u64
        }
    };
    let (asked_before, requests_before) = (asked(&app), app.origin.requests("/media/film-v").len());
    let n = 5400 / 5;
    let sizes = futures_util::future::join_all((0..6).map(|_| get(n))).await;
    let asked = asked(&app) - asked_before;
    assert!(asked <= 2 * sizes[0], "a cold segment of {} bytes asked the origin for {asked}", sizes[0]);
    let requests = app.origin.requests("/media/film-v").len() - requests_before;
    assert_eq!(requests, 1, "six players of one segment: one origin request");
    get(n + 1).await;
    let requests = app.origin.requests("/media/film-v").len();
    get(n + 2).await;
    assert_eq!(app.origin.requests("/media/film-v").len(), requests, "fetched ahead for the player going on");
}

/// A clip (`start=5402&end=5432`, not on a keyframe): a file of its own,
/// both streams starting together, its first picture the source's at
/// 5402 s (the edit list starts it there, not at the keyframe 2 s before,
/// which the decoder reads first), the origin asked for a small part of the
/// film; bad or impossible clips are refused.
#[tokio::test]
async fn a_clip_is_the_part_asked_for() {
    let app = app().await;
    let id = yt_id("film");
    let url = format!("{}{}&start=5402&end=5432", app.base, link(&id));
    let head = app.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let len: u64 = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(len < film_bytes() / 100, "a clip of {len} bytes");
    let whole = app.http.head(format!("{}{}", app.base, link(&id))).send().await.unwrap();
    assert_ne!(head.headers()["etag"], whole.headers()["etag"], "the clip is its own file");
    let p = probe(&url).await;
    assert_eq!(kinds(&p), ["video", "audio"], "{p}");
    // The header and each track's edit list say 30 s; each track's last
    // fragment is cut at 5432 s, so ffmpeg reads 30 s and the 2 s lead-in
    // from the keyframe before the start (its times below zero).
    let duration: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((32.0..=32.5).contains(&duration), "a player reads {duration} s: {p}");
    // Decoded whole, nothing to complain about (the cut fragments' moofs
    // and mdats agree).
    let decoded = tokio::process::Command::new("ffmpeg")
        .args(["-v", "warning", "-i", &url, "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success() && said.trim().is_empty(), "ffmpeg decoding the clip: {said}");
    // On a keyframe there is no lead-in: the clip is 30 s.
    let aligned = probe(&format!("{}{}&start=5400&end=5430", app.base, link(&id))).await;
    let duration: f64 = aligned["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 30.0).abs() < 0.3, "5400–5430 reads {duration} s: {aligned}");
    let starts: Vec<f64> =
        p["streams"].as_array().unwrap().iter().map(|s| s["start_time"].as_str().unwrap().parse().unwrap()).collect();
    assert!(starts.iter().all(|t| (-2.5..=0.0).contains(t)), "both streams start at the clip's start: {starts:?}");
    let source = film().0.to_str().unwrap();
    // The picture at the clip's time zero, on the file's own timeline
    // (decoded from the keyframe 2 s before it, whose times are below zero:
    // what a player that honours the edit list shows first).
    let at_zero = frame(&["-copyts", "-i", &url, "-ss", "0"]).await;
    assert_eq!(at_zero, picture(source, 5402.0).await, "the source's picture at 5402 s");
    assert!(asked(&app) < 16 << 20, "{} of {} bytes asked", asked(&app), film_bytes());
    assert_eq!(app.prom("reelay_relay_merges_total").await, 0.0, "no ffmpeg");

    for (query, status) in
        [("&start=-1", 400), ("&start=abc", 400), ("&start=10&end=5", 400), ("&end=inf", 400), ("&start=7300", 422)]
    {
        let resp = app.get(&format!("{}{query}", link(&id))).await;
        assert_eq!(resp.status(), status, "{query}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string() && body["detail"].is_string(), "{query}: {body}");
    }
    // The smart route proxies a clip (whatever its default mode): the same file.
    let smart = app.http.head(format!("{}/api/v2/stream/youtube/{id}?quality=720p&start=5402&end=5432", app.base));
    let smart = smart.send().await.unwrap();
    assert_eq!((smart.status().as_u16(), &smart.headers()["etag"]), (200, &head.headers()["etag"]));
    // cobalt's API takes the same clip as reelay's own fields: a tunnel
    // (whatever localProcessing says) to the same file, saved under a name.
    let ask = |extra: Value| {
        let mut body =
            serde_json::json!({"url": format!("https://www.youtube.com/watch?v={id}"), "videoQuality": "720"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for local in ["disabled", "forced"] {
        let body = ask(serde_json::json!({"start": 5402, "end": 5432, "localProcessing": local}));
        let (status, answer, _) = crate::cobalt::post(&app, body).await;
        assert_eq!((status.as_u16(), answer["status"].as_str()), (200, Some("tunnel")), "{local}: {answer}");
        let tunnel = app.http.head(answer["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(tunnel.status(), 200);
        assert_eq!(tunnel.headers()["content-length"], head.headers()["content-length"], "the same clip");
        assert!(tunnel.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    }
    for bad in
        [serde_json::json!({"start": -1}), serde_json::json!({"start": 10, "end": 5}), serde_json::json!({"end": "x"})]
    {
        let (status, answer, _) = crate::cobalt::post(&app, ask(bad.clone())).await;
        assert_eq!((status.as_u16(), &answer["error"]["code"]), (400, &Value::from("error.api.invalid_body")), "{bad}");
    }
    let one = serde_json::json!({"url": format!("https://www.youtube.com/watch?v={}", yt_id("proxy")), "start": 1});
    let (status, answer, _) = crate::cobalt::post(&app, one).await;
    assert_eq!((status.as_u16(), answer["status"].as_str()), (400, Some("error")), "a one-file video: {answer}");
    // Direct mode cannot cut: it says which route can.
    let direct = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=720p&start=60")).await;
    assert_eq!(direct.status(), 409);
    // A video that is one file cannot be clipped.
    let one = app.get(&format!("/api/v2/stream/proxy/youtube/{}?start=1", yt_id("proxy"))).await;
    assert_eq!(one.status(), 422);
    assert!(one.text().await.unwrap().contains("Cannot clip"));
}
