//! The production edge: rate limits, client addresses, API keys, address
//! lists, CORS, size limits, load shedding, timeouts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// A random public-looking address, so tests sharing a Redis never share a budget.
fn random_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("198.51.{}.{}", (n % 250) as u8, ((n >> 8) % 250) as u8 + 1)
}

async fn get_as(app: &TestApp, path: &str, ip: &str) -> reqwest::Response {
    app.http.get(format!("{}{path}", app.base)).header("x-forwarded-for", ip).send().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers().get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap()
}

async fn rate_limit_applies(app: &TestApp, other: &TestApp) {
    let ip = random_ip();
    for (i, app) in [app, other, app].iter().enumerate() {
        let resp = get_as(app, "/api/v2/stream/metrics", &ip).await;
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(header(&resp, "ratelimit-limit"), "3");
        assert_eq!(header(&resp, "ratelimit-remaining"), (2 - i).to_string());
        assert!(header(&resp, "ratelimit-reset").parse::<u64>().unwrap() <= 60);
    }
    let resp = get_as(other, "/api/v2/stream/metrics", &ip).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(header(&resp, "ratelimit-remaining"), "0");
    let body: Value = resp.json().await.unwrap();
    assert_error_shape(StatusCode::TOO_MANY_REQUESTS, &body);
    // Another client has its own budget; health is never limited.
    assert_eq!(get_as(app, "/api/v2/stream/metrics", &random_ip()).await.status(), 200);
    for _ in 0..5 {
        assert_ne!(get_as(app, "/health", &ip).await.status(), 429);
    }
}

fn limited() -> Spawn {
    spawn().arg("--rate-limit-max-requests", 3).arg("--trusted-proxies", "127.0.0.1/32")
}

#[tokio::test]
async fn rate_limit_in_memory() {
    let app = limited().start().await;
    rate_limit_applies(&app, &app).await;
    let prom = app.get("/metrics").await.text().await.unwrap();
    assert!(prom.contains("reelay_rate_limited_total{limit=\"requests\"} 1"), "{prom}");
}

#[tokio::test]
async fn two_instances_on_one_redis_share_one_budget() {
    let url = redis_url();
    let a = limited().redis(&url).start().await;
    let b = limited().redis(&url).origin(&a.origin).start().await;
    rate_limit_applies(&a, &b).await;
}

#[tokio::test]
async fn the_limit_holds_when_redis_dies() {
    let mut redis = OwnRedis::start().await;
    let app = limited().redis(&redis.url).start().await;
    app.health_until("healthy").await;
    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    let ip = random_ip();
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(get_as(&app, "/api/v2/stream/metrics", &ip).await.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429], "the in-process limiter takes over");
}

#[tokio::test]
async fn extraction_budget_spends_only_on_misses() {
    let app = spawn().arg("--extract-rate-limit", 1).start().await;
    let id = yt_id("budget");
    assert_eq!(app.get(&format!("/api/v2/videos/youtube/{id}")).await.status(), 200);
    assert_eq!(app.get(&format!("/api/v2/videos/youtube/{id}")).await.status(), 200, "hits are free");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("budget"))).await;
    assert_eq!(status, 429, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(app.fake.runs(), 1);
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    // Untrusted peer: a spoofed X-Forwarded-For is ignored, so both requests are one client.
    let app = spawn().arg("--rate-limit-max-requests", 1).start().await;
    assert_eq!(get_as(&app, "/api/v2/stream/metrics", "203.0.113.1").await.status(), 200);
    assert_eq!(get_as(&app, "/api/v2/stream/metrics", "203.0.113.2").await.status(), 429);
    // Trusted peer: each forwarded address is its own client.
    let app = spawn().arg("--rate-limit-max-requests", 1).arg("--trusted-proxies", "127.0.0.0/8,::1").start().await;
    assert_eq!(get_as(&app, "/api/v2/stream/metrics", "203.0.113.1").await.status(), 200);
    assert_eq!(get_as(&app, "/api/v2/stream/metrics", "203.0.113.2").await.status(), 200);
    // And the address lists see the forwarded address.
    let app = spawn().arg("--trusted-proxies", "127.0.0.1").arg("--ip-denylist", "203.0.113.0/24").start().await;
    let resp = get_as(&app, "/api/v2/stream/metrics", "203.0.113.9").await;
    assert_eq!(resp.status(), 403);
    assert_eq!(get_as(&app, "/api/v2/stream/metrics", "192.0.2.1").await.status(), 200);
}

