//! Egress (`EGRESS_PROXIES`, `EGRESS_SOURCE_CIDR`): each extraction leaves
//! through a proxy in turn or from an address of a block, and every fetch of
//! that video's URLs leaves the same way, proved with logging proxies
//! (tests/api/proxies.rs) and an origin that records client addresses.

use std::collections::HashSet;

use crate::helpers::*;
use crate::proxies::Proxy;

/// The argument after `flag` in an extraction's arguments.
fn arg_after<'a>(call: &'a [String], flag: &str) -> Option<&'a str> {
    call.iter().position(|a| a == flag).and_then(|i| call.get(i + 1)).map(String::as_str)
}

/// The client addresses the origin saw for requests naming `needle`.
fn peers(origin: &Origin, needle: &str) -> HashSet<String> {
    let seen = origin.seen.lock().unwrap();
    seen.iter()
        .filter(|(p, _)| p.contains(needle))
        .filter_map(|(_, h)| h.get(PEER).map(|v| v.to_str().unwrap().to_owned()))
        .collect()
}

async fn body_of(app: &TestApp, path: &str) -> Vec<u8> {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

/// Two proxies in turn; each video's bytes (relay ranges, thumbnail, the
/// merge's ffmpeg inputs) go through the proxy its extraction used, with
/// the proxy's credentials and never to the origin; a second instance
/// sharing Redis follows the stored route without extracting.
#[tokio::test]
async fn each_videos_fetches_leave_through_its_extractions_proxy() {
    let (p1, p2) = (Proxy::http().await, Proxy::http().await);
    let proxies = format!("{},{}", p1.url("http", Some(("operator", "pa%40ss"))), p2.url("http", None));
    let redis = redis_url();
    let app = spawn().arg("--egress-proxies", &proxies).redis(&redis).start().await;
    let (a, b) = (yt_id("egressa"), yt_id("egressb"));
    for id in [&a, &b] {
        let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let calls = app.fake.calls();
    assert_eq!(arg_after(&calls[0], "--proxy"), Some(p1.url("http", Some(("operator", "pa%40ss"))).as_str()));
    assert_eq!(arg_after(&calls[1], "--proxy"), Some(p2.url("http", None).as_str()));

    assert_eq!(body_of(&app, &format!("/api/v2/stream/proxy/youtube/{a}?quality=360p")).await, media("clip.mp4"));
    assert_eq!(body_of(&app, &format!("/api/v2/thumbnail/youtube/{a}")).await, media("thumb.jpg"));
    let merged = body_of(&app, &format!("/api/v2/stream/proxy/youtube/{a}?quality=720p")).await;
    assert!(merged.len() > 10_000, "a merged MP4 came back");
    assert_eq!(body_of(&app, &format!("/api/v2/stream/proxy/youtube/{b}?quality=360p")).await, media("clip.mp4"));

    for file in ["clip.mp4?expire", "v720.mp4?expire", "a.m4a?expire"] {
        let mine = p1.passed().iter().filter(|p| p.target.contains(file) && p.target.contains(&a)).count();
        assert!(mine > 0, "{file} of the first video went through its proxy: {:?}", p1.passed());
    }
    assert_eq!(p2.saw(&a), 0, "none of the first video's bytes went through the other proxy");
    assert!(p1.saw("thumb.jpg") > 0 && p2.saw("thumb.jpg") == 0, "the thumbnail went through the first proxy");

    // HLS: the third extraction is the first proxy's again; the playlists
    // and the segments behind the signed links go through it.
    let master = String::from_utf8(body_of(&app, "/api/v2/stream/proxy/twitch/24680").await).unwrap();
    assert_eq!(arg_after(&app.fake.calls()[2], "--proxy"), arg_after(&calls[0], "--proxy"));
    let variant = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).expect("a rewritten variant");
    let media_pl = String::from_utf8(body_of(&app, variant).await).unwrap();
    let segment = media_pl.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).expect("a segment link");
    assert_eq!(body_of(&app, segment).await, media("hls/v0/seg0.m4s"));
    for part in ["hls/master.m3u8", "hls/v0/", "seg0.m4s"] {
        assert!(p1.saw(part) > 0 && p2.saw(part) == 0, "{part} went through the first proxy");
    }
    assert!(p2.saw(&b) > 0 && p1.saw(&b) == 0, "the second video's bytes went through the second proxy");
    let basic = format!("Basic {}", base64_of("operator:pa@ss"));
    assert!(p1.passed().iter().all(|p| p.auth.as_deref() == Some(basic.as_str())), "{:?}", p1.passed());
    let origin = app.origin.seen.lock().unwrap().clone();
    assert!(
        origin.iter().all(|(_, h)| h.get("proxy-authorization").is_none()),
        "no proxy credentials reach the origin"
    );

    // Another instance with the same proxies, sharing Redis: the stored
    // route sends its fetches through the same proxy, and nothing is extracted.
    let other = spawn().arg("--egress-proxies", &proxies).redis(&redis).origin(&app.origin).start().await;
    let before = p2.saw(&b);
    assert_eq!(body_of(&other, &format!("/api/v2/stream/proxy/youtube/{b}?quality=360p")).await, media("clip.mp4"));
    assert_eq!(other.fake.runs(), 0, "the route came from Redis with the info");
    assert!(p2.saw(&b) > before, "its own fetches went through the stored route's proxy");
    assert_eq!(p1.saw(&b), 0, "still never through the first proxy");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A proxy the platform answers with a bot check cools down and the
/// extraction is retried once on the next; with every proxy cooling down
/// the API says so with a `Retry-After`, without running yt-dlp.
#[tokio::test]
async fn a_bot_check_cools_the_proxy_and_the_next_one_answers() {
    let (p1, p2) = (Proxy::http().await, Proxy::http().await);
    let flagged = p1.url("http", Some(("blocked", "hunter2secret")));
    let app = spawn().arg("--egress-proxies", format!("{flagged},{}", p2.url("http", None))).start().await;
    let first = yt_id("cooling");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{first}")).await;
    assert_eq!(status, 200, "retried on the second proxy: {body}");
    let second = yt_id("cooling");
    let (status, _) = app.json(&format!("/api/v2/videos/youtube/{second}")).await;
    assert_eq!(status, 200);
    let proxies: Vec<_> = app.fake.calls().iter().map(|c| arg_after(c, "--proxy").unwrap().to_owned()).collect();
    assert_eq!(proxies, [flagged.clone(), p2.url("http", None), p2.url("http", None)], "the flagged proxy rests");
    let series = format!("reelay_egress_refusals_total{{egress=\"{}\",reason=\"bot_check\"}}", p1.label());
    assert_eq!(app.prom(&series).await, 1.0);
    assert_eq!(app.prom("reelay_extractions_total{outcome=\"ok\"}").await, 2.0);

    // HTTP 429 counts the same: both proxies tried, both rest.
    let (r1, r2) = (Proxy::http().await, Proxy::http().await);
    let app429 =
        spawn().arg("--egress-proxies", format!("{},{}", r1.url("http", None), r2.url("http", None))).start().await;
    let resp = app429.get(&format!("/api/v2/videos/youtube/{}", yt_id("toomany"))).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    for r in [&r1, &r2] {
        let series = format!("reelay_egress_refusals_total{{egress=\"{}\",reason=\"bot_check\"}}", r.label());
        assert_eq!(app429.prom(&series).await, 1.0, "{series}");
    }
    assert_eq!(app429.get(&format!("/api/v2/videos/youtube/{}", yt_id("cooling"))).await.status(), 503, "both rest");
    assert_eq!(app429.fake.runs(), 2);

    // Every proxy flagged: the bot check, then "cooling down" with no run.
    let (q1, q2) = (Proxy::http().await, Proxy::http().await);
    let both = format!(
        "{},{}",
        q1.url("http", Some(("blocked", "hunter2secret"))),
        q2.url("http", Some(("blocked", "hunter2secret")))
    );
    let app = spawn().arg("--egress-proxies", both).arg("--egress-cooldown", 120).start().await;
    let resp = app.get(&format!("/api/v2/videos/youtube/{}", yt_id("cooling"))).await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Blocked by the platform", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not a bot"), "{body}");
    assert!(!body.to_string().contains("hunter2"), "no credentials in errors: {body}");
    assert_eq!(app.fake.runs(), 2, "tried once more on the other proxy");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{}", yt_id("cooling"))).await;
    assert_eq!(resp.status(), 503);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((100..=120).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error_shape(reqwest::StatusCode::SERVICE_UNAVAILABLE, &body);
    assert!(body["detail"].as_str().unwrap().contains("cooling down"), "{body}");
    assert_eq!(app.fake.runs(), 2, "nothing ran while every proxy rests");
    assert_eq!(app.prom("reelay_extractions_total{outcome=\"egress_cooling\"}").await, 1.0);
}

