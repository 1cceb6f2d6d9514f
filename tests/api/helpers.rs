//! Test harness: the app on 127.0.0.1:0, a local origin serving media made by
//! ffmpeg, and a stand-in extractor that counts its runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use reelay::{App, Config};
use serde_json::Value;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;

pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Media files made once per test run with ffmpeg.
pub fn media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media-v4");
        std::fs::create_dir_all(&dir).unwrap();
        let src_v =
            |size: &str| vec!["-f".into(), "lavfi".into(), "-i".into(), format!("testsrc2=size={size}:rate=25")];
        let src_a =
            || vec!["-f".to_string(), "lavfi".into(), "-i".into(), "sine=frequency=440:sample_rate=44100".into()];
        let h264 = || {
            ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-movflags", "+faststart"]
                .map(String::from)
                .to_vec()
        };
        let dash_h264 = || {
            ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-sc_threshold", "0", "-an"]
                .map(String::from)
                .to_vec()
        };
        let dash = || ["-t", "8", "-movflags", "+dash+global_sidx", "-f", "mp4"].map(String::from).to_vec();
        let jobs: Vec<(&str, Vec<String>)> = vec![
            (
                "clip.mp4",
                [src_v("640x360"), src_a(), h264(), vec!["-c:a".into(), "aac".into(), "-t".into(), "4".into()]]
                    .concat(),
            ),
            ("v720.mp4", [src_v("1280x720"), h264(), vec!["-an".into(), "-t".into(), "4".into()]].concat()),
            (
                "a.m4a",
                [src_a(), ["-c:a", "aac", "-t", "4", "-movflags", "+faststart"].map(String::from).to_vec()].concat(),
            ),
            ("thumb.jpg", [src_v("320x180"), vec!["-frames:v".into(), "1".into()]].concat()),
            // A GIF as X serves one: a silent H.264 MP4 under /tweet_video/.
            (
                "tweet_video/gif.mp4",
                [src_v("320x180"), h264(), ["-an", "-r", "10", "-t", "2"].map(String::from).to_vec()].concat(),
            ),
            // Opus in WebM, as YouTube's format 251, and a VP9 video-only WebM.
            (
                "a-opus.webm",
                [src_a(), ["-c:a", "libopus", "-b:a", "96k", "-t", "4", "-f", "webm"].map(String::from).to_vec()]
                    .concat(),
            ),
            (
                "v360-vp9.webm",
                [
                    src_v("640x360"),
                    ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-an", "-t", "4", "-f", "webm"]
                        .map(String::from)
                        .to_vec(),
                ]
                .concat(),
            ),
            // Laid out like YouTube's DASH files: ftyp, moov, one sidx, then a
            // moof/mdat pair per 2 s.
            ("dash-v360.mp4", [src_v("640x360"), dash_h264(), dash()].concat()),
            ("dash-v720.mp4", [src_v("1280x720"), dash_h264(), dash()].concat()),
            (
                "dash-a.m4a",
                [src_a(), ["-c:a", "aac", "-frag_duration", "2000000"].map(String::from).to_vec(), dash()].concat(),
            ),
        ];
        // The dubs of `dubs…` videos: the same layout, each its own tone.
        let dubs = [("dash-a-de.m4a", 330), ("dash-a-fr.m4a", 550), ("dash-a-es.m4a", 660)].map(|(name, hz)| {
            let tone = ["-f", "lavfi", "-i", &format!("sine=frequency={hz}:sample_rate=44100")].map(String::from);
            (
                name,
                [tone.to_vec(), ["-c:a", "aac", "-frag_duration", "2000000"].map(String::from).to_vec(), dash()]
                    .concat(),
            )
        });
        let jobs = jobs.into_iter().chain(dubs);
        std::fs::create_dir_all(dir.join("tweet_video")).unwrap();
        for (name, args) in jobs {
            let out = dir.join(name);
            if out.exists() {
                continue;
            }
            let tmp = dir.join(format!("tmp-{}-{}", std::process::id(), name.replace('/', "-")));
            let status = Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error"])
                .args(&args)
                .arg(&tmp)
                .status()
                .expect("ffmpeg must be installed (scripts/setup --test)");
            assert!(status.success(), "ffmpeg failed making {name}");
            std::fs::rename(&tmp, &out).unwrap();
        }
        make_hls(&dir);
        crate::live_origin::make_segments(&dir);
        write_subtitles(&dir);
        // Sparse: 300 MB on disk costs nothing, reading it costs the bytes.
        let big = dir.join("big.bin");
        if !big.exists() {
            std::fs::File::create(&big).unwrap().set_len(BIG_LEN).unwrap();
        }
        // 64 MiB of noise: a misplaced or repeated byte changes its digest.
        let rand = dir.join("rand64.bin");
        if !rand.exists() {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut data = Vec::with_capacity(RAND_LEN as usize);
            while data.len() < RAND_LEN as usize {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.extend_from_slice(&x.to_le_bytes());
            }
            let tmp = dir.join(format!("tmp-{}-rand64.bin", std::process::id()));
            std::fs::write(&tmp, &data).unwrap();
            std::fs::rename(&tmp, &rand).unwrap();
        }
        dir
    })
}

