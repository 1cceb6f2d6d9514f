//! The tests' stand-in SABR server (`tests/api/sabr_origin.rs`, checked by
//! googlevideo's own client) as a program of its own, for `bench/sabr.py`:
//! it serves `POST /sabr/{quirks}/videoplayback` from the DASH files of a
//! folder, and the files themselves at `/media/{name}` (with ranges), so
//! one origin serves a format both through SABR and by plain URL.
//!
//! `cargo run --release --example sabr_origin -- <media folder> [port]`
//! prints `listening on <port>` once it accepts connections. `GET
//! /stats/{video id}` says what that video's requests were: `requests`,
//! `sent` (segments sent) and `distinct` (different segments among them).

#[allow(dead_code)]
#[path = "../tests/api/sabr_origin.rs"]
mod sabr_origin;

/// What the stand-in reads its files from (the tests' `helpers`).
mod helpers {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    pub static MEDIA: OnceLock<PathBuf> = OnceLock::new();

    pub fn media_dir() -> &'static Path {
        MEDIA.get().expect("the media folder is set first")
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let media = std::path::PathBuf::from(args.next().expect("usage: sabr_origin <media folder> [port]"));
    let port: u16 = args.next().map_or(0, |p| p.parse().expect("a port number"));
    helpers::MEDIA.set(media.clone()).expect("set once");
    let app = axum::Router::new()
        .route("/sabr/{quirks}/{name}", axum::routing::post(sabr_origin::videoplayback))
        .route("/stats/{id}", axum::routing::get(stats))
        .nest_service("/media", tower_http::services::ServeDir::new(media));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("binds");
    println!("listening on {}", listener.local_addr().expect("bound").port());
    axum::serve(listener, app).await.expect("serves");
}

async fn stats(axum::extract::Path(id): axum::extract::Path<String>) -> String {
    let s = sabr_origin::stats(&id);
    let distinct: std::collections::HashSet<_> = s.sent.iter().collect();
    let zero = s.live_zero_unix_ms.map_or("null".to_owned(), |z| z.to_string());
    format!(
        r#"{{"requests": {}, "sent": {}, "distinct": {}, "playbacks": {}, "live_zero_unix_ms": {zero}}}"#,
        s.requests,
        s.sent.len(),
        distinct.len(),
        s.playbacks
    )
}
