//! Two instances behind nginx, configured by `deploy/nginx.conf` (the
//! compose file's `cluster` profile): they share extractions through Redis,
//! and every request about one video reaches one instance, so its viewers
//! share one store and one fetch from the origin.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

/// A balancer or edge (nginx or HAProxy) the tests started, stopped when
/// dropped.
pub struct Balancer {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    /// SIGTERM first: nginx's master then stops its workers, which a
    /// SIGKILLed master leaves running (the suite left five behind a run).
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGTERM).is_ok() {
            for _ in 0..100 {
                if self.child.try_wait().is_ok_and(|s| s.is_some()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(names: &[&str], what: &str) -> PathBuf {
    names
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{what} must be installed (scripts/setup --test)"))
}

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn host(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// nginx with `conf` (a project config, its `listen` and upstream servers
/// already replaced; `{port}` and `{dir}` are filled here), waiting until
/// `/health` answers through it.
pub async fn nginx(conf: &str, checks: &[&str]) -> Balancer {
    for needed in checks {
        assert!(conf.contains(needed), "the config changed shape: {needed}");
    }
    let dir = tempfile::tempdir().unwrap();
    // nginx's workers run as nobody: they must reach the folder, and write
    // the cache an edge keeps in it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(dir.path().join("cache")).unwrap();
    std::fs::set_permissions(dir.path().join("cache"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = dir.path().display().to_string();
    let root = dir.path().to_path_buf();
    let start = |port: u16| {
        let conf = conf
            .replace("{port}", &port.to_string())
            .replace("{dir}", &d)
            .replace("worker_processes auto;", "worker_processes 1;")
            .replace(
                "http {",
                &format!(
                    "http {{\n    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;"
                ),
            );
        let path = root.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        Command::new(installed(&["/usr/sbin/nginx", "/usr/bin/nginx"], "nginx"))
            .arg("-c")
            .arg(&path)
            .args(["-e", &format!("{d}/error.log"), "-g", &format!("daemon off; pid {d}/nginx.pid;")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    up(dir, "error.log", start).await
}

/// Starts a balancer on a spare port (`start` writes its config for that
/// port and spawns it) and waits until `/health` answers through it. A port
/// found spare can be taken by another test before the balancer binds it:
/// the balancer then exits, and is started again on another port. The wait
/// is long because a loaded machine (the whole suite on two cores) can be
/// slow to answer a balancer's first health checks.
async fn up(dir: tempfile::TempDir, log: &str, start: impl Fn(u16) -> Child) -> Balancer {
    let log_text = || std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
    for _ in 0..5 {
        let port = spare_port();
        let mut child = start(port);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).no_proxy().build().unwrap();
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Balancer { child, base, _dir: dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the balancer did not answer within 60 s: {}", log_text());
        }
    }
    panic!("the balancer exited five times: {}", log_text());
}

/// nginx with the project's load-balancer configuration, pointed at `a`
/// and `b`.
async fn balancer(a: &TestApp, b: &TestApp) -> Balancer {
    let conf = std::fs::read_to_string(format!("{MANIFEST_DIR}/deploy/nginx.conf")).unwrap();
    let conf = conf
        .replace("server reelay1:8001;", &format!("server {};", host(a)))
        .replace("server reelay2:8001;", &format!("server {};", host(b)))
        .replace("listen 8080;", "listen 127.0.0.1:{port};");
    nginx(&conf, &["hash $reelay_video consistent", "127.0.0.1:{port}"]).await
}

/// HAProxy with the README's configuration (deploy/haproxy.cfg), pointed
/// at `a` and `b`.
async fn haproxy(a: &TestApp, b: &TestApp) -> Balancer {
    // HAProxy marks a server down on its first failed check of `/ready`, as
    // it should an instance still starting (its yt-dlp not checked yet):
    // started once both instances are ready, as a deployment's balancer
    // would find them, so no request of the test is routed around one.
    for app in [a, b] {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut ready = false;
        while !ready && std::time::Instant::now() < deadline {
            ready = reqwest::get(format!("{}/ready", app.base)).await.is_ok_and(|r| r.status().is_success());
            if !ready {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(ready, "{} never became ready", app.base);
    }
    let conf = std::fs::read_to_string(format!("{MANIFEST_DIR}/deploy/haproxy.cfg")).unwrap();
    let conf = conf.replace("reelay1:8001", &host(a)).replace("reelay2:8001", &host(b));
    for needed in ["balance hdr(X-Reelay-Route)", "hash-type consistent", "bind :8080"] {
        assert!(conf.contains(needed), "deploy/haproxy.cfg changed shape: {needed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    let log = dir.path().join("haproxy.log");
    let start = |port: u16| {
        std::fs::write(&path, conf.replace("bind :8080", &format!("bind 127.0.0.1:{port}"))).unwrap();
        Command::new(installed(&["/usr/sbin/haproxy", "/usr/bin/haproxy"], "haproxy"))
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let lb = up(dir, "haproxy.log", start).await;
    checks_settled(&log).await;
    lb
}

/// Waits out HAProxy's first health checks. It marks a server down on its
/// first failed check (one that timed out on a loaded machine, say) and up
/// again only after two good ones, 4 s later: routing meanwhile sends every
/// request to the other instance. Its stderr names each change of state.
async fn checks_settled(log: &std::path::Path) {
    let state = |text: &str, server: &str| {
        let marker = format!("Server instances/{server} is ");
        text.lines().rev().find_map(|l| l.split_once(&marker).map(|(_, rest)| rest.starts_with("UP")))
    };
    tokio::time::sleep(Duration::from_millis(2500)).await; // one check interval (2 s) and a margin
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let down: Vec<&str> = ["reelay1", "reelay2"].into_iter().filter(|s| state(&text, s) == Some(false)).collect();
        if down.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("haproxy kept {down:?} down: {text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two instances sharing one origin, one Redis and one signing key, behind
/// nginx.
struct Cluster {
    origin: Origin,
    a: TestApp,
    b: TestApp,
    lb: Balancer,
    _redis: OwnRedis,
}

async fn cluster() -> Cluster {
    let origin = spawn_origin().await;
    let redis = OwnRedis::start().await;
    let instance = || spawn().origin(&origin).redis(&redis.url).arg("--url-signing-key", "shared");
    let (a, b) = (instance().start().await, instance().start().await);
    let lb = balancer(&a, &b).await;
    Cluster { origin, a, b, lb, _redis: redis }
}

#[tokio::test]
async fn two_instances_behind_nginx_share_extractions_and_keep_a_video_on_one_store() {
    let Cluster { origin, a, b, lb, _redis } = cluster().await;
    let http = reqwest::Client::new();
    let runs = || a.fake.runs() + b.fake.runs();

    // Extractions are shared: one per video, whichever instance asks.
    let id = yt_id("qshare");
    for app in [&a, &b] {
        assert_eq!(app.get(&format!("/api/v2/videos/youtube/{id}")).await.status(), 200);
    }
    assert_eq!(runs(), 1);

    // Five viewers through the balancer, by id and by link: one instance, one fetch.
    let urls = [
        format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", lb.base),
        format!("{}/api/v2/stream/youtube/{id}?quality=360p&mode=proxy", lb.base),
        format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", lb.base),
        format!("{}/api/v2/stream/proxy/youtube/{id}?quality=sd", lb.base),
        format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", lb.base),
    ];
    for url in &urls {
        let resp = http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.bytes().await.unwrap().len() as u64, RAND_LEN);
    }
    assert_eq!(origin.sent("/q/ranged/rand64.bin"), RAND_LEN, "the origin sent the file once");
    let fetched = [a.prom("reelay_relay_origin_bytes_total").await, b.prom("reelay_relay_origin_bytes_total").await];
    assert!(fetched.contains(&0.0) && fetched.contains(&(RAND_LEN as f64)), "one store fetched it: {fetched:?}");
    assert_eq!(runs(), 1);

    // Other videos spread over both instances; each is extracted once.
    let ids: Vec<String> = (0..12).map(|_| yt_id("spread")).collect();
    for id in &ids {
        for _ in 0..2 {
            let resp = http.get(format!("{}/api/v2/videos/youtube/{id}", lb.base)).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    assert_eq!(runs(), 1 + ids.len());
    let (ra, rb) = (a.fake.runs(), b.fake.runs());
    assert!(ra > 0 && rb > 0, "both instances serve some videos ({ra} and {rb} extractions)");

    // An HLS stream: its playlists and segments stay on one instance too.
    let hls = |app: &TestApp| {
        let app = app.base.clone();
        async move {
            let text = reqwest::get(format!("{app}/metrics")).await.unwrap().text().await.unwrap();
            parse_prometheus(&text)
                .iter()
                .filter(|(k, _)| k.starts_with("reelay_http_requests_total{route=\"/api/v2/stream/hls/"))
                .map(|(_, v)| *v)
                .sum::<f64>()
        }
    };
    let master = http.get(format!("{}/api/v2/stream/proxy/twitch/987654", lb.base)).send().await.unwrap();
    let master = master.text().await.unwrap();
    let variant = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap();
    assert!(variant.ends_with("?v=twitch/987654"), "{variant}");
    let media_pl = http.get(format!("{}{variant}", lb.base)).send().await.unwrap().text().await.unwrap();
    for seg in media_pl.lines().filter(|l| l.starts_with("/api/v2/stream/hls/")) {
        assert_eq!(http.get(format!("{}{seg}", lb.base)).send().await.unwrap().status(), 200);
    }
    let counts = [hls(&a).await, hls(&b).await];
    assert!(
        counts.contains(&0.0) && counts.iter().sum::<f64>() >= 4.0,
        "one instance served the HLS links: {counts:?}"
    );

    // A live stream: its master, variants and segments reach the instance
    // whose poller holds the session.
    let live = |app: &TestApp| {
        let app = app.base.clone();
        async move {
            let text = reqwest::get(format!("{app}/metrics")).await.unwrap().text().await.unwrap();
            parse_prometheus(&text)
                .get("reelay_live_playlist_fetches_total{outcome=\"changed\"}")
                .copied()
                .unwrap_or(0.0)
        }
    };
    let master = http.get(format!("{}/api/v2/stream/manifest/twitch/clusterlive/master.m3u8", lb.base)).send().await;
    let master = master.unwrap().text().await.unwrap();
    let variant = master.lines().find(|l| l.starts_with("/api/v2/stream/live/")).unwrap();
    assert!(variant.ends_with("?v=twitch/clusterlive"), "{variant}");
    let media_pl = http.get(format!("{}{variant}", lb.base)).send().await.unwrap().text().await.unwrap();
    for seg in media_pl.lines().filter(|l| l.starts_with("/api/v2/stream/live/")).take(2) {
        assert_eq!(http.get(format!("{}{seg}", lb.base)).send().await.unwrap().status(), 200, "{seg}");
    }
    let polled = [live(&a).await, live(&b).await];
    assert!(polled.contains(&0.0) && polled.iter().sum::<f64>() >= 1.0, "one instance polls the stream: {polled:?}");
}

/// A manifest, its media playlists and its parts (and the video's
/// subtitles) all reach the instance its video hashes to, so players of one
/// video share one store.
#[tokio::test]
async fn manifests_their_parts_and_subtitles_stay_on_one_instance() {
    let Cluster { origin: _origin, a, b, lb, _redis } = cluster().await;
    let http = reqwest::Client::new();
    let served = |app: &TestApp| {
        let app = app.base.clone();
        async move {
            let text = reqwest::get(format!("{app}/metrics")).await.unwrap().text().await.unwrap();
            parse_prometheus(&text)
                .iter()
                .filter(|(k, _)| {
                    ["/api/v2/stream/manifest/", "/api/v2/stream/media/", "/api/v2/subtitles/"]
                        .iter()
                        .any(|r| k.starts_with(&format!("reelay_http_requests_total{{route=\"{r}")))
                })
                .map(|(_, v)| *v)
                .sum::<f64>()
        }
    };
    // Videos until both instances have had some (hashing is by video).
    for n in 0..40 {
        if n >= 4 && served(&a).await > 0.0 && served(&b).await > 0.0 {
            break;
        }
        let id = yt_id("dubs");
        let (before_a, before_b) = (served(&a).await, served(&b).await);
        let master =
            http.get(format!("{}/api/v2/stream/manifest/youtube/{id}/master.m3u8", lb.base)).send().await.unwrap();
        assert_eq!(master.status(), 200);
        let master = master.text().await.unwrap();
        let mut links: Vec<String> = master
            .lines()
            .filter_map(|l| {
                if l.starts_with('/') {
                    Some(l.to_owned())
                } else {
                    l.split("URI=\"").nth(1).map(|u| u.split('"').next().unwrap().to_owned())
                }
            })
            .collect();
        assert!(links.len() >= 2, "{master}");
        let media = http.get(format!("{}{}", lb.base, links[0])).send().await.unwrap().text().await.unwrap();
        links.extend(media.lines().filter(|l| l.starts_with('/')).take(2).map(str::to_owned));
        links.push(format!("/api/v2/subtitles/youtube/{id}?lang=en"));
        for link in &links {
            let resp = http.get(format!("{}{link}", lb.base)).header("range", "bytes=0-99").send().await.unwrap();
            assert!(resp.status().is_success(), "{link}: {}", resp.status());
        }
        let (da, db) = (served(&a).await - before_a, served(&b).await - before_b);
        assert!(da == 0.0 || db == 0.0, "one instance served all of video {id}: {da} and {db}");
        assert!(da + db >= links.len() as f64 + 1.0);
    }
    assert!(served(&a).await > 0.0 && served(&b).await > 0.0, "the videos spread over both instances");
}

/// Requests by link (`?url=`) reach the instance their video hashes to,
/// behind the shipped nginx and behind HAProxy with the README's config:
/// reelay answers them with a `307` to their canonical form, whose routing
/// key is the `v=` of every part they lead to. Several videos of each kind,
/// so that a split cannot pass by luck.
#[tokio::test]
async fn links_by_url_stay_on_one_instance_behind_nginx_and_haproxy() {
    let origin = spawn_origin().await;
    let redis = OwnRedis::start().await;
    let instance = || spawn().origin(&origin).redis(&redis.url).arg("--url-signing-key", "shared");
    let (a, b) = (instance().start().await, instance().start().await);
    let http = reqwest::Client::new();
    // Requests each instance answered on `routes` so far.
    let counts = |routes: &'static [&'static str]| {
        let (a, b) = (a.base.clone(), b.base.clone());
        async move {
            let mut out = [0.0; 2];
            for (i, app) in [a, b].iter().enumerate() {
                let text = reqwest::get(format!("{app}/metrics")).await.unwrap().text().await.unwrap();
                out[i] = parse_prometheus(&text)
                    .iter()
                    .filter(|(k, _)| {
                        routes.iter().any(|r| k.starts_with(&format!("reelay_http_requests_total{{route=\"{r}\"")))
                    })
                    .map(|(_, v)| *v)
                    .sum::<f64>();
            }
            out
        }
    };
    let one_instance = |before: [f64; 2], after: [f64; 2], least: f64, what: &str| {
        let (da, db) = (after[0] - before[0], after[1] - before[1]);
        assert!(da == 0.0 || db == 0.0, "{what}: split over both instances ({da} and {db})");
        assert!(da + db >= least, "{what}: {da} + {db}");
        usize::from(da == 0.0)
    };
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    const MANIFEST: &[&str] =
        &["/api/v2/stream/manifest/{platform}/{video_id}/master.m3u8", "/api/v2/stream/media/{token}/{name}"];
    const HLS: &[&str] = &["/api/v2/stream/proxy", "/api/v2/stream/hls/{token}/{name}"];
    for (which, lb) in [("nginx", balancer(&a, &b).await), ("haproxy", haproxy(&a, &b).await)] {
        let mut used = [0usize; 2];
        for n in 0..5 {
            // A live channel pasted as its link: moved to its path, and its
            // segments (which only the instance polling it has) play.
            let channel = format!("urllive{which}{n}");
            let url = format!("{}/api/v2/stream/proxy?url=https://www.twitch.tv/{channel}", lb.base);
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{which}: {url}");
            assert!(resp.url().path().ends_with(&format!("/proxy/twitch/{channel}")), "moved to {}", resp.url());
            let playlist = resp.text().await.unwrap();
            let segs: Vec<&str> = playlist.lines().filter(|l| l.starts_with("/api/v2/stream/live/")).collect();
            assert!(!segs.is_empty(), "{playlist}");
            assert!(segs[0].ends_with(&format!("?v=twitch/{channel}")), "{}", segs[0]);
            for seg in segs.iter().take(2) {
                assert_eq!(http.get(format!("{}{seg}", lb.base)).send().await.unwrap().status(), 200, "{which}: {seg}");
            }

            // A YouTube video by its link: the manifest and its parts on one instance.
            let before = counts(MANIFEST).await;
            let id = yt_id("dashu");
            let link = enc(&format!("https://www.youtube.com/watch?v={id}"));
            let master = http.get(format!("{}/api/v2/stream/manifest/master.m3u8?url={link}", lb.base)).send();
            let master = master.await.unwrap();
            assert_eq!(master.status(), 200);
            assert_eq!(master.url().path(), format!("/api/v2/stream/manifest/youtube/{id}/master.m3u8"));
            let master = master.text().await.unwrap();
            let media: Vec<&str> = master.lines().filter(|l| l.starts_with("/api/v2/stream/media/")).collect();
            assert!(media[0].ends_with(&format!("?v=youtube/{id}")), "{}", media[0]);
            for m in &media {
                assert_eq!(http.get(format!("{}{m}", lb.base)).send().await.unwrap().status(), 200);
            }
            used[one_instance(before, counts(MANIFEST).await, 1.0 + media.len() as f64, which)] += 1;

            // Another site's HLS by its link, as a user pastes it: moved to
            // the spelling its parts carry, and they follow it.
            let page = format!("{}/media/hls/master.m3u8?n={which}{n}", origin.base);
            let resp = http.get(format!("{}/api/v2/stream/proxy?url={page}", lb.base)).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{page}");
            assert_eq!(resp.url().query(), Some(format!("url={}", enc(&page)).as_str()), "the canonical spelling");
            let before = counts(HLS).await;
            let canonical = resp.url().to_string();
            let playlist = http.get(&canonical).send().await.unwrap().text().await.unwrap();
            let links: Vec<&str> = playlist.lines().filter(|l| l.starts_with("/api/v2/stream/hls/")).collect();
            assert!(links[0].ends_with(&format!("?v={}", enc(&page))), "{}", links[0]);
            for l in links.iter().take(2) {
                assert!(http.get(format!("{}{l}", lb.base)).send().await.unwrap().status().is_success(), "{l}");
            }
            used[one_instance(before, counts(HLS).await, 2.0, which)] += 1;
        }
        assert!(used[0] > 0 && used[1] > 0, "{which}: the videos spread over both instances: {used:?}");
    }
}
