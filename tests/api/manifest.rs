//! Manifests built from DASH files laid out like YouTube's (ftyp, moov, one
//! sidx, moof/mdat every 2 s; made with ffmpeg's `dash+global_sidx`):
//! ffprobe and ffmpeg read the master and the MPD and find both tracks,
//! ffmpeg seeks into the middle, a segment is the file's byte range, links
//! are signed, warm manifests cost the origin nothing, and each player
//! profile gets what it promises. Origins that ignore Range or whose URLs
//! expired are stood in for too.

use tokio::process::Command;

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};
use serde_json::Value;

use crate::helpers::*;

fn parse(text: &str) -> Playlist {
    m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("not a playlist: {e:?}\n{text}"))
}

fn master_of(text: &str) -> MasterPlaylist {
    match parse(text) {
        Playlist::MasterPlaylist(m) => m,
        Playlist::MediaPlaylist(_) => panic!("a media playlist where a master was due:\n{text}"),
    }
}

fn media_of(text: &str) -> MediaPlaylist {
    match parse(text) {
        Playlist::MediaPlaylist(m) => m,
        Playlist::MasterPlaylist(_) => panic!("a master where a media playlist was due:\n{text}"),
    }
}

async fn text(app: &TestApp, path: &str) -> String {
    let resp = app.follow(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// The streams ffprobe finds at `url`, as (codec_type, codec_name).
async fn probe(url: &str) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", url])
        .output()
        .await
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["codec_type"].as_str().unwrap().to_owned(), s["codec_name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn ffprobe_finds_video_and_audio_in_the_master_and_the_mpd() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    let resp = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/vnd.apple.mpegurl");
    let master = master_of(&resp.text().await.unwrap());
    assert_eq!(master.version, Some(7));
    let heights: Vec<u64> = master.variants.iter().map(|v| v.resolution.unwrap().height).collect();
    assert_eq!(heights, [720, 720, 360], "every MP4 rendition, best first");
    let audio = &master.alternatives[0];
    assert_eq!((audio.group_id.as_str(), audio.name.as_str(), audio.default), ("audio", "140", true), "the best M4A");
    for v in &master.variants {
        assert_eq!(v.audio.as_deref(), Some("audio"));
        assert!(v.codecs.as_deref().unwrap().ends_with(",mp4a.40.2"), "{:?}", v.codecs);
        assert!(v.bandwidth > 0 && v.uri.starts_with("/api/v2/stream/media/"), "{v:?}");
    }
    assert!(master.variants.iter().any(|v| v.codecs.as_deref().unwrap().starts_with("av01")), "browsers get AV1 too");

    for file in ["master.m3u8", "manifest.mpd"] {
        let streams = probe(&format!("{}/api/v2/stream/manifest/youtube/{id}/{file}?quality=360p", app.base)).await;
        assert!(streams.contains(&("video".into(), "h264".into())), "{file}: {streams:?}");
        assert!(streams.contains(&("audio".into(), "aac".into())), "{file}: {streams:?}");
    }
    let mpd = app.get(&format!("/api/v2/stream/manifest/youtube/{id}/manifest.mpd")).await;
    assert_eq!(mpd.headers()["content-type"], "application/dash+xml");
    let mpd = mpd.text().await.unwrap();
    assert!(mpd.contains("mediaPresentationDuration=\"PT8.") && mpd.contains("indexRange=\""), "{mpd}");
    assert_eq!(mpd.matches("<Representation ").count(), 4, "3 video, 1 audio: {mpd}");
    assert_eq!(app.fake.runs(), 1, "one extraction for every manifest and part");
}

/// ffmpeg seeks through the MPD. (Its HLS demuxer, in Debian's ffmpeg 5.1,
/// cannot seek in byte-range fMP4 segments at all, ffmpeg's own
/// `-hls_flags single_file` output included; hls.js seeks the HLS master in
/// tests/api/ui.rs.)
#[tokio::test]
async fn ffmpeg_seeks_into_the_middle() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    let frames_from = |ss: &'static str| {
        let url = format!("{}/api/v2/stream/manifest/youtube/{id}/manifest.mpd?quality=720p&player=avpro", app.base);
        async move {
            let out = Command::new("ffmpeg")
                .args(["-hide_banner", "-ss", ss, "-i", &url, "-map", "0:v:0", "-map", "0:a:0"])
                .args(["-vf", "showinfo", "-f", "null", "-"])
                .output()
                .await
                .unwrap();
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success() && !log.contains("Invalid NAL"), "{log}");
            log.matches("pts_time:").count()
        }
    };
    assert_eq!(frames_from("0").await, 200, "8 s at 25 fps");
    let from_five = frames_from("5").await;
    assert!((50..=100).contains(&from_five), "about 3 s decoded from 5 s on, not the whole file: {from_five}");
}

