//! Two instances behind nginx, configured by `deploy/nginx.conf` (the
//! compose file's `cluster` profile): they share extractions through Redis,
//! and every request about one video reaches one instance, so its viewers
//! share one store and one fetch from the origin.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

/// nginx with the project's load-balancer configuration, pointed at `a`
/// and `b`.
struct Balancer {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx must be installed (scripts/setup --test)")
}

async fn balancer(a: &TestApp, b: &TestApp) -> Balancer {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = std::fs::read_to_string(format!("{MANIFEST_DIR}/deploy/nginx.conf")).unwrap();
    let host = |app: &TestApp| app.base.trim_start_matches("http://").to_owned();
    let conf = conf
        .replace("server reelay1:8001;", &format!("server {};", host(a)))
        .replace("server reelay2:8001;", &format!("server {};", host(b)))
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
        .replace("worker_processes auto;", "worker_processes 1;");
    for needed in ["hash $reelay_video consistent", "127.0.0.1"] {
        assert!(conf.contains(needed), "deploy/nginx.conf changed shape: {needed}");
    }
    let d = dir.path().display();
    let conf = conf.replace(
        "http {",
        &format!(
            "http {{\n    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;"
        ),
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx())
        .arg("-c")
        .arg(&path)
        .args(["-e", &format!("{d}/error.log"), "-g", &format!("daemon off; pid {d}/nginx.pid;")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lb = Balancer { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
    for _ in 0..100 {
        if reqwest::get(format!("{}/health", lb.base)).await.is_ok_and(|r| r.status().is_success()) {
            return lb;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not start: {}", std::fs::read_to_string(lb._dir.path().join("error.log")).unwrap_or_default());
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
