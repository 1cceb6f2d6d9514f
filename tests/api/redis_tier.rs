//! The Redis tier: shared cache, cross-instance single-flight, and staying up
//! when Redis is not.

use std::process::Command;
use std::time::Duration;

use redis::AsyncCommands;

use crate::helpers::*;

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis must be running (scripts/test starts one)")
}

#[tokio::test]
async fn info_is_stored_in_redis_under_the_reference_key() {
    let url = redis_url();
    let app = spawn().redis(&url).start().await;
    let (_, health) = app.health_until("healthy").await;
    assert_eq!(health["services"]["redis"], "healthy");
    let id = yt_id("redis");
    let (status, _) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200);
    let mut conn = redis_conn(&url).await;
    let key = format!("video:youtube:{id}");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 3000 && ttl <= 3600, "ttl {ttl}");
    // An entry whose URLs are already expired is not shared.
    let stale = yt_id("expiredexpi");
    app.json(&format!("/api/v2/videos/youtube/{stale}")).await;
    let exists: bool = conn.exists(format!("video:youtube:{stale}")).await.unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn two_instances_share_one_extraction() {
    let url = redis_url();
    let a = spawn().redis(&url).delay_ms(500).start().await;
    let b = spawn().redis(&url).delay_ms(500).origin(&a.origin).start().await;
    let id = yt_id("shared");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (http, target) = (app.http.clone(), format!("{}/api/v2/videos/youtube/{id}", app.base));
        tasks.push(tokio::spawn(async move { http.get(target).send().await.unwrap().status() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(a.fake.runs() + b.fake.runs(), 1, "one extraction across both instances");
    // A third instance with an empty memory tier is served from Redis.
    let c = spawn().redis(&url).origin(&a.origin).start().await;
    let (status, body) = c.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(c.fake.runs(), 0);
    assert_eq!(c.metrics().await["cache_hits"], 1);
}

#[tokio::test]
async fn redis_dying_leaves_the_service_up_and_health_degraded() {
    let mut redis = OwnRedis::start().await;
    let app = spawn().redis(&redis.url).start().await;
    app.health_until("healthy").await;
    let prom = app.get("/metrics").await.text().await.unwrap();
    assert!(prom.lines().any(|l| l == "reelay_redis_up 1"), "{prom}");
    let id = yt_id("before");
    assert_eq!(app.json(&format!("/api/v2/videos/youtube/{id}")).await.0, 200);

    redis.child.kill().unwrap();
    redis.child.wait().unwrap();

    // Cached videos come from memory, new ones from the extractor.
    assert_eq!(app.json(&format!("/api/v2/videos/youtube/{id}")).await.0, 200);
    let started = std::time::Instant::now();
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("after"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, body) = app.health_until("degraded").await;
    assert_eq!(status, 503);
    assert!(body["services"]["redis"].as_str().unwrap().starts_with("unhealthy"), "{body}");
    // Prometheus says so too.
    let prom = app.get("/metrics").await.text().await.unwrap();
    assert!(prom.lines().any(|l| l == "reelay_redis_up 0"), "{prom}");
}

#[tokio::test]
async fn redis_down_at_start_is_not_fatal() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn().redis(&format!("redis://127.0.0.1:{port}/0")).start().await;
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("nored"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.health_until("degraded").await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_stopped_redis_costs_a_request_little() {
    let redis = OwnRedis::start().await;
    let app = spawn().redis(&redis.url).start().await;
    app.health_until("healthy").await;
    let pid = redis.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let started = std::time::Instant::now();
    let (status, _) = app.json(&format!("/api/v2/videos/youtube/{}", yt_id("stopped"))).await;
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn redis_going_and_coming_back_is_logged_once_each_not_per_request() {
    let own = OwnRedis::start().await;
    let port: u16 = own.url.rsplit(':').next().unwrap().trim_end_matches("/0").parse().unwrap();
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start(&fake, &["--cache-backend", "redis", "--redis-url", &own.url]).await;
    let http = reqwest::Client::new();
    drop(own);
    // Lookups that each try Redis, across several of the upkeep's checks.
    for i in 0..30 {
        let resp =
            http.get(format!("{}/api/v2/videos/youtube/{}", bin.base, yt_id(&format!("lg{i}")))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _back = OwnRedis::start_on(port).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let logs = bin.logs();
    let count = |needle: &str| logs.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("redis is not available"), 1, "{logs}");
    assert_eq!(count("redis is healthy"), 2, "at start and when it came back: {logs}");
    assert_eq!(count("WARN"), 1, "nothing else warned: {logs}");
}

/// Health from the first second: started against Redis with a yt-dlp slow
/// to start (its `--version` takes 3 s), a lookup goes through Redis at
/// once, and `/health` right after it says healthy with Redis healthy
/// (yt-dlp still `checking`, which is no fault). `/ready`, for balancers,
/// waits for yt-dlp's first answer: 503 naming it, then 200.
#[tokio::test]
async fn health_tells_the_truth_from_the_start_and_ready_waits_for_ytdlp() {
    let url = redis_url();
    let app = spawn().redis(&url).version_delay_ms(3000).start().await;
    let id = yt_id("first");
    let (status, body) = app.json(&format!("/api/v2/videos/youtube/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let stored: bool = redis_conn(&url).await.exists(format!("video:youtube:{id}")).await.unwrap();
    assert!(stored, "the lookup went through Redis");
    let (status, health) = app.json("/health").await;
    let services = &health["services"];
    assert_eq!((status.as_u16(), health["status"].as_str()), (200, Some("healthy")), "{health}");
    assert_eq!((services["redis"].as_str(), services["yt-dlp"].as_str()), (Some("healthy"), Some("checking")));
    let (status, ready) = app.json("/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready, serde_json::json!({"ready": false, "waiting_for": ["yt-dlp: checking"]}));
    for _ in 0..100 {
        if app.get("/api/v2/system/ready").await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = app.json("/api/v2/system/ready").await;
    assert_eq!((status.as_u16(), ready), (200, serde_json::json!({"ready": true, "waiting_for": []})));
}