/// The media playlist of the first variant (or the audio) of a master.
async fn media_playlist(app: &TestApp, master_path: &str, audio: bool) -> MediaPlaylist {
    let master = master_of(&text(app, master_path).await);
    let uri = if audio { master.alternatives[0].uri.clone().unwrap() } else { master.variants[0].uri.clone() };
    media_of(&text(app, &uri).await)
}

#[tokio::test]
async fn a_segment_is_the_files_byte_range() {
    let app = spawn_app().await;
    let master = format!("/api/v2/stream/manifest/youtube/{}/master.m3u8?quality=720p", yt_id("dashd"));
    for (audio, file) in [(false, "dash-v720.mp4"), (true, "dash-a.m4a")] {
        let bytes = media(file);
        let playlist = media_playlist(&app, &master, audio).await;
        assert!(playlist.end_list && playlist.version == Some(7));
        assert_eq!(playlist.segments.len(), 4, "{file}: 8 s in 2 s fragments");
        let total: f32 = playlist.segments.iter().map(|s| s.duration).sum();
        assert!((total - 8.0).abs() < 0.2, "{file}: {total}");
        let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
        let init = map.byte_range.unwrap();
        for (uri, length, offset) in
            [(map.uri.clone(), init.length, 0)].into_iter().chain(playlist.segments.iter().map(|s| {
                let r = s.byte_range.clone().unwrap();
                (s.uri.clone(), r.length, r.offset.unwrap())
            }))
        {
            assert!(uri.contains(if audio { ".m4a?" } else { ".mp4?" }), "{uri}");
            let range = format!("bytes={offset}-{}", offset + length - 1);
            let resp = app.http.get(format!("{}{uri}", app.base)).header("range", &range).send().await.unwrap();
            assert_eq!(resp.status(), 206, "{file} {range}");
            assert_eq!(resp.headers()["content-type"], if audio { "audio/mp4" } else { "video/mp4" });
            let got = resp.bytes().await.unwrap();
            assert!(got[..] == bytes[offset as usize..(offset + length) as usize], "{file} {range}");
            let box_kind = if offset == 0 { b"ftyp" } else { b"moof" };
            assert_eq!(&got[4..8], box_kind, "{file} {range}: the init section, then whole fragments");
        }
        assert_eq!(&bytes[4..8], b"ftyp");
        let last = playlist.segments.last().unwrap().byte_range.clone().unwrap();
        assert!(last.offset.unwrap() + last.length <= bytes.len() as u64);
    }
}

