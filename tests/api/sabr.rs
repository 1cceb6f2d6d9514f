//! SABR: the stand-in server (`sabr_origin`) checked by an independent
//! client, googlevideo's `SabrStream` from npm (both formats byte for byte,
//! through a redirect, a cookie that changes with every answer, a SABR
//! context and a backoff, each of which withholds media from a client that
//! ignores it); then reelay's own client (`reelay::sabr` driven by
//! `reelay::relay::sabr`) against the same stand-in: the same bytes, a
//! seek that fetches nothing before it, attestation asked for, a refused
//! URL.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reelay::relay::RelayError;
use reelay::relay::sabr::Flow;
use reelay::sabr::{Client, Config, Event, Format, SabrFailure, Session, Track};
use reelay::upstream::{Upstream, Via};

use crate::helpers::*;
use crate::sabr_origin::{Msg, stats};

const LMT: u64 = 1_700_000_000_000_000;

/// googlevideo's client against `url`: the two files it wrote, or its error.
async fn googlevideo(url: &str, po_token: Option<&str>) -> Result<(Vec<u8>, Vec<u8>), String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(dir.join("node_modules/googlevideo").exists(), "googlevideo is missing; run scripts/setup --test");
    let out = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("sabr.mjs")).args([url, "134", "140", out.path().to_str().unwrap()]);
    cmd.args(po_token).current_dir(&dir);
    let run = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("googlevideo within 60 s");
    let run = run.expect("node runs (scripts/setup --test installs it)");
    if !run.status.success() {
        return Err(format!("{} {}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr)));
    }
    Ok((std::fs::read(out.path().join("video")).unwrap(), std::fs::read(out.path().join("audio")).unwrap()))
}

#[tokio::test]
async fn googlevideos_client_reads_the_stand_in_byte_for_byte() {
    let origin = spawn_origin().await;
    let (video, audio) = (media("dash-v360.mp4"), media("dash-a.m4a"));
    for (quirks, token) in [("plain", None), ("redirect,cookie,context,backoff", None), ("attest", Some("dG9rZW4"))] {
        let id = format!("gv-{}", quirks.replace(',', "-"));
        let url = format!("{}/sabr/{quirks}/videoplayback?id={id}&sabr=1", origin.base);
        let (v, a) = googlevideo(&url, token).await.unwrap_or_else(|e| panic!("{quirks}: {e}"));
        assert!(
            v == video && a == audio,
            "{quirks}: {} and {} bytes for {} and {}",
            v.len(),
            a.len(),
            video.len(),
            audio.len()
        );
        let seen = stats(&id);
        assert_eq!(seen.withheld, 0, "{quirks}: googlevideo does what the server asks: {seen:?}");
        assert_eq!(seen.redirected > 0, quirks.contains("redirect"), "{quirks}: {seen:?}");
    }
}

/// The quirks bite: a client that ignores the cookie, the context or the
/// backoff gets no media, and a GET is refused.
#[tokio::test]
async fn the_stand_in_withholds_media_from_a_careless_client() {
    let origin = spawn_origin().await;
    let http = reqwest::Client::new();
    let format = |itag| Msg::default().int(1, itag).int(2, LMT);
    let body = Msg::default().msg(1, Msg::default().int(28, 0)).msg(16, format(140)).msg(17, format(134)).0;
    for quirk in ["cookie", "context", "backoff"] {
        let id = format!("careless-{quirk}");
        // It numbers its requests, as clients do, and ignores the rest.
        for rn in 1..=2 {
            let url = format!("{}/sabr/{quirk}/videoplayback?id={id}&sabr=1&rn={rn}", origin.base);
            let resp = http.post(&url).body(body.clone()).send().await.unwrap();
            assert_eq!(resp.headers()["content-type"], "application/vnd.yt-ump");
            resp.bytes().await.unwrap();
        }
        assert_eq!(stats(&id).withheld, 1, "{quirk}: the same request again gets nothing");
    }
    let get = http.get(format!("{}/sabr/plain/videoplayback?id=x", origin.base)).send().await.unwrap();
    assert_eq!(get.status(), 405);
}

/// One segment: where it sits in the file, its time (start, duration, ms),
/// its bytes.
type Got1 = (Option<u64>, (i64, i64), Vec<u8>);

/// What reelay's client brought: each format's init section and segments
/// (by number), and where the segments said they sit in the file.
#[derive(Default)]
struct Got {
    init: HashMap<usize, Vec<u8>>,
    /// By number.
    segments: [BTreeMap<i64, Got1>; 2],
    last: [Option<i64>; 2],
}

impl Got {
    /// A format's file: its init section, then its segments in order.
    fn file(&self, track: Track) -> Vec<u8> {
        let t = track as usize;
        let mut out = self.init.get(&t).cloned().unwrap_or_default();
        for (_, _, bytes) in self.segments[t].values() {
            out.extend_from_slice(bytes);
        }
        out
    }
}

async fn reelay_client(url: &str, po_token: Option<&[u8]>, from_ms: i64) -> Result<Got, RelayError> {
    let egress = reelay::egress::Egress::new("", None, Duration::from_secs(60)).unwrap();
    let upstream = Upstream::new(true, HashMap::new(), Arc::new(egress));
    let config = Config {
        url: url.to_owned(),
        ustreamer_config: vec![0, 0, 0],
        po_token: po_token.map(<[u8]>::to_vec),
        client: Client { name: 1, version: "2.20261201.00.00".into(), ..Client::default() },
        video_id: "sabr".into(),
    };
    let format = |itag| Format { itag, last_modified: LMT, xtags: None };
    let mut session = Session::new(config, format(134), format(140), from_ms);
    let mut got = Got::default();
    let (headers, route) = (Default::default(), Default::default());
    let via = Via { headers: &headers, route: &route };
    reelay::relay::sabr::run(&upstream, &via, Duration::from_secs(10), &mut session, |event| {
        match event {
            Event::Layout { track, last_segment, .. } => got.last[track as usize] = Some(last_segment),
            Event::Init { track, bytes } => drop(got.init.insert(track as usize, bytes.to_vec())),
            Event::Segment(s) => {
                let value = (s.offset, (s.start_ms, s.duration_ms), s.bytes().to_vec());
                got.segments[s.track as usize].insert(s.sequence, value);
            }
            Event::Live(_) => {}
        }
        Flow::More
    })
    .await?;
    Ok(got)
}

#[tokio::test]
async fn reelays_client_gets_both_formats_through_every_quirk() {
    let origin = spawn_origin().await;
    let (video, audio) = (media("dash-v360.mp4"), media("dash-a.m4a"));
    for quirks in ["plain", "redirect,cookie,context,backoff"] {
        let id = format!("reelay-{}", quirks.replace(',', "-"));
        let url = format!("{}/sabr/{quirks}/videoplayback?id={id}&sabr=1", origin.base);
        let got = reelay_client(&url, None, 0).await.unwrap_or_else(|e| panic!("{quirks}: {e}"));
        assert!(got.file(Track::Video) == video, "{quirks}: the video file, byte for byte");
        assert!(got.file(Track::Audio) == audio, "{quirks}: the audio file, byte for byte");
        assert_eq!(got.last, [Some(4), Some(4)], "{quirks}: four segments of 2 s each");
        for (t, file) in [(0, &video), (1, &audio)] {
            for (offset, _, bytes) in got.segments[t].values() {
                let at = offset.expect("the stand-in says where") as usize;
                assert!(file[at..at + bytes.len()] == bytes[..], "{quirks}: a segment sits where it says");
            }
        }
        let seen = stats(&id);
        assert_eq!(seen.withheld, 0, "{quirks}: the cookie and the context sent back, the backoff waited: {seen:?}");
        assert_eq!(seen.redirected > 0, quirks.contains("redirect"), "{quirks}: {seen:?}");
        assert_eq!(seen.segments.values().sum::<u32>(), 8, "{quirks}: each segment sent once: {seen:?}");
    }
}

/// A session that starts at 4 s asks from there and gets, of each format,
/// the segment holding 4 s and those after it, nothing before.
#[tokio::test]
async fn a_seek_starts_the_session_where_the_player_is() {
    let origin = spawn_origin().await;
    let url = format!("{}/sabr/plain/videoplayback?id=reelay-seek&sabr=1", origin.base);
    let got = reelay_client(&url, None, 4000).await.unwrap();
    for t in 0..2 {
        let (first, &(_, (start, duration), _)) = got.segments[t].first_key_value().unwrap();
        assert!(start <= 4000 && 4000 < start + duration, "track {t}: segment {first} is {start} ms + {duration} ms");
        let numbers: Vec<i64> = got.segments[t].keys().copied().collect();
        assert_eq!(numbers, (*first..=4).collect::<Vec<_>>(), "track {t}: from there to the end");
    }
    assert_eq!(got.segments[0].keys().copied().collect::<Vec<_>>(), [3, 4], "2 s video segments");
    let seen = stats("reelay-seek");
    assert_eq!(seen.player_ms[0], 4000, "{seen:?}");
    let sent = seen.segments.values().sum::<u32>() as usize;
    assert_eq!(sent, got.segments[0].len() + got.segments[1].len(), "nothing sent twice: {seen:?}");
}

/// Attestation required: without a PO token the session fails with that
/// reason (for the caller to extract again with a fresh token); with one it
/// goes on. A URL past its expiry is refused: `Expired`, for re-extraction.
#[tokio::test]
async fn attestation_and_expiry_are_said_plainly() {
    let origin = spawn_origin().await;
    let url = format!("{}/sabr/attest/videoplayback?id=reelay-attest&sabr=1", origin.base);
    let refused = reelay_client(&url, None, 0).await.err();
    assert!(matches!(refused, Some(RelayError::Sabr(SabrFailure::AttestationRequired))), "{refused:?}");
    let got = reelay_client(&url, Some(b"token"), 0).await.unwrap();
    let (a, want) = (got.file(Track::Audio), media("dash-a.m4a"));
    assert!(a == want, "{} of {} bytes", a.len(), want.len());
    let expired = format!("{}/sabr/plain/videoplayback?id=reelay-expired&expire=1000&sabr=1", origin.base);
    let refused = reelay_client(&expired, None, 0).await.err();
    assert!(matches!(refused, Some(RelayError::Expired)), "{refused:?}");
}

/// A video YouTube serves only through SABR, as yt-dlp's SABR build lists
/// it (the stand-in's formats 134 and 140, each with its `_sabr_config`),
/// through reelay's routes: the proxy's file (composed from the two
/// formats, no ffmpeg) read by ffprobe with both streams and 8 s, for 20
/// viewers at once with each segment fetched from the SABR server once;
/// the HLS manifest's segments byte for byte the files'; the direct route
/// never hands out the SABR URL.
#[tokio::test]
async fn a_sabr_only_video_plays_through_reelays_routes() {
    let app = spawn_app().await;
    let id = yt_id("sabronly");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    let gets = (0..20).map(|_| {
        let (http, url) = (&app.http, &url);
        async move {
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap()
        }
    });
    let files = futures_util::future::join_all(gets).await;
    assert!(files.iter().all(|f| f == &files[0] && f.len() > 100_000), "20 viewers, one file");
    let seen = stats(&id);
    assert_eq!(seen.segments.get(&134), Some(&4), "each video segment once: {seen:?}");
    assert_eq!(seen.segments.get(&140), Some(&4), "each audio segment once: {seen:?}");
    assert_eq!(app.prom("reelay_relay_merges_total").await, 0.0, "composed in process, no ffmpeg");
    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "json", &url])
        .output()
        .await
        .unwrap();
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let kinds: Vec<&str> =
        probe["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio"], "{probe}");
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 8.0).abs() < 0.5, "{probe}");

    // The manifest's links go through reelay; a segment is the file's bytes.
    let master = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?mode=direct")).await;
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    assert!(!master.contains("/sabr/"), "no SABR URL in a playlist: {master}");
    let Ok(m3u8_rs::Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(master.as_bytes()) else {
        panic!("{master}")
    };
    let playlist = app.get(&master.variants[0].uri).await.text().await.unwrap();
    assert!(!playlist.contains("/sabr/"), "{playlist}");
    let Ok(m3u8_rs::Playlist::MediaPlaylist(playlist)) = m3u8_rs::parse_playlist_res(playlist.as_bytes()) else {
        panic!("{playlist}")
    };
    let seg = &playlist.segments[2];
    let r = seg.byte_range.clone().unwrap();
    let (from, len) = (r.offset.unwrap() as usize, r.length as usize);
    let resp = app
        .http
        .get(format!("{}{}", app.base, seg.uri))
        .header("range", format!("bytes={from}-{}", from + len - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert!(resp.bytes().await.unwrap()[..] == media("dash-v360.mp4")[from..from + len]);

    // The direct route has no file with sound to send a player to (as for
    // any video with separate video and audio): it says so, and names no
    // SABR URL.
    let (status, body) = app.json(&format!("/api/v2/stream/direct/youtube/{id}?quality=360p")).await;
    assert_error_shape(status, &body);
    assert!(status == 404 && !body.to_string().contains("/sabr/"), "{status} {body}");
}

/// `YOUTUBE_SABR`. A SABR build of yt-dlp is asked for each format's SABR
/// twin (`formats=duplicate` joined to the operator's own YouTube
/// arguments, which yt-dlp would otherwise drop); `auto` plays the plain
/// URL, `prefer` the SABR twin, `off` asks for no twin and refuses a
/// SABR-only video plainly; a yt-dlp that is no SABR build is not asked.
#[tokio::test]
async fn youtube_sabr_chooses_between_a_plain_url_and_its_sabr_twin() {
    let operator = "--extractor-args youtube:player_client=web_safari";
    let mut files = Vec::new();
    for (mode, sabr_build) in [("auto", true), ("prefer", true), ("off", true), ("prefer", false)] {
        let mut app = spawn().arg("--youtube-sabr", mode).arg("--ytdlp-args", operator);
        if sabr_build {
            app = app.sabr_build();
        }
        let app = app.start().await;
        let (_, health) = app.health_until("healthy").await;
        assert_eq!(health["ytdlp_sabr"].is_null(), !sabr_build, "{health}");
        let id = yt_id("sabrtwin");
        let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
        assert_eq!(resp.status(), 200, "{mode}");
        files.push(resp.bytes().await.unwrap());
        let call = app.fake.calls().into_iter().find(|c| c.last().is_some_and(|u| u.contains(&id))).unwrap();
        let twins = sabr_build && mode != "off";
        let joined = "youtube:player_client=web_safari;formats=duplicate";
        assert_eq!(call.iter().any(|a| a == joined), twins, "{mode}, SABR build {sabr_build}: {call:?}");
        assert!(!twins || !call.iter().any(|a| a == "youtube:player_client=web_safari"), "{call:?}");
        let through_sabr = stats(&id).requests > 0;
        assert_eq!(through_sabr, twins && mode == "prefer", "{mode}, SABR build {sabr_build}");

        // A video with nothing but SABR formats.
        let only = yt_id("sabronly");
        let (status, body) = app.json(&format!("/api/v2/videos/youtube/{only}")).await;
        if mode == "off" {
            assert_error_shape(status, &body);
            assert_eq!(status, 501, "{body}");
            assert!(body.to_string().contains("YOUTUBE_SABR=off"), "{body}");
        } else {
            assert_eq!(status, 200, "{mode}: {body}");
        }
    }
    assert!(files.iter().all(|f| f == &files[0] && f.len() > 100_000), "one file, whichever way it came");
}

/// The protocol's quirks through reelay's routes: a SABR server that
/// redirects, changes its cookie with every answer, sets a context and asks
/// for pauses plays the same file as a plain one; one that requires
/// attestation gets the video extracted again once (yt-dlp's fresh PO
/// token) and plays; one whose token never comes is a `502` in the API's
/// error shape that says attestation is required and names no URL, after
/// that one retry.
#[tokio::test]
async fn the_protocols_quirks_through_reelays_routes() {
    let app = spawn_app().await;
    let runs = |id: &str| app.fake.calls().iter().filter(|c| c.last().is_some_and(|u| u.contains(id))).count();
    let file = |id: String| {
        let app = &app;
        async move {
            let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
            (resp.status().as_u16(), resp.bytes().await.unwrap())
        }
    };
    let (status, plain) = file(yt_id("sabronly")).await;
    assert_eq!(status, 200);
    for prefix in ["sabrredir", "sabrattest"] {
        let id = yt_id(prefix);
        let (status, body) = file(id.clone()).await;
        assert_eq!(status, 200, "{prefix}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        assert!(body == plain, "{prefix}: the same file");
        let seen = stats(&id);
        if prefix == "sabrredir" {
            assert!(seen.redirected > 0 && seen.withheld == 0, "{seen:?}");
        }
        assert_eq!(runs(&id), if prefix == "sabrattest" { 2 } else { 1 }, "{prefix}: extractions");
    }
    let id = yt_id("sabrnotok");
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert_error_shape(status, &body);
    assert_eq!(status, 502, "{body}");
    assert!(!body.to_string().contains("/sabr/") && !body.to_string().contains("127.0.0.1"), "{body}");
    assert_eq!(body["error"], "SABR stream failed", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("attestation"), "the server's reason, not a failed ffmpeg merge");
    assert_eq!(runs(&id), 2, "extracted again once for a fresh token, then given up");
}

/// No SABR URL reaches a log line: the production binary at `info`, a
/// SABR film played through a server that redirects (its second URL too),
/// and one whose attestation never comes (every warning its failure
/// brings).
#[tokio::test]
async fn no_sabr_url_reaches_the_logs() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start(&fake, &["--log-level", "info", "--environment", "production"]).await;
    let http = reqwest::Client::new();
    for (prefix, status) in [("sabrredir", 200), ("sabrnotok", 502)] {
        let id = yt_id(prefix);
        let resp =
            http.get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", bin.base)).send().await.unwrap();
        assert_eq!(resp.status(), status, "{prefix}");
        resp.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = bin.logs();
    assert!(logs.contains("SABR") || logs.contains("attestation"), "the failure was logged:\n{logs}");
    for leak in ["/sabr/", "videoplayback", &origin.base] {
        assert!(!logs.contains(leak), "{leak} reached the logs:\n{logs}");
    }
}