/// An https origin (as every googlevideo URL is) through HTTP proxies: a
/// `CONNECT` tunnel with the proxy's credentials, TLS to the origin inside
/// it; through an `https://` proxy, that tunnel inside TLS to the proxy (a
/// reelay process that trusts the test's CA).
#[tokio::test]
async fn https_origins_are_reached_through_a_connect_tunnel() {
    let ca = crate::proxies::TestCa::new().await;
    let origin = crate::proxies::tls_origin(&ca).await;
    let (plain, tls) = (Proxy::http().await, Proxy::https(&ca).await);
    let fake = FakeExtractor::new(&origin, 0);
    let proxies =
        format!("{},{}", plain.url("http", Some(("tunnel", "s3cret"))), tls.url("https", Some(("tunnel", "s3cret"))));
    let app =
        Binary::start_with_env(&fake, &["--egress-proxies", &proxies], &[("SSL_CERT_FILE", ca.ca.to_str().unwrap())])
            .await;
    let basic = format!("Basic {}", base64_of("tunnel:s3cret"));
    for proxy in [&plain, &tls] {
        let id = yt_id("tunnel");
        let resp = reqwest::get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base)).await.unwrap();
        assert_eq!(resp.status(), 200, "{}", app.logs());
        assert_eq!(resp.bytes().await.unwrap(), media("clip.mp4"));
        let tunnels = proxy.passed();
        assert!(!tunnels.is_empty(), "{}", app.logs());
        for t in &tunnels {
            assert_eq!(t.target, format!("CONNECT {}", origin.trim_start_matches("https://")), "{tunnels:?}");
            assert_eq!(t.auth.as_deref(), Some(basic.as_str()));
        }
    }
    assert!(!app.logs().contains("s3cret"), "no credentials in the logs");
}

