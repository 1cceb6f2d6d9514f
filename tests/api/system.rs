use crate::helpers::*;

#[tokio::test]
async fn root_lists_endpoints_and_platforms() {
    let app = spawn_app().await;
    let (status, body) = app.json("/").await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "reelay");
    let platforms: Vec<&str> =
        body["supported_platforms"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(platforms, ["youtube", "bilibili", "twitter", "x", "instagram", "twitch"]);
    assert!(body["endpoints"].as_array().unwrap().iter().any(|e| e == "GET /api/v2/stream/metrics"));
}

#[tokio::test]
async fn health_with_memory_backend_is_healthy() {
    let app = spawn_app().await;
    for path in ["/health", "/api/v2/system/health"] {
        let _ = app.health_until("healthy").await;
        let (status, body) = app.json(path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["services"]["redis"], "disabled");
        assert_eq!(body["services"]["yt-dlp"], "available");
        assert!(body["uptime"].as_str().unwrap().ends_with('s'));
        for key in ["alloc_mb", "total_alloc_mb", "sys_mb", "num_gc"] {
            assert!(body["memory"][key].is_number(), "{key}: {body}");
        }
        assert!(body["memory"]["alloc_mb"].as_f64().unwrap() > 0.0);
        assert!(body["version"].is_string() && body["timestamp"].is_string());
    }
}

#[tokio::test]
async fn health_is_503_when_the_extractor_cannot_run() {
    let app = spawn().ytdlp("/nonexistent/yt-dlp").start().await;
    let (status, body) = app.health_until("degraded").await;
    assert_eq!(status, 503);
    assert!(body["services"]["yt-dlp"].as_str().unwrap().starts_with("unavailable"), "{body}");
    // And extraction says so plainly.
    let (status, body) = app.json("/api/v2/videos/youtube/dQw4w9WgXcQ").await;
    assert_eq!(status, 503);
    assert_error_shape(status, &body);
}

#[tokio::test]
async fn metrics_have_the_reference_keys() {
    let app = spawn_app().await;
    let (status, body) = app.json("/api/v2/stream/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert!(body["message"].is_string() && body["timestamp"].is_string());
    for key in [
        "total_requests",
        "cache_hits",
        "cache_misses",
        "cache_hit_rate",
        "average_latency_ms",
        "total_bytes_served",
        "active_streams",
    ] {
        assert!(body["data"][key].is_number(), "{key}: {body}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors_with_the_request_id() {
    let app = spawn_app().await;
    let resp = app.http.get(format!("{}/nope", app.base)).header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error_shape(reqwest::StatusCode::NOT_FOUND, &body);
    assert_eq!(body["request_id"], "trace-me-123");

    let resp = app.http.post(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error_shape(reqwest::StatusCode::METHOD_NOT_ALLOWED, &body);

    // A request id with odd characters is replaced, not echoed.
    let resp = app.http.get(format!("{}/health", app.base)).header("x-request-id", "a b<script>").send().await.unwrap();
    assert_ne!(resp.headers()["x-request-id"], "a b<script>");
}

#[tokio::test]
async fn connections_are_served_by_the_workers_it_is_told_to_start() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start_with_env(&fake, &[], &[("WORKERS", "3")]).await;
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", bin.child.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("reelay-worker"))
        .collect();
    assert_eq!(threads.len(), 3, "{threads:?}");
    // Six clients, each on a connection of its own and all open at once:
    // every one is answered, and the workers' tasks are counted.
    let clients: Vec<reqwest::Client> = (0..6).map(|_| reqwest::Client::new()).collect();
    for c in &clients {
        assert_eq!(c.get(format!("{}/health", bin.base)).send().await.unwrap().status(), 200);
    }
    let text = clients[0].get(format!("{}/metrics", bin.base)).send().await.unwrap().text().await.unwrap();
    let tasks: f64 =
        text.lines().find_map(|l| l.strip_prefix("reelay_runtime_tasks ")).unwrap().trim().parse().unwrap();
    assert!(tasks >= 6.0, "six open connections, {tasks} tasks");
}

#[tokio::test]
async fn a_kept_health_answer_moves_with_the_clock() {
    let app = spawn_app().await;
    let (_, first) = app.health_until("healthy").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, later) = app.json("/health").await;
    assert_eq!(status, 200);
    assert_ne!(first["timestamp"], later["timestamp"], "{first} {later}");
    assert_ne!(first["uptime"], later["uptime"], "{first} {later}");
}
