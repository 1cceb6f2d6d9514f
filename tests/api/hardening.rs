//! What a careful HTTP server does with requests that are not what they
//! claim: every refusal in the API's JSON shape, including the ones hyper
//! makes before a route runs, and no request held open by a body that never
//! comes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `request` as is on a new connection and reads until the server
/// closes it (or 10 s pass): the status, the head and the body.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    // A refusal may come (and the server close) before all of it is sent.
    let _ = conn.write_all(request).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head: {text:?}"));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn assert_json_refusal(status: u16, head: &str, body: &str, want: u16) {
    assert_eq!(status, want, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-request-id: "), "{head}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_error_shape(reqwest::StatusCode::from_u16(status).unwrap(), &json);
    assert!(!json["request_id"].as_str().unwrap_or_default().is_empty(), "{json}");
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_json_error() {
    let app = spawn_app().await;
    let huge_header = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150).map(|i| format!("X-H{i}: 1\r\n")).collect::<String>()
    );
    let huge_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a 20 KB header", huge_header.into_bytes(), 431),
        ("150 headers", many_headers.into_bytes(), 431),
        ("a 70 KB target", huge_target.into_bytes(), 431),
        ("a request line that is not HTTP", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("a bad header name", b"GET /health HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec(), 400),
        ("a bad method", b"G(T /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (
            "two content lengths",
            b"POST /api/v2/videos/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
                .to_vec(),
            400,
        ),
    ];
    for (what, request, want) in cases {
        let (status, head, body) = raw(&app, &request).await;
        assert_json_refusal(status, &head, &body, want);
        assert!(head.contains("connection: close"), "{what}: {head}");
    }
    // The API's own limits (under hyper's) answer the same way.
    let (status, head, body) = raw(
        &app,
        format!("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "a".repeat(9_000))
            .as_bytes(),
    )
    .await;
    assert_json_refusal(status, &head, &body, 431);
    // And a well-formed request on the same kind of connection is untouched.
    let (status, head, _) = raw(&app, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200, "{head}");
    let counted = app.prom("reelay_http_requests_total{route=\"unmatched\",status=\"431\"}").await;
    assert!(counted >= 3.0, "hyper's refusals are counted: {counted}");
}

#[tokio::test]
async fn a_body_that_never_comes_is_a_408_not_a_held_request() {
    let app = spawn().arg("--request-body-timeout", 1).start().await;
    let started = Instant::now();
    let (status, head, body) = raw(
        &app,
        b"POST /api/v2/videos/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"vid",
    )
    .await;
    assert_json_refusal(status, &head, &body, 408);
    assert!(head.contains("connection: close"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(9), "cut off by the body timeout, not the request's");
    // A GET that announces a body it never sends is cut off the same way.
    let (status, head, body) = raw(&app, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n").await;
    assert_json_refusal(status, &head, &body, 408);
    // A body that arrives in time is read, in pieces too.
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let id = yt_id("b");
    let json = format!("{{\"videos\":[{{\"url\":\"https://youtu.be/{id}\"}}]}}");
    let head = format!(
        "POST /api/v2/videos/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        json.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (a, b) = json.split_at(10);
    conn.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(b.as_bytes()).await.unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("\"completed\":1"), "{got}");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_app().await;
    let body = vec![b'a'; 2 * 1024 * 1024];
    let resp = app.http.post(format!("{}/health", app.base)).body(body).send().await.unwrap();
    let status = resp.status();
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 413, "{json}");
    assert_error_shape(status, &json);
}