/// Manifest links are signed: a link one instance writes works on another
/// with the same key (and is the same link), not on one with another key,
/// and not once altered.
#[tokio::test]
async fn links_are_signed_and_keep_working_on_every_instance_sharing_the_key() {
    let origin = spawn_origin().await;
    let a = spawn().origin(&origin).arg("--url-signing-key", "shared-key").start().await;
    let b = spawn().origin(&origin).arg("--url-signing-key", "shared-key").start().await;
    let other = spawn().origin(&origin).arg("--url-signing-key", "another-key").start().await;
    let master = master_of(&text(&a, &format!("/api/v2/stream/manifest/youtube/{}/master.m3u8", yt_id("dashd"))).await);
    let uri = master.variants[0].uri.clone();
    let playlist = media_of(&text(&b, &uri).await);
    let seg = playlist.segments[1].byte_range.clone().unwrap();
    let range = format!("bytes={}-{}", seg.offset.unwrap(), seg.offset.unwrap() + seg.length - 1);
    let resp =
        b.http.get(format!("{}{}", b.base, playlist.segments[1].uri)).header("range", range).send().await.unwrap();
    assert_eq!(resp.status(), 206, "a link made by one instance works on another");

    let (status, body) = other.json(&uri).await;
    assert_eq!(status, 403, "another key: {body}");
    assert_error_shape(status, &body);
    // One character changed in the token.
    let token_at = "/api/v2/stream/media/".len() + 10;
    let mut tampered = uri.clone().into_bytes();
    tampered[token_at] = if tampered[token_at] == b'A' { b'B' } else { b'A' };
    let (status, body) = a.json(&String::from_utf8(tampered).unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("signature"), "{body}");
    // The same master, rendered a second later by the other instance (the
    // links' expiries are rounded up to the hour): byte for byte the same,
    // so players and caches in front share its links.
    let path = format!("/api/v2/stream/manifest/youtube/{}/master.m3u8", yt_id("dashd"));
    let first = text(&a, &path).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = text(&b, &path).await;
    if chrono::Utc::now().timestamp() % 3600 > 2 {
        assert_eq!(first, second, "the same links from every instance sharing the key");
    }
    // A link of a rewritten HLS playlist is no manifest part.
    let hls = text(&a, "/api/v2/stream/proxy?url=https://www.twitch.tv/videos/77").await;
    let hls_token = hls.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap().split('/').nth(5).unwrap();
    let (status, _) = a.json(&format!("/api/v2/stream/media/{hls_token}/x.mp4")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_warm_manifest_costs_the_origin_nothing() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    let dash_requests = || app.origin.requests("/media/dash-").len();
    text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8")).await;
    let first = dash_requests();
    assert!(first >= 3, "each file's head was read: {first}");
    text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=360p")).await;
    text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/manifest.mpd")).await;
    let playlist = media_playlist(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8"), false).await;
    assert_eq!(dash_requests(), first, "manifests and media playlists come from the kept layout");
    assert!(!playlist.segments.is_empty());
    assert_eq!(app.fake.runs(), 1);
}

#[tokio::test]
async fn origins_that_ignore_range_or_whose_urls_expired() {
    let app = spawn_app().await;
    // The origin answers every request with the whole file.
    let master = format!("/api/v2/stream/manifest/youtube/{}/master.m3u8?quality=720p", yt_id("dashnor"));
    let playlist = media_playlist(&app, &master, false).await;
    let seg = playlist.segments[2].byte_range.clone().unwrap();
    let (off, len) = (seg.offset.unwrap(), seg.length);
    let resp = app
        .http
        .get(format!("{}{}", app.base, playlist.segments[2].uri))
        .header("range", format!("bytes={off}-{}", off + len - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert!(resp.bytes().await.unwrap()[..] == media("dash-v720.mp4")[off as usize..(off + len) as usize]);

    // The first extraction's URLs are refused: extracted again, once, and the manifest is whole.
    let app = spawn_app().await;
    let id = yt_id("dashexp");
    let master = master_of(&text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8")).await);
    assert_eq!(master.variants.len(), 3);
    assert_eq!(app.fake.runs(), 2);
}

#[tokio::test]
async fn mode_direct_names_the_origins_urls() {
    let app = spawn_app().await;
    let master = format!("/api/v2/stream/manifest/youtube/{}/master.m3u8?mode=direct", yt_id("dashd"));
    let playlist = media_playlist(&app, &master, true).await;
    assert!(playlist.segments.iter().all(|s| s.uri.starts_with(&app.origin.base)), "{:?}", playlist.segments[0].uri);
    let mpd = text(&app, &master.replace("master.m3u8", "manifest.mpd")).await;
    assert!(mpd.contains(&format!("<BaseURL>{}/media/dash-a.m4a", app.origin.base)), "{mpd}");
    let (status, body) = app.json(&master.replace("direct", "sideways")).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn sources_without_dash_files_say_what_to_play() {
    let app = spawn_app().await;
    // Twitch serves HLS already: its own playlist, rewritten, from the master route.
    let resp = app.follow("/api/v2/stream/manifest/master.m3u8?url=https://www.twitch.tv/videos/4242").await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("/api/v2/stream/hls/") && body.contains("#EXT-X-STREAM-INF"), "{body}");
    let (status, body) = app.json("/api/v2/stream/manifest/manifest.mpd?url=https://www.twitch.tv/videos/4242").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("master.m3u8"), "{body}");
    // Progressive files only (the stand-in's usual video: its 720p is no DASH file).
    let (status, body) = app.json(&format!("/api/v2/stream/manifest/youtube/{}/master.m3u8", yt_id("plain"))).await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(status, &body);
    assert!(body["detail"].as_str().unwrap().contains("/api/v2/stream/proxy/youtube/"), "{body}");
}

#[tokio::test]
async fn each_player_profile_gets_what_it_promises() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    for route in [
        format!("/api/v2/stream/proxy/youtube/{id}"),
        format!("/api/v2/stream/direct/youtube/{id}"),
        format!("/api/v2/stream/youtube/{id}"),
        format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8"),
    ] {
        let (status, body) = app.json(&format!("{route}?player=vlc")).await;
        assert_eq!(status, 400, "{route}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("unity, avpro"), "{body}");
    }
    // AVPro: H.264 and AAC only, and separate video and audio through the manifest.
    let master =
        master_of(&text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?player=avpro")).await);
    assert!(master.variants.iter().all(|v| v.codecs.as_deref().unwrap().starts_with("avc1")), "{:?}", master.variants);
    assert_eq!(master.variants.len(), 2);
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?player=avpro&quality=720p")).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=720p&player=avpro"));
    let heights: Vec<u64> =
        master_of(&text(&app, &location).await).variants.iter().map(|v| v.resolution.unwrap().height).collect();
    assert_eq!(heights, [720, 360], "every H.264 rendition up to the quality");
    let twitch = app.follow("/api/v2/stream/proxy?url=https://www.twitch.tv/videos/99&player=avpro").await;
    assert_eq!(twitch.headers()["content-type"], "application/vnd.apple.mpegurl", "a source's own HLS");
    // Unity: a progressive MP4 with H.264/AAC, never HLS.
    let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?player=unity")).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["x-reelay-format"], "18");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?player=unity")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-reelay-format"], "136+140", "merged H.264 + AAC, not AV1 or Opus");
    drop(resp);
    let (status, body) = app.json("/api/v2/stream/proxy?url=https://www.twitch.tv/videos/98&player=unity").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("unity"), "{body}");
    let (status, body) = app.json(&format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?player=unity")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("player=unity"), "{body}");
}

/// A hot manifest is rendered once and kept briefly: asked again a second
/// later (when freshly signed links would carry another expiry) it is the
/// same text, its links the same, so caches in front can share it. The
/// video's info lives one second here, so rendering either again would
/// need a new extraction: the stand-in's count says none ran.
#[tokio::test]
async fn a_hot_manifest_is_rendered_once_and_its_links_stay_the_same() {
    let app = spawn().arg("--video-info-ttl", 1).arg("--stream-url-ttl", 1).start().await;
    let id = yt_id("dashd");
    let path = format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8");
    let first = text(&app, &path).await;
    let audio = first.lines().find_map(|l| l.split("URI=\"").nth(1)).map(|u| u.split('"').next().unwrap().to_owned());
    let media = text(&app, &audio.clone().expect("an audio rendition")).await;
    let runs = app.fake.runs();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(text(&app, &path).await, first);
    assert_eq!(text(&app, &audio.unwrap()).await, media);
    assert_eq!(app.fake.runs(), runs, "both served as rendered, without looking the video up again");
    let mpd = path.replace("master.m3u8", "manifest.mpd");
    assert!(text(&app, &mpd).await.contains("<MPD"), "another request, its own rendering");
    let other = text(&app, &format!("{path}?quality=360p")).await;
    assert_ne!(other, first, "another query, another rendering");
}

/// AVPro always gets HLS: a progressive file (video and sound in one) as a
/// one-segment playlist that ffprobe reads with both streams and the whole
/// duration; a video that also has HLS of the same height, the HLS.
#[tokio::test]
async fn avpro_always_gets_hls() {
    let app = spawn_app().await;
    let id = yt_id("plain");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p&player=avpro")).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=360p&player=avpro"));
    let playlist = text(&app, &location).await;
    assert!(playlist.contains("#EXT-X-ENDLIST") && playlist.matches("#EXTINF:").count() == 1, "{playlist}");
    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "csv=p=0"])
        .arg(format!("{}{location}", app.base))
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success() && out.contains("video") && out.contains("audio"), "{out} {probe:?}");
    let (_, duration) = probe_times(&format!("{}{location}", app.base)).await;
    let (_, file_duration) = probe_times(media_dir().join("clip.mp4").to_str().unwrap()).await;
    assert!((duration - file_duration).abs() < 0.5, "the playlist lasts {duration} s, the file {file_duration} s");
    // A Twitch VOD: its own HLS, not a file.
    let twitch = app.follow("/api/v2/stream/proxy?url=https://www.twitch.tv/videos/97&player=avpro").await;
    assert_eq!(twitch.headers()["content-type"], "application/vnd.apple.mpegurl");
    // An X video with its own HLS and a progressive MP4 of the same height:
    // the HLS, through the proxy and in direct mode; the MP4 otherwise.
    let x = "https://twitter.com/i/status/1234567";
    let files = app.origin.requests("/media/clip.mp4").len();
    let proxied = app.follow(&format!("/api/v2/stream/proxy?url={x}&player=avpro")).await;
    assert_eq!(proxied.status(), 200, "the source's HLS, not a playlist made of the file");
    assert_eq!(proxied.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert!(proxied.text().await.unwrap().contains("#EXT-X-STREAM-INF"), "the source's master, rewritten");
    assert!(!app.origin.requests("/media/hls/master.m3u8").is_empty(), "the HLS was fetched");
    assert_eq!(app.origin.requests("/media/clip.mp4").len(), files, "the MP4 was not");
    let direct = app.get(&format!("/api/v2/stream/direct?url={x}&player=avpro")).await;
    assert_eq!(direct.status(), 302);
    assert_eq!(direct.headers()["location"], format!("{}/media/hls/master.m3u8", app.origin.base));
    let other = app.get(&format!("/api/v2/stream/direct?url={x}")).await;
    assert_eq!(
        other.headers()["location"],
        format!("{}/media/clip.mp4", app.origin.base),
        "other players get the file"
    );
}

