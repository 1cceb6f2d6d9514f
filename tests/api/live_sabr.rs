//! Live over SABR: a live stream whose formats come only through SABR (the
//! stand-in's `live` quirk, its head moving on the wall clock) plays as
//! reelay's own live HLS: a master of the video with an audio rendition,
//! fMP4 playlists whose map is the format's init section; one session per
//! format for the crowd, each segment sent once; ffmpeg plays the master;
//! nothing of the stand-in's URL in what players get. The stand-in's live
//! mode is checked first by googlevideo's client.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::sabr_origin::stats;

/// A media playlist's map link and segments (media sequence, link).
fn listed(text: &str) -> (Option<String>, Vec<(u64, String)>) {
    let seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .expect("a media sequence");
    let map = text.lines().find_map(|l| Some(l.strip_prefix("#EXT-X-MAP:URI=\"")?.trim_end_matches('"').to_owned()));
    let segs = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty());
    (map, segs.enumerate().map(|(i, l)| (seq + i as u64, l.to_owned())).collect())
}

/// The playlists a master names: (audio rendition, video variants).
fn variants(master: &str) -> (Option<String>, Vec<String>) {
    let audio = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .and_then(|l| Some(l.split("URI=\"").nth(1)?.split('"').next()?.to_owned()));
    let video = master.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_owned).collect();
    (audio, video)
}

#[derive(Default, Debug)]
struct Played {
    /// Per playlist (`134.m3u8`): every (sequence, link) seen.
    seen: HashMap<String, HashSet<(u64, String)>>,
    /// Segments and maps fetched that were not fMP4.
    wrong: Vec<String>,
    errors: Vec<String>,
    /// Lines naming the stand-in.
    leaks: Vec<String>,
    /// Media sequences that went back.
    backwards: u32,
}

