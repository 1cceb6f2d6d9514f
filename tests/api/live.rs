//! Live links (issue 20, first part): Twitch channels and clips, YouTube
//! channels' `/live`, by link and by id; the info says it is live; a channel
//! that is not live is a 404 in yt-dlp's words, remembered for seconds only.

use crate::helpers::*;

#[tokio::test]
async fn live_channels_and_clips_are_videos() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v2/videos?url=https://www.twitch.tv/SomeStreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos?url=https://m.twitch.tv/somestreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos/twitch/somestreamer", "https://www.twitch.tv/somestreamer"),
        ("/api/v2/videos?url=https://www.youtube.com/@LiveChannel/live", "https://www.youtube.com/@LiveChannel/live"),
        ("/api/v2/videos/youtube/@LiveChannel", "https://www.youtube.com/@LiveChannel/live"),
        (
            "/api/v2/videos?url=https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv/live",
            "https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv/live",
        ),
        ("/api/v2/videos?url=https://www.youtube.com/c/LiveName/live", "https://www.youtube.com/c/LiveName/live"),
    ];
    for (path, _) in &cases {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"]["is_live"], true, "{path}");
        assert_eq!(body["data"]["live_status"], "is_live", "{path}");
    }
    let urls: Vec<String> = app.fake.calls().iter().map(|c| c.last().unwrap().clone()).collect();
    let mut want: Vec<&str> = cases.iter().map(|(_, u)| *u).collect();
    want.dedup();
    assert_eq!(urls, want, "yt-dlp gets the canonical URL, one extraction per stream");

    for path in [
        "/api/v2/videos?url=https://clips.twitch.tv/FunnyClipSlug-abc123",
        "/api/v2/videos?url=https://www.twitch.tv/somestreamer/clip/FunnyClipSlug-abc123",
        "/api/v2/videos/twitch/clip:FunnyClipSlug-abc123",
    ] {
        let (status, body) = app.json(path).await;
        assert_eq!(
            (status.as_u16(), &body["data"]["title"]),
            (200, &serde_json::json!("Clip FunnyClipSlug-abc123")),
            "{path}"
        );
    }
    assert_eq!(app.fake.calls().last().unwrap().last().unwrap(), "https://clips.twitch.tv/FunnyClipSlug-abc123");
    assert_eq!(app.fake.runs(), urls.len() + 1, "both clip links and the id are one clip");

    for bad in [
        "/api/v2/videos/twitch/ab",
        "/api/v2/videos/twitch/videos",
        "/api/v2/videos/youtube/@x",
        "/api/v2/videos/twitch/clip:",
    ] {
        let (status, body) = app.json(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_error_shape(status, &body);
    }
}

#[tokio::test]
async fn a_channel_that_is_not_live_is_404_remembered_for_seconds() {
    let app = spawn_app().await;
    for path in ["/api/v2/videos/twitch/offlinechannel", "/api/v2/videos/youtube/@offlinechannel"] {
        let (status, body) = app.json(path).await;
        assert_eq!(status, 404, "{body}");
        assert_error_shape(status, &body);
        assert_eq!(body["error"], "Not live");
        assert!(body["detail"].as_str().unwrap().ends_with("The channel is not currently live"), "{body}");
    }
    let (status, body) = app.json("/api/v2/videos/youtube/@soonchannel").await;
    assert_eq!((status.as_u16(), &body["error"]), (404, &serde_json::json!("Not live")), "{body}");
    // Asked again at once: remembered, yt-dlp not run again.
    let runs = app.fake.runs();
    let (status, _) = app.json("/api/v2/videos/twitch/offlinechannel").await;
    assert_eq!((status.as_u16(), app.fake.runs()), (404, runs));
    // A few seconds on, asked anew (the channel may have gone live).
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    let (status, _) = app.json("/api/v2/videos/twitch/offlinechannel").await;
    assert_eq!((status.as_u16(), app.fake.runs()), (404, runs + 1));
    assert!(app.prom("reelay_extractions_total{outcome=\"not_live\"}").await >= 3.0);
}