/// ffprobe's `codec_type,start_time` of each stream, and the duration.
async fn probe_times(url: &str) -> (Vec<(String, f64)>, f64) {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,start_time:format=duration", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut streams = Vec::new();
    let mut duration = 0.0;
    for line in text.lines() {
        match line.split(',').collect::<Vec<_>>()[..] {
            // MPEG-TS lists its program's streams again: each once.
            [kind, _] if streams.iter().any(|(k, _)| k == kind) => {}
            [kind, start] => streams.push((kind.to_owned(), start.parse().unwrap_or(f64::NAN))),
            [d] => duration = d.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    (streams, duration)
}

/// Muxed HLS for AVPro: every segment MPEG-TS with video and audio, the
/// playlist complete from the first request; a segment asked for cold, out
/// of order (a seek to the end), starts where the timeline says, audio and
/// video together; ten players of one segment cost one segment written in
/// process and no ffmpeg; the whole variant plays for the video's length.
#[tokio::test]
async fn avpro_gets_muxed_hls_that_seeks() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    let master = text(&app, &format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?player=avpro")).await;
    assert!(!master.contains("TYPE=AUDIO"), "no separate audio: {master}");
    let variants: Vec<&str> = master.lines().filter(|l| l.starts_with('/')).collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert!(master.contains("CODECS=\"avc1.64001f,mp4a.40.2\""), "{master}");
    let media = text(&app, variants[0]).await;
    assert!(media.ends_with("#EXT-X-ENDLIST\n") && media.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{media}");
    let segments: Vec<&str> = media.lines().filter(|l| l.starts_with('/')).collect();
    assert_eq!(segments.len(), 4, "one per subsegment: {media}");
    // Variants line up segment for segment, so a player switching quality
    // mid-film lands on the same moment.
    let durations = |m: &str| m.lines().filter(|l| l.starts_with("#EXTINF")).map(str::to_owned).collect::<Vec<_>>();
    let other = text(&app, variants[1]).await;
    assert_eq!(durations(&media), durations(&other), "aligned variants:\n{media}\n{other}");

    // The last segment first, from a cold store.
    let last = format!("{}{}", app.base, segments[3]);
    let resp = app.http.get(&last).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, "video/mp2t"));
    let (streams, _) = probe_times(&last).await;
    let kinds: Vec<&str> = streams.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["video", "audio"], "{streams:?}");
    let (first, _) = probe_times(&format!("{}{}", app.base, segments[0])).await;
    for ((kind, start), (_, zero)) in streams.iter().zip(&first) {
        assert!((start - zero - 6.0).abs() < 0.1, "{kind} starts at {start}, 6 s after the first segment's {zero}");
    }

    let before = app.prom("reelay_relay_muxed_segments_total").await;
    let second = format!("{}{}", app.base, segments[1]);
    let got = futures_util::future::join_all(
        (0..10).map(|_| async { app.http.get(&second).send().await.unwrap().bytes().await.unwrap() }),
    )
    .await;
    assert!(got.iter().all(|b| b == &got[0] && !b.is_empty()));
    assert_eq!(app.prom("reelay_relay_muxed_segments_total").await - before, 1.0, "written once for ten players");
    assert_eq!(app.prom("reelay_relay_remuxed_segments_total").await, 0.0, "without ffmpeg");

    // A decoder reading the whole variant has nothing to say: no broken
    // packets, no continuity or timestamp complaints.
    let decoded = tokio::process::Command::new("ffmpeg")
        .args(["-v", "warning", "-i"])
        .arg(format!("{}{}", app.base, variants[0]))
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success() && said.trim().is_empty(), "ffmpeg decoding the variant: {said}");
    let (streams, duration) = probe_times(&format!("{}{}", app.base, variants[0])).await;
    assert!(streams.iter().any(|(k, _)| k == "audio") && streams.iter().any(|(k, _)| k == "video"), "{streams:?}");
    assert!((duration - 8.0).abs() < 0.3, "the whole video: {duration}");
    // `ffmpeg -c copy` through the whole variant: one file, both streams in sync, the full length.
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("muxed-{id}.ts"));
    let copied = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(format!("{}{}", app.base, variants[0]))
        .args(["-c", "copy"])
        .arg(&out)
        .output()
        .await
        .unwrap();
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let (streams, duration) = probe_times(out.to_str().unwrap()).await;
    let starts: Vec<f64> = streams.iter().map(|(_, s)| *s).collect();
    assert!(starts.len() == 2 && (starts[0] - starts[1]).abs() < 0.1, "in sync: {streams:?}");
    assert!((duration - 8.0).abs() < 0.3, "the whole video: {duration}");
    let _ = std::fs::remove_file(out);
}