/// Size of `big.bin`.
pub const BIG_LEN: u64 = 300 * 1024 * 1024;
/// Size of `rand64.bin` (the stand-in extractor's googlevideo `clen=`).
pub const RAND_LEN: u64 = 64 * 1024 * 1024;
/// The googlevideo host of the stand-in extractor, resolved to the test origin.
pub const GOOGLEVIDEO_HOST: &str = "rr1---sn-stand-in.googlevideo.com";

/// Subtitle files in the formats YouTube serves: WebVTT, `json3` (timed
/// events) and `srv3` (timed-text XML).
fn write_subtitles(dir: &Path) {
    let files = [
        ("sub-en.vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello from the uploader\n\n"),
        ("sub-en.json3", r#"{"events":[{"tStartMs":0,"dDurationMs":2000,"segs":[{"utf8":"Hello in json3"}]}]}"#),
        (
            "sub-de.srv3",
            r#"<?xml version="1.0" encoding="utf-8" ?><timedtext format="3"><body><p t="500" d="1500">Hallo <s>Welt</s></p></body></timedtext>"#,
        ),
        (
            "auto-en.json3",
            r#"{"events":[{"tStartMs":1000,"dDurationMs":3000,"segs":[{"utf8":"automatic "},{"utf8":"words"}]}]}"#,
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text).unwrap();
        }
    }
}