/// Through a SOCKS5 proxy (names resolved by the proxy, `socks5h`), with a
/// user name: the relay's ranges tunnel through it.
#[tokio::test]
async fn socks5_proxies_carry_the_relay() {
    let socks = Proxy::socks5().await;
    let app = spawn().arg("--egress-proxies", socks.url("socks5h", Some(("reelay", "secret")))).start().await;
    let id = yt_id("socks");
    assert_eq!(body_of(&app, &format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await, media("clip.mp4"));
    let origin_port = app.origin.base.rsplit(':').next().unwrap().to_owned();
    let tunnels = socks.passed();
    assert!(!tunnels.is_empty() && tunnels.iter().all(|t| t.target.ends_with(&origin_port)), "{tunnels:?}");
    assert!(tunnels.iter().all(|t| t.auth.as_deref() == Some("reelay")), "{tunnels:?}");
}

/// `EGRESS_SOURCE_CIDR`: an extraction gets a random address of the block
/// (`--source-address`), and its video's fetches come from that address.
#[tokio::test]
async fn a_videos_fetches_come_from_the_address_its_extraction_used() {
    let app = spawn().arg("--egress-source-cidr", "127.0.0.0/8").start().await;
    let mut used = HashSet::new();
    for n in 0..2 {
        let id = yt_id("source");
        assert_eq!(body_of(&app, &format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await, media("clip.mp4"));
        let call = &app.fake.calls()[n];
        let address = arg_after(call, "--source-address").expect("yt-dlp was given a source address").to_owned();
        assert!(address.starts_with("127.") && address != "127.0.0.1", "{address}");
        assert_eq!(
            peers(&app.origin, &id),
            HashSet::from([address.clone()]),
            "every fetch of {id} came from {address}"
        );
        // The stand-in origin refuses the URL from any other address.
        let (_, info) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
        let formats = info["data"]["formats"].as_array().unwrap();
        let url = formats.iter().find(|f| f["format_id"] == "18").unwrap()["url"].as_str().unwrap().to_owned();
        assert!(url.contains(&format!("ip={address}")), "{url}");
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 403, "bound to {address}, fetched from 127.0.0.1");
        used.insert(address);
    }
    assert_eq!(used.len(), 2, "a new address per extraction");
}

/// Settings that cannot work stop start-up with a message naming them.
#[tokio::test]
async fn unusable_egress_settings_stop_start_up() {
    for (flag, value, words) in [
        ("--egress-source-cidr", "198.51.100.0/24", "cannot bind"),
        ("--egress-source-cidr", "not-a-block", "not a CIDR"),
        ("--egress-proxies", "ftp://user:hunter2@127.0.0.1:21", "scheme"),
    ] {
        let config = reelay::config::Config::from_args(["reelay", "--port", "0", flag, value]).unwrap();
        let err = reelay::app::App::build(config).await.err().expect("start-up refused").to_string();
        let var = if flag.contains("cidr") { "EGRESS_SOURCE_CIDR" } else { "EGRESS_PROXIES" };
        assert!(err.contains(var) && err.contains(words) && !err.contains("hunter2"), "{value}: {err}");
    }
}

/// The real yt-dlp, both extractor modes: a proxy nothing answers on cools
/// down and the next one carries the extraction (yt-dlp's own request) and
/// the relay's; with a source block, yt-dlp and the relay leave from the
/// same address.
#[tokio::test]
async fn the_real_ytdlp_leaves_the_same_way_as_the_relay() {
    for mode in ["process", "worker"] {
        let good = Proxy::http().await;
        let app = spawn()
            .ytdlp(real_ytdlp())
            .arg("--extractor", mode)
            .arg("--ytdlp-python", venv_python().display())
            .arg("--egress-proxies", format!("http://127.0.0.1:1,{}", good.url("http", None)))
            .start()
            .await;
        let media_url = format!("{}/media/clip.mp4?mode={mode}", app.origin.base);
        let path = format!("/api/v2/stream/proxy?url={}", urlencode(&media_url));
        assert_eq!(body_of(&app, &path).await, media("clip.mp4"), "{mode}");
        let through: Vec<_> = good.passed().into_iter().filter(|p| p.target.contains(&media_url)).collect();
        assert!(through.len() >= 2, "{mode}: yt-dlp's request and the relay's went through the proxy: {through:?}");
        let series = "reelay_egress_refusals_total{egress=\"127.0.0.1:1\",reason=\"unreachable\"}";
        assert_eq!(app.prom(series).await, 1.0, "{mode}");

        let app = spawn()
            .ytdlp(real_ytdlp())
            .arg("--extractor", mode)
            .arg("--ytdlp-python", venv_python().display())
            .arg("--egress-source-cidr", "127.0.0.0/8")
            .start()
            .await;
        let media_url = format!("{}/media/clip.mp4?source={mode}", app.origin.base);
        let path = format!("/api/v2/stream/proxy?url={}", urlencode(&media_url));
        assert_eq!(body_of(&app, &path).await, media("clip.mp4"), "{mode}");
        let from = peers(&app.origin, &format!("source={mode}"));
        let requests = app.origin.requests("/media/clip.mp4?source").len();
        assert!(requests >= 2, "{mode}: yt-dlp's request and the relay's: {requests}");
        assert_eq!(from.len(), 1, "{mode}: one address for yt-dlp and the relay: {from:?}");
        assert!(!from.contains("127.0.0.1"), "{mode}: {from:?}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