/// AVPro gets sound on every route and in either mode: separate video and
/// audio lead to muxed HLS (no audio rendition group, every variant's
/// segments MPEG-TS with both streams, as ffprobe reads one).
#[tokio::test]
async fn avpro_gets_muxed_hls_on_every_route() {
    let app = spawn_app().await;
    let id = yt_id("dashd");
    let manifest = format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8?quality=720p&player=avpro");
    for route in [
        format!("/api/v2/stream/proxy/youtube/{id}?quality=720p&player=avpro"),
        format!("/api/v2/stream/direct/youtube/{id}?quality=720p&player=avpro"),
        format!("/api/v2/stream/youtube/{id}?quality=720p&player=avpro"),
        format!("/api/v2/stream/youtube/{id}?quality=720p&player=avpro&mode=direct"),
    ] {
        let resp = app.get(&route).await;
        assert_eq!(resp.status(), 302, "{route}");
        assert_eq!(resp.headers()["location"], manifest.as_str(), "{route}");
    }
    for master in [manifest.clone(), format!("{manifest}&mode=direct")] {
        let text = text(&app, &master).await;
        assert!(!text.contains("TYPE=AUDIO"), "{master}: no separate audio: {text}");
        let variant = text.lines().find(|l| l.starts_with('/')).expect("a variant");
        let media = self::text(&app, variant).await;
        let segment = media.lines().find(|l| l.starts_with('/')).expect("a segment");
        let (streams, _) = probe_times(&format!("{}{segment}", app.base)).await;
        let kinds: Vec<&str> = streams.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["video", "audio"], "{master}: {segment}");
    }
}