/// `hls/master.m3u8` with one fMP4 variant cut from clip.mp4 (so it has an
/// `#EXT-X-MAP` init section and segments).
fn make_hls(dir: &Path) {
    let hls = dir.join("hls");
    if hls.join("master.m3u8").exists() {
        return;
    }
    let tmp = dir.join(format!("hls-tmp-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("v0")).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(dir.join("clip.mp4"))
        .args(["-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"])
        .args(["-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename"])
        .arg(tmp.join("v0/seg%d.m4s"))
        .arg(tmp.join("v0/index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg failed making the HLS fixture");
    std::fs::write(
        tmp.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.42c01e,mp4a.40.2\"\nv0/index.m3u8\n",
    )
    .unwrap();
    let _ = std::fs::rename(&tmp, &hls);
}

pub fn media(name: &str) -> Vec<u8> {
    std::fs::read(media_dir().join(name)).unwrap()
}

/// The header under which the origin records each request's client address.
pub const PEER: &str = "x-test-peer";

/// What the origin saw: each request's path (with its query) and headers
/// (with the client's address under [`PEER`]).
pub type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// A local origin: `/media/*` (byte ranges), `/bili/*` (refused without
/// Bilibili's Referer), `/page.html` (an HTML page with a `<video>`),
/// `/list.html` (three of them). Every
/// response sets a cookie, which must never reach reelay's clients.
#[derive(Default)]
pub struct Origin {
    pub base: String,
    pub seen: Seen,
    /// Bytes the quirky routes sent, by path.
    pub sent: crate::quirks::Sent,
}

impl Origin {
    /// An origin nothing listens on.
    pub fn dead() -> Origin {
        Origin { base: "http://127.0.0.1:1".into(), ..Origin::default() }
    }

    /// Bytes the quirky routes sent for `path`.
    pub fn sent(&self, path: &str) -> u64 {
        self.sent.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests whose path (and query) starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<(String, HeaderMap)> {
        self.seen.lock().unwrap().iter().filter(|(p, _)| p.starts_with(prefix)).cloned().collect()
    }
}

pub async fn spawn_origin() -> Origin {
    let dir = media_dir();
    let seen: Seen = Arc::default();
    let sent: crate::quirks::Sent = Arc::default();
    let recorder = seen.clone();
    let (q_sent, v_sent) = (sent.clone(), sent.clone());
    let app = Router::new()
        .route(
            "/q/{quirk}/{name}",
            get(move |p, q, h| crate::quirks::quirky(p, q, h, q_sent.clone())),
        )
        .route("/videoplayback", get(move |q, h| crate::quirks::videoplayback(q, h, v_sent.clone())))
        .nest_service("/media", ServeDir::new(dir))
        .nest_service("/bili", ServeDir::new(dir))
        .route("/live/{channel}/{variant}/index.m3u8", get(crate::live_origin::playlist))
        .route("/live/{channel}/{variant}/{name}", get(crate::live_origin::segment))
        .route("/sabr/{quirks}/{name}", axum::routing::post(crate::sabr_origin::videoplayback))
        .route("/imp/{name}", get(browsers_only))
        .route("/slow/{name}", get(slow))
        .route("/norange/{name}", get(no_range))
        .route("/page.html", get(|| async { Html("<html><head><title>Local page</title></head><body><video src=\"/media/clip.mp4\" controls></video></body></html>") }))
        .route("/list.html", get(|| async { Html(LIST_PAGE) }))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let recorder = recorder.clone();
            async move {
                let path = req.uri().path().to_owned();
                let target = req.uri().path_and_query().map_or(path.clone(), |p| p.to_string());
                let mut headers = req.headers().clone();
                let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
                if let Some(peer) = peer {
                    headers.insert(PEER, HeaderValue::from_str(&peer.to_string()).unwrap());
                }
                recorder.lock().unwrap().push((target, headers));
                let referer_ok = req.headers().get("referer").is_some_and(|r| r == "https://www.bilibili.com/");
                if path.starts_with("/bili/") && !referer_ok {
                    return (StatusCode::FORBIDDEN, "missing referer").into_response();
                }
                if url_refused(req.uri().query().unwrap_or(""), peer) {
                    return (StatusCode::FORBIDDEN, "expired").into_response();
                }
                let mut resp: Response = next.run(req).await;
                resp.headers_mut().insert("set-cookie", HeaderValue::from_static("origin_session=secret"));
                resp
            }
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Origin { base, seen, sent }
}

/// A page with several videos, which yt-dlp's generic extractor lists as a playlist.
const LIST_PAGE: &str = "<html><head><title>Local list</title></head><body>\
<video src=\"/media/clip.mp4?n=1\" controls></video><video src=\"/media/clip.mp4?n=2\" controls></video>\
<video src=\"/media/clip.mp4?n=3\" controls></video></body></html>";

/// Like a CDN: URLs past their `expire=`, or marked `revoked=1`, get 403;
/// so do URLs bound to another client address (googlevideo's `ip=`) when
/// that address is one a test can send from (loopback; a public one such
/// as `boundboundb`'s stands for an address no test has).
fn url_refused(query: &str, peer: Option<std::net::IpAddr>) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    query.split('&').any(|kv| match kv.split_once('=') {
        Some(("expire" | "until", v)) => v.parse::<i64>().is_ok_and(|e| e < now),
        Some(("revoked", "1")) => true,
        Some(("ip", v)) => v.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() && Some(ip) != peer),
        _ => false,
    })
}

fn media_name(name: &str) -> PathBuf {
    assert!(!name.contains('/') && !name.contains(".."));
    media_dir().join(name)
}

/// A media file sent slowly (8 KiB every 50 ms), with no length and no
/// ranges, like a struggling origin.
/// A media file for browsers only, as YouTube serves subtitle files: a
/// client without a browser's `sec-ch-ua` (curl_cffi's impersonation sends
/// it) gets 403.
async fn browsers_only(headers: HeaderMap, axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    if !headers.contains_key("sec-ch-ua") {
        return (StatusCode::FORBIDDEN, "browsers only").into_response();
    }
    match std::fs::read(media_name(&name)) {
        Ok(bytes) => bytes.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn slow(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let bytes = std::fs::read(media_name(&name)).unwrap();
    let chunks: Vec<bytes::Bytes> = bytes.chunks(8192).map(bytes::Bytes::copy_from_slice).collect();
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, std::io::Error>(c)
    });
    ([("content-type", "video/mp4")], axum::body::Body::from_stream(stream)).into_response()
}

/// A whole file, whatever Range the request carries.
async fn no_range(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    ([("content-type", "video/mp4")], std::fs::read(media_name(&name)).unwrap()).into_response()
}

/// The stand-in extractor: a wrapper script around `fake_ytdlp.py` with this
/// test's origin and log file.
pub struct FakeExtractor {
    pub path: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeExtractor {
    pub fn new(origin: &str, delay_ms: u64) -> Self {
        Self::with_version_delay(origin, delay_ms, 0)
    }

    /// One whose `--version` takes `version_ms` (a slow start).
    pub fn with_version_delay(origin: &str, delay_ms: u64, version_ms: u64) -> Self {
        Self::build(origin, delay_ms, version_ms, false)
    }

    /// `sabr_build`: its verbose header says it is yt-dlp's SABR build.
    pub fn build(origin: &str, delay_ms: u64, version_ms: u64, sabr_build: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runs.log");
        std::fs::write(&log, "").unwrap();
        let path = dir.path().join("yt-dlp");
        let script = format!(
            "#!/bin/sh\nexec python3 {MANIFEST_DIR}/tests/fixtures/fake_ytdlp.py --origin {origin} --log {} --delay-ms {delay_ms} --version-delay-ms {version_ms} --sabr-build {} \"$@\"\n",
            log.display(),
            u8::from(sabr_build),
        );
        write_executable(&path, &script);
        FakeExtractor { path, log, _dir: dir }
    }

    /// The argument lists of every extraction so far.
    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn runs(&self) -> usize {
        self.calls().len()
    }

    /// The most extractions that were running at once (each run's wait,
    /// `--delay-ms`, from its start to its end), from the order the runs
    /// wrote their starts and ends: no clock involved.
    pub fn most_at_once(&self) -> usize {
        let spans = std::fs::read_to_string(self.log.with_extension("log.spans")).unwrap_or_default();
        let (mut now, mut most) = (0i64, 0i64);
        for mark in spans.lines() {
            now += if mark == "+" { 1 } else { -1 };
            most = most.max(now);
        }
        most as usize
    }
}

/// Writes a shell script that may be run.
pub fn write_executable(path: &Path, script: &str) {
    std::fs::write(path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The Redis the tests share (scripts/test exports it).
pub fn redis_url() -> String {
    std::env::var("REELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned())
}

/// The Python of the real yt-dlp's venv (it has yt_dlp, and pip).
pub fn venv_python() -> PathBuf {
    real_ytdlp().parent().unwrap().join("python")
}

/// The real yt-dlp (scripts/setup puts it in .venv).
pub fn real_ytdlp() -> PathBuf {
    let path = std::env::var("REELAY_TEST_YTDLP")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(MANIFEST_DIR).join(".venv/bin/yt-dlp"));
    assert!(path.exists(), "the real yt-dlp is missing at {}; run scripts/setup", path.display());
    path
}

/// A random YouTube-shaped id with `prefix`, so tests sharing a Redis never
/// share a key.
pub fn yt_id(prefix: &str) -> String {
    let alphabet: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_".chars().collect();
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut id = prefix.to_owned();
    while id.len() < 11 {
        id.push(alphabet[(n % alphabet.len() as u128) as usize]);
        n /= alphabet.len() as u128;
    }
    id
}

pub struct TestApp {
    pub base: String,

    /// Does not follow redirects, so tests see the 302s.
    pub http: reqwest::Client,
    pub origin: Origin,
    pub fake: FakeExtractor,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Options for [`spawn`]; the defaults are an in-memory app with the
/// stand-in extractor and private networks allowed.
#[derive(Default)]
pub struct Spawn {
    args: Vec<String>,
    delay_ms: u64,
    version_delay_ms: u64,
    sabr_build: bool,
    ytdlp: Option<PathBuf>,
    origin: Option<Origin>,
}

impl Spawn {
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(name.to_owned());
        self.args.push(value.to_string());
        self
    }

    pub fn redis(self, url: &str) -> Self {
        self.arg("--cache-backend", "redis").arg("--redis-url", url)
    }

    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// The stand-in's `--version` takes `ms` (yt-dlp slow to start).
    pub fn version_delay_ms(mut self, ms: u64) -> Self {
        self.version_delay_ms = ms;
        self
    }

    /// The stand-in says it is yt-dlp's SABR build (protobug in its header).
    pub fn sabr_build(mut self) -> Self {
        self.sabr_build = true;
        self
    }

    pub fn ytdlp(mut self, path: impl Into<PathBuf>) -> Self {
        self.ytdlp = Some(path.into());
        self
    }

    /// Shares an origin (its base URL) with another app.
    pub fn origin(mut self, origin: &Origin) -> Self {
        self.origin = Some(Origin { base: origin.base.clone(), seen: origin.seen.clone(), sent: origin.sent.clone() });
        self
    }

    pub async fn start(self) -> TestApp {
        let origin = match self.origin {
            Some(o) => o,
            None => spawn_origin().await,
        };
        let fake = FakeExtractor::build(&origin.base, self.delay_ms, self.version_delay_ms, self.sabr_build);
        let ytdlp = self.ytdlp.unwrap_or_else(|| fake.path.clone());
        let mut args: Vec<String> = [
            "reelay",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--allow-private-networks",
            "true",
            "--shutdown-grace",
            "2",
        ]
        .map(String::from)
        .to_vec();
        args.extend(["--upstream-resolve".to_owned(), format!("{GOOGLEVIDEO_HOST}=127.0.0.1")]);
        args.extend(["--ytdlp-path".to_owned(), ytdlp.display().to_string()]);
        if !self.args.iter().any(|a| a == "--cache-backend") {
            args.extend(["--cache-backend".to_owned(), "memory".to_owned()]);
        }
        args.extend(self.args);
        let config = Config::from_args(args).expect("test config parses");
        let app = App::build(config).await.expect("app builds");
        let port = app.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
        TestApp { base: format!("http://127.0.0.1:{port}"), http, origin, fake, stop: Some(tx) }
    }
}

pub fn spawn() -> Spawn {
    Spawn::default()
}

pub async fn spawn_app() -> TestApp {
    spawn().start().await
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// A GET that follows reelay's `307`s to a request's canonical form
    /// (stream and manifest routes by `?url=`), as players do.
    pub async fn follow(&self, path: &str) -> reqwest::Response {
        let mut resp = self.get(path).await;
        for _ in 0..3 {
            if resp.status() != StatusCode::TEMPORARY_REDIRECT {
                break;
            }
            let to = resp.headers()["location"].to_str().unwrap().to_owned();
            resp = self.get(&to).await;
        }
        resp
    }

    /// Status and JSON body of a GET (after any `307` to its canonical form).
    pub async fn json(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.follow(path).await;
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&body)));
        (status, value)
    }

    /// Waits until `/health` reports the given status (the readings are
    /// refreshed in the background).
    pub async fn health_until(&self, want: &str) -> (StatusCode, Value) {
        for _ in 0..100 {
            let (status, body) = self.json("/health").await;
            if body["status"] == want
                && body["services"]["yt-dlp"] != "checking"
                && body["services"]["redis"] != "connecting"
            {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("health never became {want}: {:?}", self.json("/health").await);
    }

    pub async fn metrics(&self) -> Value {
        self.json("/api/v2/stream/metrics").await.1["data"].clone()
    }

    /// The sum of the samples of `name` whose labels include every one of
    /// `labels` (`[("version", "2099.3.1")]`), 0 when there are none.
    pub async fn prom_with(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        parse_prometheus(&text)
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .filter(|(series, _)| labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\""))))
            .map(|(_, v)| v)
            .sum()
    }

    /// One sample of `/metrics` (0 when absent), e.g. `reelay_relay_merges_total`.
    pub async fn prom(&self, series: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        parse_prometheus(&text).get(series).copied().unwrap_or(0.0)
    }
}

/// Parses Prometheus text: every sample line is `name{labels} value`.
pub fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP") | Some(&"TYPE")), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(series[..name_end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name: {line}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// Asserts the API's JSON error shape and returns the body.
pub fn assert_error_shape(status: StatusCode, body: &Value) {
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(body["code"], status.canonical_reason().unwrap(), "{body}");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    assert!(body["request_id"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
}

/// A Redis server of the test's own, to kill.
pub struct OwnRedis {
    pub child: std::process::Child,
    pub url: String,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port).await
    }

    /// A Redis on `port` (to bring one back where a killed one was).
    pub async fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/setup --test)");
        let own = OwnRedis { child, url: format!("redis://127.0.0.1:{port}/0") };
        for _ in 0..50 {
            if redis::Client::open(own.url.as_str()).unwrap().get_multiplexed_async_connection().await.is_ok() {
                return own;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary with a stand-in extractor, its logs in a file.
/// The binary [`Binary`] starts: `REELAY_TEST_BIN` when set (`.ci/run`
/// sets it to the shipped build, `scripts/build`'s, for `shipped::`),
/// else the one cargo built for these tests.
pub fn binary_under_test() -> PathBuf {
    std::env::var_os("REELAY_TEST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reelay")), PathBuf::from)
}

pub struct Binary {
    pub child: std::process::Child,
    pub base: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    pub async fn start(fake: &FakeExtractor, extra: &[&str]) -> Binary {
        Binary::start_with_env(fake, extra, &[]).await
    }

    /// Like `start`, with these environment variables set.
    pub async fn start_with_env(fake: &FakeExtractor, extra: &[&str], env: &[(&str, &str)]) -> Binary {
        Binary::start_ytdlp(&fake.path, extra, env).await
    }

    /// The real binary with `ytdlp` as its extractor.
    pub async fn start_ytdlp(ytdlp: &Path, extra: &[&str], env: &[(&str, &str)]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("reelay.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(binary_under_test())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--allow-private-networks", "true"])
            .arg("--ytdlp-path")
            .arg(ytdlp)
            .args(extra)
            .env_remove("REDIS_HOST")
            .env_remove("REDIS_URL")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(format!("{base}/health")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Binary { child, base, log, _dir: dir }
    }

    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/browser/<script>` (Debian's Chromium through
/// playwright-core) with `config` as its one argument and returns the JSON
/// report it prints, after checking it ran and reported no failure.
pub async fn browser_report(script: &str, config: &Value) -> Value {
    let dir = PathBuf::from(MANIFEST_DIR).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "chromium and playwright-core are missing; run scripts/setup --test"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .arg(config.to_string())
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs (scripts/setup --test installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{script}: not JSON: {} {stderr}", String::from_utf8_lossy(&out.stdout)));
    assert!(report["failure"].is_null(), "{script}: {report:#}");
    report
}