/// A player: the master, then each playlist it names reloaded every second
/// for `secs`, its map and newest segment fetched.
async fn play(app: &TestApp, master: &str, secs: u64) -> Played {
    let mut p = Played::default();
    let origin = app.origin.base.trim_start_matches("http://").to_owned();
    let text = app.get(master).await.text().await.unwrap();
    let (audio, video) = variants(&text);
    let playlists: Vec<String> = audio.into_iter().chain(video.into_iter().take(1)).collect();
    let mut firsts: HashMap<String, u64> = HashMap::new();
    let mut fetched = HashSet::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        for list in &playlists {
            let resp = app.get(list).await;
            let status = resp.status();
            let text = resp.text().await.unwrap();
            if status != 200 {
                p.errors.push(format!("{status}: {text}"));
                continue;
            }
            p.leaks.extend(text.lines().filter(|l| l.contains(&origin) || l.contains("://")).map(str::to_owned));
            let (map, segs) = listed(&text);
            let first = segs.first().map_or(0, |s| s.0);
            if firsts.insert(list.clone(), first).is_some_and(|f| f > first) {
                p.backwards += 1;
            }
            // By the playlist's name: its link's expiry is a second's.
            let name = list.split('?').next().unwrap().rsplit('/').next().unwrap().to_owned();
            p.seen.entry(name).or_default().extend(segs.iter().cloned());
            for (link, kind) in map.into_iter().map(|m| (m, b"ftyp")).chain(segs.last().map(|s| (s.1.clone(), b"moof")))
            {
                if !fetched.insert(link.clone()) {
                    continue;
                }
                let bytes = app.get(&link).await.bytes().await.unwrap();
                if bytes.len() < 8 || &bytes[4..8] != kind {
                    p.wrong.push(format!("{link}: {} bytes", bytes.len()));
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    p
}

/// googlevideo's `SabrStream` (with the head placed by its caller, as
/// googlevideo reads no `LIVE_METADATA`) follows the stand-in's live
/// stream: both init sections, consecutive segments from the head on, their
/// times going forward, nothing withheld.
#[tokio::test]
async fn googlevideos_client_follows_the_live_stand_in() {
    let origin = spawn_origin().await;
    let id = yt_id("gvlive");
    let url = format!("{}/sabr/live/videoplayback?id={id}&sabr=1", origin.base);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(dir.join("node_modules/googlevideo").exists(), "googlevideo is missing; run scripts/setup --test");
    let out = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("sabr_live.mjs")).args([&url, "134", "140", out.path().to_str().unwrap(), "8"]).current_dir(&dir);
    let run = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("within a minute").unwrap();
    let got: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|_| {
        panic!("{} {}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr))
    });
    assert!(run.status.success() && got.get("error").is_none(), "{got}");
    assert_eq!(got["init"], serde_json::json!({"video": true, "audio": true}), "{got}");
    let head = got["live"]["headSequenceNumber"].as_u64().unwrap();
    for track in ["video", "audio"] {
        let segs: Vec<u64> = got["segments"][track].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert!(segs.len() >= 3 && segs.windows(2).all(|p| p[1] == p[0] + 1), "{track}: {segs:?}");
        assert!(segs[0] + 1 >= head, "{track} starts at the head ({head}): {segs:?}");
        let times: Vec<u64> = got["tfdt"][track].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert!(times.windows(2).all(|p| p[1] > p[0]), "{track}: time goes forward: {times:?}");
    }
    assert_eq!(got["headersWithoutItag"], 0);
    assert_eq!(stats(&id).withheld, 0);
}

/// Twenty players and ffmpeg on a live SABR stream: one session per format
/// for all of them, each segment sent once, the window moving on, the same
/// link for a segment everywhere, ffmpeg's recording of the master a
/// video with sound.
#[tokio::test]
async fn a_live_sabr_stream_plays_for_a_crowd_through_one_session_per_format() {
    let app = spawn_app().await;
    let id = &yt_id("sabrlive");
    let resp = app.get(&format!("/api/v2/stream/youtube/{id}")).await;
    assert_eq!(resp.status(), 302, "the stream link sends players to the live HLS");
    let master = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(master.contains("master.m3u8"), "{master}");
    let text = app.get(&master).await.text().await.unwrap();
    assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO") && text.contains("AUDIO=\"audio\""), "{text}");
    assert!(text.contains("CODECS=\"avc1.4d401e,mp4a.40.2\""), "{text}");

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("recorded.mp4");
    let ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", &format!("{}{master}", app.base), "-t", "5", "-c", "copy", "-y"])
        .arg(&file)
        .output();
    let players = futures_util::future::join_all((0..20).map(|_| play(&app, &master, 8)));
    let (recorded, played) = tokio::join!(tokio::time::timeout(Duration::from_secs(60), ffmpeg), players);
    let recorded = recorded.expect("ffmpeg within a minute").expect("ffmpeg runs");
    assert!(recorded.status.success(), "{}", String::from_utf8_lossy(&recorded.stderr));

    let mut links: HashMap<(String, u64), String> = HashMap::new();
    for p in &played {
        assert!(p.errors.is_empty() && p.wrong.is_empty() && p.leaks.is_empty(), "{p:?}");
        assert_eq!(p.backwards, 0);
        for (list, segs) in &p.seen {
            for (seq, link) in segs {
                let first = links.entry((list.clone(), *seq)).or_insert_with(|| link.clone());
                assert_eq!(first, link, "segment {seq}: one link for every player");
            }
        }
    }
    let per_list: HashMap<&String, usize> =
        links.keys().fold(HashMap::new(), |mut m, (l, _)| (*m.entry(l).or_default() += 1, m).1);
    assert_eq!(per_list.len(), 2, "an audio and a video playlist: {per_list:?}");
    assert!(per_list.values().all(|n| *n >= 6), "the window moved on in 8 s: {per_list:?}");

    let seen = stats(id);
    assert!(seen.live_zero_unix_ms.is_some(), "a live stream: {seen:?}");
    assert_eq!(seen.playbacks, 2, "one session per format, for the crowd and ffmpeg: {seen:?}");
    let distinct: HashSet<_> = seen.sent.iter().collect();
    assert_eq!(distinct.len(), seen.sent.len(), "each segment sent once: {:?}", seen.sent);

    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_format", "-of", "json"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let kinds: Vec<&str> =
        probe["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"video") && kinds.contains(&"audio"), "{probe}");
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(duration >= 4.0, "ffmpeg recorded {duration} s");
}

/// A live SABR stream across the protocol's quirks (a redirect on each
/// session's first answer, a cookie that changes with every answer, a SABR
/// context): the window goes on, no request of reelay's is withheld.
#[tokio::test]
async fn a_live_sabr_stream_goes_on_across_a_redirect() {
    let app = spawn_app().await;
    let id = &yt_id("sabrliveR");
    let master =
        app.get(&format!("/api/v2/stream/youtube/{id}")).await.headers()["location"].to_str().unwrap().to_owned();
    let played = play(&app, &master, 6).await;
    assert!(played.errors.is_empty() && played.wrong.is_empty() && played.leaks.is_empty(), "{played:?}");
    assert!(played.seen.values().all(|s| s.len() >= 5), "{played:?}");
    let seen = stats(id);
    assert!(seen.redirected > 0 && seen.withheld == 0, "{seen:?}");
    // The DASH manifest of a live stream says where its HLS is.
    let (status, body) = app.json(&format!("/api/v2/stream/manifest/youtube/{id}/manifest.mpd")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("master.m3u8"), "{body}");
}

/// The SABR server refuses each session 8 s after its extraction: reelay
/// extracts again and a new session goes on from the last segment held;
/// players see the numbers go on with none missing and no error.
#[tokio::test]
async fn a_refused_live_sabr_session_is_renewed_and_goes_on() {
    let app = spawn_app().await;
    let id = &yt_id("sabrliveX");
    let master =
        app.get(&format!("/api/v2/stream/youtube/{id}")).await.headers()["location"].to_str().unwrap().to_owned();
    let played = play(&app, &master, 14).await;
    assert!(played.errors.is_empty() && played.wrong.is_empty() && played.leaks.is_empty(), "{played:?}");
    for (list, segs) in &played.seen {
        let mut numbers: Vec<u64> = segs.iter().map(|(n, _)| *n).collect();
        numbers.sort();
        numbers.dedup();
        assert!(numbers.windows(2).all(|p| p[1] == p[0] + 1), "{list}: {numbers:?}");
        assert!(numbers.len() >= 9, "{list}: the window went on past the refusal: {numbers:?}");
    }
    let runs = app.fake.calls().iter().filter(|c| c.iter().any(|a| a.contains(id.as_str()))).count();
    assert!(runs >= 2, "extracted again after the refusal: {runs}");
    let seen = stats(id);
    assert!(seen.playbacks >= 4, "new sessions after the renewal: {seen:?}");
    let distinct: HashSet<_> = seen.sent.iter().collect();
    assert_eq!(distinct.len(), seen.sent.len(), "the new session fetched nothing twice: {:?}", seen.sent);
}

/// A live SABR stream whose session is refused and which, extracted again,
/// is a recording: players get `EXT-X-ENDLIST`.
#[tokio::test]
async fn a_live_sabr_stream_that_ends_is_ended_for_its_players() {
    let app = spawn_app().await;
    let id = &yt_id("sabrliveE");
    let master =
        app.get(&format!("/api/v2/stream/youtube/{id}")).await.headers()["location"].to_str().unwrap().to_owned();
    let (_, video) = variants(&app.get(&master).await.text().await.unwrap());
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) && !last.contains("#EXT-X-ENDLIST") {
        last = app.get(&video[0]).await.text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(last.contains("#EXT-X-ENDLIST"), "{last}");
    let (_, segs) = listed(&last);
    assert!(segs.len() >= 3, "the segments had stay listed: {last}");
}