/// A live stream in each mode: direct is a 302 to the origin's playlist,
/// the proxy answers the playlist rewritten (no origin URL in it), AVPro
/// gets the HLS, and Unity, which plays no live HLS, a 409 naming the link
/// that plays.
#[tokio::test]
async fn a_live_stream_in_each_mode_and_player() {
    let app = spawn_app().await;
    let resp = app.get("/api/v2/stream/direct/twitch/somestreamer").await;
    assert_eq!(resp.status(), 302);
    assert!(resp.headers()["location"].to_str().unwrap().contains("/live/somestreamer/"));
    for player in ["", "&player=avpro"] {
        let resp = app.get(&format!("/api/v2/stream/proxy/twitch/somestreamer?quality=best{player}")).await;
        assert_eq!(resp.status(), 200, "{player}");
        let text = resp.text().await.unwrap();
        assert!(text.starts_with("#EXTM3U") && text.contains("/api/v2/stream/live/"), "{text}");
        assert!(!text.contains(&app.origin.base), "no origin URL: {text}");
    }
    let (status, body) = app.json("/api/v2/stream/proxy/twitch/somestreamer?player=unity").await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(status, &body);
    assert!(
        body["detail"].as_str().unwrap().contains("/api/v2/stream/proxy/twitch/somestreamer?quality=best"),
        "{body}"
    );
}

/// What one player of a live stream through reelay saw.
#[derive(Debug, Default)]
struct Watched {
    playlists: usize,
    errors: Vec<String>,
    /// (reelay's media sequence, the segment's wall-clock number, its link).
    segments: Vec<(u64, i64, String)>,
    /// Playlists whose media sequence went back.
    backwards: usize,
    /// Lines that name the origin, or tags a client must not get.
    leaks: Vec<String>,
    cache_control: std::collections::BTreeSet<String>,
    /// The wall-clock numbers of segments marked by a discontinuity.
    discontinuities: std::collections::BTreeSet<i64>,
    /// Segments fetched whose bytes were not the origin's.
    wrong_bytes: usize,
}

/// The segments of a live playlist as (media sequence, wall-clock number
/// from its date, link), and the wall-clock numbers of those after an
/// `EXT-X-DISCONTINUITY`.
fn segments_of(text: &str) -> (Vec<(u64, i64, String)>, Vec<i64>) {
    let mut seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .expect("a media sequence");
    let (mut out, mut date, mut marked, mut disc) = (Vec::new(), None, false, Vec::new());
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = Some(chrono::DateTime::parse_from_rfc3339(d).unwrap().timestamp_millis() / 2000);
        } else if line == "#EXT-X-DISCONTINUITY" {
            marked = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            let n = date.take().expect("every segment dated");
            if std::mem::take(&mut marked) {
                disc.push(n);
            }
            out.push((seq, n, line.to_owned()));
            seq += 1;
        }
    }
    (out, disc)
}

