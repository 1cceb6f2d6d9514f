//! Prometheus, OpenAPI and Swagger UI, request ids in logs, and shutdown,
//! the last two against the real binary.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn prometheus_counters_move_with_requests() {
    let app = spawn_app().await;
    let id = yt_id("prom");
    let before = parse_prometheus(&app.get("/metrics").await.text().await.unwrap());
    for _ in 0..3 {
        assert_eq!(app.get(&format!("/api/v2/videos/youtube/{id}")).await.status(), 200);
    }
    app.get("/api/v2/videos/youtube/bad").await;
    let _ = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await.bytes().await;
    let resp = app.get("/metrics").await;
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let after = parse_prometheus(&resp.text().await.unwrap());
    let get = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let ok = r#"reelay_http_requests_total{route="/api/v2/videos/{platform}/{video_id}",status="200"}"#;
    assert_eq!(get(&after, ok) - get(&before, ok), 3.0);
    let bad = r#"reelay_http_requests_total{route="/api/v2/videos/{platform}/{video_id}",status="400"}"#;
    assert_eq!(get(&after, bad), 1.0);
    assert_eq!(get(&after, r#"reelay_extractions_total{outcome="ok"}"#), 1.0);
    assert_eq!(get(&after, "reelay_cache_misses_total"), 1.0);
    assert_eq!(get(&after, r#"reelay_cache_hits_total{tier="memory"}"#), 3.0);
    assert_eq!(get(&after, "reelay_extraction_duration_seconds_count"), 1.0);
    assert_eq!(get(&after, "reelay_extractions_in_flight"), 0.0);
    assert_eq!(get(&after, "reelay_active_streams"), 0.0);
    assert_eq!(get(&after, "reelay_bytes_served_total"), media("clip.mp4").len() as f64);
    let hist = r#"reelay_http_request_duration_seconds_count{route="/api/v2/videos/{platform}/{video_id}"}"#;
    assert!(get(&after, hist) >= 4.0);
    assert!(get(&after, "process_resident_memory_bytes") > 0.0);
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let app = spawn_app().await;
    let (status, doc) = app.json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: BTreeSet<String> = reelay::http::route_paths().into_iter().map(str::to_owned).collect();
    assert_eq!(documented, routed, "every route is documented, and nothing else");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let op = if item.get("post").is_some() { &item["post"] } else { &item["get"] };
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{path} documents its responses");
        if path.contains('{') {
            assert!(op["parameters"].as_array().is_some_and(|p| !p.is_empty()), "{path} documents its parameters");
        }
    }
    for schema in ["ErrorResponse", "VideoEnvelope", "ApiVideo", "ApiFormat", "Health"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "{schema}");
    }
    // GET / lists the same routes.
    let (_, root) = app.json("/").await;
    assert_eq!(root["endpoints"].as_array().unwrap().len(), routed.len());
}

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let app = spawn_app().await;
    let resp = app.get("/docs/").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.to_ascii_lowercase().contains("swagger"), "{html}");
    let assets: Vec<&str> = html.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect();
    assert!(!assets.is_empty(), "{html}");
    for asset in assets {
        assert!(!asset.contains("//"), "{asset} would load from elsewhere");
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    let init = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

#[tokio::test]
async fn logs_carry_request_ids_and_never_keys() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin =
        Binary::start(&fake, &["--log-level", "debug", "--environment", "production", "--api-keys", "very-secret-key"])
            .await;
    let http = reqwest::Client::new();
    let id = yt_id("logs");
    let resp = http
        .get(format!("{}/api/v2/videos/youtube/{id}?api_key=very-secret-key", bin.base))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .get(format!("{}/api/v2/videos/youtube/{id}", bin.base))
        .bearer_auth("very-secret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = bin.logs();
    assert!(!logs.contains("very-secret-key"), "a key reached the logs:\n{logs}");
    let lines: Vec<serde_json::Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "production logs are JSON lines:\n{logs}");
    let ours: Vec<&serde_json::Value> = lines.iter().filter(|l| l.to_string().contains("req-abc-123")).collect();
    assert!(ours.len() >= 2, "the request line and the extraction's lines carry the id:\n{logs}");
    assert!(ours.iter().any(|l| l["status"] == 200 && l["latency_ms"].is_number()), "{logs}");
}

#[tokio::test]
async fn shutdown_ends_streams_by_the_grace_deadline_and_kills_ffmpeg() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let mut bin = Binary::start(&fake, &["--shutdown-grace", "2"]).await;
    let id = yt_id("slowslowslo");
    let http = reqwest::Client::new();
    let mut stream =
        http.get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=720p", bin.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.unwrap().is_some());
    let ffmpeg_running =
        || !Command::new("pgrep").args(["-f", &format!("ffmpeg.*{id}")]).output().unwrap().stdout.is_empty();
    assert!(ffmpeg_running());

    let sent = Instant::now();
    bin.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(http.get(format!("{}/health", bin.base)).send().await.is_err(), "no new connections after SIGTERM");
    // The stream goes on within the grace period, then ends.
    while let Ok(Some(_)) = stream.chunk().await {
        assert!(sent.elapsed() < Duration::from_secs(6), "the stream outlived the grace period");
    }
    let ended = sent.elapsed();
    assert!(ended >= Duration::from_millis(1500) && ended < Duration::from_secs(6), "{ended:?}");
    for _ in 0..50 {
        if bin.child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bin.child.try_wait().unwrap().is_some(), "the server exited");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!ffmpeg_running(), "no ffmpeg outlives the server");
}

#[tokio::test]
async fn the_container_healthcheck_command() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start(&fake, &[]).await;
    let port = bin.base.rsplit(':').next().unwrap().to_owned();
    let check = |port: &str| {
        let port = port.to_owned();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
                .arg("healthcheck")
                .env("PORT", port)
                .status()
                .await
                .unwrap()
        }
    };
    assert!(check(&port).await.success());
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    assert!(!check(&dead).await.success());
}