#[tokio::test]
async fn address_lists() {
    let app = spawn().arg("--ip-denylist", "127.0.0.1").start().await;
    let (status, body) = app.json("/api/v2/stream/metrics").await;
    assert_eq!(status, 403);
    assert_error_shape(status, &body);
    assert_eq!(app.get("/health").await.status(), 200, "health stays open to monitors");
    let app = spawn().arg("--ip-allowlist", "10.0.0.0/8, fd00::/8").start().await;
    assert_eq!(app.get("/api/v2/stream/metrics").await.status(), 403);
    let app = spawn().arg("--ip-allowlist", "127.0.0.0/8").start().await;
    assert_eq!(app.get("/api/v2/stream/metrics").await.status(), 200);
}

#[tokio::test]
async fn api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "# one per line\nfile-key\n").unwrap();
    let app = spawn().arg("--api-keys", "k-one,k-two").arg("--api-keys-file", file.display()).start().await;
    let id = yt_id("keys");
    let path = format!("/api/v2/videos/youtube/{id}");
    let (status, body) = app.json(&path).await;
    assert_eq!(status, 401);
    assert_error_shape(status, &body);
    let resp = app.http.get(format!("{}{path}", app.base)).header("x-api-key", "nope").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(!body.to_string().contains("nope"), "keys are not echoed");
    for req in [
        app.http.get(format!("{}{path}", app.base)).header("x-api-key", "k-one"),
        app.http.get(format!("{}{path}", app.base)).bearer_auth("k-two"),
        app.http.get(format!("{}{path}?api_key=file-key", app.base)),
    ] {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    assert_eq!(app.fake.runs(), 1, "refused requests never reached the extractor");
    // Open: health, Prometheus, docs; and the signed HLS links (their signature is the permission).
    for open in ["/health", "/api/v2/system/health", "/metrics", "/openapi.json", "/docs/"] {
        assert_eq!(app.get(open).await.status(), 200, "{open}");
    }
    let master = app.get("/api/v2/stream/proxy/twitch/77?api_key=k-one").await.text().await.unwrap();
    let link = master.lines().find(|l| l.starts_with("/api/v2/stream/hls/")).unwrap();
    assert_eq!(app.get(link).await.status(), 200);
    assert!(!master.contains("k-one"), "keys are not written into playlists");
}

#[tokio::test]
async fn cors_and_security_headers() {
    let app = spawn_app().await;
    let resp = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/v2/videos/youtube/dQw4w9WgXcQ", app.base))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-api-key,range")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert!(header(&resp, "access-control-allow-headers").to_ascii_lowercase().contains("x-api-key"));
    assert_eq!(app.fake.runs(), 0);
    // `*` answers every site alike: nothing for a shared cache to vary on.
    let get = app.http.get(format!("{}/health", app.base)).header("origin", "https://player.example").send().await;
    let get = get.unwrap();
    assert_eq!(header(&get, "access-control-allow-origin"), "*");
    assert!(get.headers().get("vary").is_none_or(|v| !v.to_str().unwrap().contains("origin")), "{:?}", get.headers());

    let app = spawn().arg("--cors-origins", "https://a.example, https://b.example").start().await;
    let allowed =
        app.http.get(format!("{}/health", app.base)).header("origin", "https://b.example").send().await.unwrap();
    assert_eq!(header(&allowed, "access-control-allow-origin"), "https://b.example");
    assert!(header(&allowed, "vary").contains("origin"), "a list answers per site");
    let other =
        app.http.get(format!("{}/health", app.base)).header("origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    for resp in [allowed, other, app.get("/nope").await] {
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(header(&resp, "x-frame-options"), "DENY");
        assert_eq!(header(&resp, "referrer-policy"), "no-referrer");
    }
}

#[tokio::test]
async fn oversize_requests_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.json(&format!("/api/v2/videos?url=https://example.com/{}", "a".repeat(9000))).await;
    assert_eq!(status, 414);
    assert_error_shape(status, &body);
    let resp = app.http.get(format!("{}/health", app.base)).header("x-big", "b".repeat(10_000)).send().await.unwrap();
    assert_eq!(resp.status(), 431);
    let body: Value = resp.json().await.unwrap();
    assert_error_shape(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &body);
    assert_eq!(app.fake.runs(), 0);
}

#[tokio::test]
async fn overload_is_shed_with_503() {
    let app = spawn().arg("--max-concurrent-requests", 1).start().await;
    let mut stream = app.get(&format!("/api/v2/stream/proxy/youtube/{}?quality=360p", yt_id("slowslowslo"))).await;
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.unwrap().is_some());
    let resp = app.get("/api/v2/stream/metrics").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "retry-after"), "1");
    let body: Value = resp.json().await.unwrap();
    assert_error_shape(StatusCode::SERVICE_UNAVAILABLE, &body);
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.get("/api/v2/stream/metrics").await.status(), 200);
}

#[tokio::test]
async fn slow_non_stream_requests_time_out() {
    let app = spawn().delay_ms(3000).arg("--request-timeout", 1).start().await;
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("slowinfo"))).await;
    assert_eq!(status, 504, "{body}");
    assert_error_shape(status, &body);
}