/// A player: reloads `link` every second for `secs` and fetches each new
/// segment when `fetch` says so.
async fn watch(app: &TestApp, link: &str, secs: u64, fetch: bool) -> Watched {
    let mut w = Watched::default();
    let origin_host = app.origin.base.trim_start_matches("http://").to_owned();
    let start = std::time::Instant::now();
    let mut last_seq = 0u64;
    let mut fetched = std::collections::HashSet::new();
    while start.elapsed() < std::time::Duration::from_secs(secs) {
        let resp = app.get(link).await;
        let status = resp.status();
        if let Some(c) = resp.headers().get("cache-control") {
            w.cache_control.insert(c.to_str().unwrap().to_owned());
        }
        let text = resp.text().await.unwrap();
        if status != 200 {
            w.errors.push(format!("{status}: {text}"));
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        w.playlists += 1;
        for line in text.lines() {
            let bad = ["TWITCH", "EXT-X-PART", "PRELOAD-HINT", "SERVER-CONTROL", "USER-IP", "://"];
            if line.contains(&origin_host) || bad.iter().any(|b| line.contains(b)) {
                w.leaks.push(line.to_owned());
            }
        }
        let (segs, disc) = segments_of(&text);
        w.discontinuities.extend(disc);
        if let Some((first, ..)) = segs.first() {
            if *first < last_seq {
                w.backwards += 1;
            }
            last_seq = *first;
        }
        if fetch
            && let Some((seq, n, link)) = segs.last().cloned()
            && fetched.insert(seq)
        {
            let bytes = app.get(&link).await.bytes().await.unwrap();
            if bytes.as_ref() != crate::live_origin::segment_bytes(n).as_slice() {
                w.wrong_bytes += 1;
            }
        }
        w.segments.extend(segs);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    w
}

/// A crowd on one live channel through the proxy: one origin session, its
/// playlist fetched at most once a second whatever the crowd, each
/// segment once, nothing of the origin in what players get, the same link
/// for the same segment on every reload and for every player.
#[tokio::test]
async fn a_crowd_on_a_live_channel_shares_one_session() {
    let app = spawn_app().await;
    let link = "/api/v2/stream/proxy/twitch/crowdchannel?quality=720p";
    let start = std::time::Instant::now();
    let players = (0..100).map(|i| watch(&app, link, 8, i % 10 == 0));
    let watched = futures_util::future::join_all(players).await;
    let secs = start.elapsed().as_secs_f64();

    let polls = app.origin.requests("/live/crowdchannel/720p60/index.m3u8").len();
    assert!(polls as f64 <= secs.ceil(), "{polls} origin playlist fetches in {secs:.1} s for 100 players");
    assert!(polls >= 3, "the session was polled: {polls}");
    assert!(app.origin.requests("/live/crowdchannel/360p30/").is_empty(), "a variant nobody watches is not polled");
    let mut per_segment = std::collections::HashMap::<String, usize>::new();
    for (path, _) in app.origin.requests("/live/crowdchannel/720p60/") {
        if !path.contains("index.m3u8") {
            *per_segment.entry(path.split('?').next().unwrap().to_owned()).or_default() += 1;
        }
    }
    assert!(!per_segment.is_empty());
    assert!(per_segment.values().all(|n| *n == 1), "each segment fetched once: {per_segment:?}");

    let mut links = std::collections::HashMap::<u64, (i64, String)>::new();
    for w in &watched {
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        assert!(w.leaks.is_empty(), "{:?}", w.leaks);
        assert_eq!(w.backwards, 0);
        assert_eq!(w.wrong_bytes, 0);
        assert_eq!(w.cache_control.iter().collect::<Vec<_>>(), ["max-age=1"]);
        for (seq, n, l) in &w.segments {
            let first = links.entry(*seq).or_insert((*n, l.clone()));
            assert_eq!(first, &(*n, l.clone()), "segment {seq}: one link, one segment");
        }
    }
    let mut numbers: Vec<(u64, i64)> = links.iter().map(|(s, (n, _))| (*s, *n)).collect();
    numbers.sort();
    assert!(numbers.windows(2).all(|p| p[1].0 == p[0].0 + 1 && p[1].1 == p[0].1 + 1), "{numbers:?}");
    assert!(app.prom("reelay_live_segment_fetches_total").await >= per_segment.len() as f64);
    // Every playlist a player got is counted, and nothing else.
    let received: usize = watched.iter().map(|w| w.playlists).sum();
    assert_eq!(app.prom("reelay_live_playlists_served_total").await, received as f64);
    assert_eq!(app.prom("reelay_live_streams").await, 1.0);
    // The estimate is reloads per target duration (2 s): what the players'
    // own count says they made, however fast this machine ran them.
    let reloads_per_target = received as f64 * 2.0 / secs;
    let viewers = app.prom("reelay_live_viewers").await;
    assert!(
        (0.6 * reloads_per_target..=1.4 * reloads_per_target).contains(&viewers),
        "viewers estimated: {viewers}, players reloaded {reloads_per_target:.0} times per target duration"
    );
    assert!(app.prom("reelay_live_edge_delay_seconds_count").await >= 2.0);
}

/// The origin refuses the session after 10 s (its token ran out): reelay
/// extracts again and carries on; the player sees the same sequence go on,
/// a discontinuity where the new session's numbering starts, no error, no
/// segment twice or missing.
#[tokio::test]
async fn a_refused_session_is_renewed_and_playback_carries_on() {
    let app = spawn_app().await;
    let w = watch(&app, "/api/v2/stream/proxy/twitch/shortchannel?quality=720p", 16, true).await;
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert!(w.leaks.is_empty(), "{:?}", w.leaks);
    assert_eq!((w.backwards, w.wrong_bytes), (0, 0));
    // Where each session after the first starts, from the origin's log: the
    // first segment fetched with that session's token.
    let mut firsts = std::collections::BTreeMap::<i64, i64>::new();
    for (path, _) in app.origin.requests("/live/shortchannel/720p60/") {
        let (name, query) = path.rsplit('/').next().unwrap().split_once('?').unwrap_or(("", ""));
        let (Some(n), Some(session)) = (
            name.strip_suffix(".ts").and_then(|n| n.parse::<i64>().ok()),
            query.split('&').find_map(|kv| kv.strip_prefix("session=")).and_then(|s| s.parse::<i64>().ok()),
        ) else {
            continue;
        };
        firsts.entry(session).and_modify(|f| *f = (*f).min(n)).or_insert(n);
    }
    assert!(firsts.len() >= 2, "segments from a second session: {firsts:?}");
    let starts: Vec<i64> = firsts.values().skip(1).copied().collect();
    for n in &starts {
        assert!(w.discontinuities.contains(n), "the new session starting at {n} is marked: {:?}", w.discontinuities);
    }
    // The origin's own (the pattern looping) are kept; there are no others.
    let loops = |n: &i64| n.rem_euclid(crate::live_origin::LOOP) == 0;
    assert!(w.discontinuities.iter().all(|n| starts.contains(n) || loops(n)), "{:?} {starts:?}", w.discontinuities);
    let mut seen: Vec<(u64, i64)> = w.segments.iter().map(|(s, n, _)| (*s, *n)).collect();
    seen.sort();
    seen.dedup();
    assert!(seen.windows(2).all(|p| p[1].0 == p[0].0 + 1 && p[1].1 == p[0].1 + 1), "{seen:?}");
    assert!(app.fake.runs() >= 2, "extracted again");
    assert!(app.prom_with("reelay_live_session_renewals_total", &[("outcome", "ok")]).await >= 1.0);
    let refused = app.origin.requests("/live/shortchannel/720p60/index.m3u8");
    assert!(refused.len() >= 6);
}

/// A variant nobody reloads stops being polled; the next player starts it
/// again.
#[tokio::test]
async fn a_poller_stops_after_its_last_viewer() {
    let app = spawn().arg("--live-idle-timeout", 2).start().await;
    let link = "/api/v2/stream/proxy/twitch/idlechannel?quality=720p";
    assert_eq!(app.get(link).await.status(), 200);
    assert_eq!(app.prom("reelay_live_streams").await, 1.0);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let polls = app.origin.requests("/live/idlechannel/").len();
    assert_eq!(app.prom("reelay_live_streams").await, 0.0);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(app.origin.requests("/live/idlechannel/").len(), polls, "no polls after the last viewer");
    assert_eq!(app.get(link).await.status(), 200);
    assert_eq!(app.prom("reelay_live_streams").await, 1.0);
}

/// A live stream's master playlist: reelay's own, a link per variant to its
/// shared session, nothing of the origin's.
#[tokio::test]
async fn a_live_master_names_each_variant_by_stream() {
    let app = spawn_app().await;
    let resp = app.get("/api/v2/stream/manifest/twitch/masterchannel/master.m3u8").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let variants: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert_eq!(variants.len(), 2, "{text}");
    assert!(text.contains("RESOLUTION=1280x720") && text.contains("BANDWIDTH=2500000"), "{text}");
    assert!(!text.contains(&app.origin.base) && !text.contains("session="), "{text}");
    for v in &variants {
        assert!(v.starts_with("/api/v2/stream/live/") && v.contains("?v=twitch/masterchannel"), "{v}");
        let resp = app.get(v).await;
        assert_eq!(resp.status(), 200);
        let (segs, _) = segments_of(&resp.text().await.unwrap());
        assert!(segs.len() >= 3);
    }
    assert!(!app.origin.requests("/live/masterchannel/360p30/index.m3u8").is_empty());
    // A tampered link is refused.
    let (status, body) = app.json(&variants[0].replacen("/live/", "/live/x", 1)).await;
    assert_eq!(status, 403, "{body}");
    assert_error_shape(status, &body);
}

/// The origin fails the playlist three seconds in every ten: players go on
/// getting the last copy (never an error), and the window catches up with
/// nothing missing once the origin answers again.
#[tokio::test]
async fn a_flaky_origin_costs_players_nothing() {
    let app = spawn_app().await;
    // Started where the origin answers, so its failures come mid-stream.
    while chrono::Utc::now().timestamp() % 10 >= 5 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let w = watch(&app, "/api/v2/stream/proxy/twitch/flakychannel?quality=720p", 14, true).await;
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert_eq!((w.backwards, w.wrong_bytes), (0, 0));
    let mut seen: Vec<(u64, i64)> = w.segments.iter().map(|(s, n, _)| (*s, *n)).collect();
    seen.sort();
    seen.dedup();
    assert!(seen.windows(2).all(|p| p[1].0 == p[0].0 + 1 && p[1].1 == p[0].1 + 1), "{seen:?}");
    assert!(app.prom_with("reelay_live_playlist_fetches_total", &[("outcome", "failed")]).await >= 1.0);
}

/// The channel goes offline: the origin refuses the session and the new
/// extraction says it is not live; players get the window ended
/// (`EXT-X-ENDLIST`) at once, not an error and not after retries, and a
/// new player afterwards the 404.
#[tokio::test]
async fn a_stream_that_ends_is_ended_for_its_players() {
    let app = spawn().arg("--live-idle-timeout", 2).start().await;
    let link = "/api/v2/stream/proxy/twitch/endingchannel?quality=720p";
    // A player reloads every second until the playlist says it has ended.
    let mut reloads = 0;
    loop {
        let resp = app.get(link).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "reload {reloads}: {text}");
        if text.ends_with("#EXT-X-ENDLIST\n") {
            break;
        }
        reloads += 1;
        assert!(reloads < 60, "not ended after a minute: {text}");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(reloads >= 5, "the stream played before it ended: {reloads} reloads");
    // Ended at the first extraction that said so, not after retries.
    let failed = app.prom_with("reelay_live_session_renewals_total", &[("outcome", "failed")]).await;
    assert_eq!(failed, 1.0, "one renewal, answered 'not live', ended the window");
    assert!(app.fake.runs() >= 2, "the stand-in was asked again and said the channel is not live");
    // Players still reloading keep the ended window (past the 2 s a variant
    // may go unasked here).
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let text = app.get(link).await.text().await.unwrap();
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    }
    // Once its players have left, the ended window goes with them: a new
    // player is told the channel is not live.
    for _ in 0..50 {
        if app.prom("reelay_live_streams").await == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, body) = app.json(link).await;
    assert_eq!(status, 404, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(body["error"], "Not live", "{body}");
}

/// The real yt-dlp on a live HLS that ffmpeg writes as it goes (`-re`,
/// `delete_segments`): its generic extractor says `is_live`, and reelay
/// plays it through the shared session: its own links, the same link for
/// the same segment from one reload to the next, the segments' bytes as
/// ffmpeg wrote them, no origin address.
#[tokio::test]
async fn ffmpeg_live_hls_through_the_real_ytdlp() {
    let dir = media_dir().join(format!("livehls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "60", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", "50", "-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "5"])
        .args(["-hls_flags", "delete_segments+program_date_time"])
        .arg(dir.join("index.m3u8"))
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg runs");
    let app = spawn().ytdlp(real_ytdlp()).start().await;
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let source = format!("{}/media/{name}/index.m3u8", app.origin.base);
    for _ in 0..150 {
        if dir.join("index2.ts").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(dir.join("index2.ts").exists(), "ffmpeg wrote three segments within 30 s");
    let (status, body) = app.json(&format!("/api/v2/videos?url={source}")).await;
    assert_eq!((status.as_u16(), &body["data"]["is_live"]), (200, &true.into()), "{body}");

    let link = format!("/api/v2/stream/proxy?url={source}");
    let first = app.follow(&link).await.text().await.unwrap();
    let seq =
        |t: &str| -> u64 { t.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap() };
    // Until ffmpeg's window of five has moved past where it was (ffmpeg
    // runs at the wall clock's pace, slower on a loaded machine).
    let mut second = first.clone();
    for _ in 0..60 {
        if seq(&second) > seq(&first) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        second = app.follow(&link).await.text().await.unwrap();
    }
    for text in [&first, &second] {
        // Each link names the page it plays (`?v=`, the link the client gave), never a segment's URL.
        let mut paths = text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('?').next().unwrap());
        assert!(paths.all(|p| p.starts_with("/api/v2/stream/live/") && !p.contains("index")), "{text}");
        assert!(!text.contains("://"), "{text}");
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME"), "{text}");
    }
    assert!(seq(&second) > seq(&first), "the window moved:\n{first}\n{second}");
    let links = |t: &str| -> Vec<String> { t.lines().filter(|l| l.starts_with('/')).map(str::to_owned).collect() };
    let (a, b) = (links(&first), links(&second));
    let moved = (seq(&second) - seq(&first)) as usize;
    assert_eq!(a[moved..], b[..a.len() - moved], "the same link for the same segment");
    let newest = b.last().unwrap();
    let n = seq(&second) + b.len() as u64 - 1;
    let bytes = app.get(newest).await.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), std::fs::read(dir.join(format!("index{n}.ts"))).unwrap().as_slice());
    let _ = ffmpeg.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Listed live segments are kept whatever else the store holds: a VOD
/// read far past the store's budget (8 MiB here, 64 MiB read) evicts none
/// of them, and each is fetched from the origin once.
#[tokio::test]
async fn listed_live_segments_survive_a_vod_flood() {
    let app = spawn().arg("--stream-cache-memory", "8MiB").start().await;
    let link = "/api/v2/stream/proxy/twitch/pinnedchannel?quality=720p";
    let (listed, _) = segments_of(&app.get(link).await.text().await.unwrap());
    let fetched = |n: i64| app.origin.requests(&format!("/live/pinnedchannel/720p60/{n}.ts")).len();
    for _ in 0..100 {
        if listed.iter().all(|(_, n, _)| fetched(*n) > 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(listed.iter().all(|(_, n, _)| fetched(*n) == 1), "each listed segment fetched ahead, once");
    // The flood: a VOD file read through the same store.
    let evicted = app.prom_with("reelay_relay_evictions_total", &[("tier", "memory")]).await;
    let mut resp = app.get(&format!("/api/v2/stream/proxy/youtube/{}?quality=360p", yt_id("bigbigbigbi"))).await;
    let mut read = 0usize;
    while read < 64 << 20 {
        read += resp.chunk().await.unwrap().expect("the file goes on").len();
    }
    drop(resp);
    let evictions = app.prom_with("reelay_relay_evictions_total", &[("tier", "memory")]).await - evicted;
    assert!(evictions >= 40.0, "the flood pressed the store: {evictions} blocks evicted");
    // What is still listed plays from the store: the origin's bytes, no
    // second fetch.
    let (now, _) = segments_of(&app.get(link).await.text().await.unwrap());
    let still: Vec<&(u64, i64, String)> = listed.iter().filter(|s| now.iter().any(|t| t.0 == s.0)).collect();
    assert!(!still.is_empty(), "the window moved past every segment during the flood");
    for (_, n, l) in still {
        let bytes = app.get(l).await.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), crate::live_origin::segment_bytes(*n).as_slice());
        assert_eq!(fetched(*n), 1, "segment {n} was evicted and fetched again");
    }
}
