//! The binary as it runs, whichever build `REELAY_TEST_BIN` names: the
//! suite runs this on the test build, and `.ci/run` runs it again on the
//! shipped one (`scripts/build`: glibc linked statically on x86_64 Linux),
//! where what static linking could break would show: a host name looked up
//! through `/etc/hosts`, yt-dlp started as a child, the health report.

use serde_json::Value;

use crate::helpers::*;

/// A video whose stream URL names its origin by host name (`localhost`, as
/// `/etc/hosts` has it): its info, then its file through the proxy, byte
/// for byte; `/health` healthy with its memory figures.
#[tokio::test]
async fn the_binary_looks_names_up_runs_ytdlp_and_relays() {
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base.replace("127.0.0.1", "localhost"), 0);
    let mut server = Binary::start(&fake, &["--log-level", "warn"]).await;
    let http = reqwest::Client::new();
    let health: Value = http.get(format!("{}/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(health["memory"]["alloc_mb"].as_f64().is_some_and(|mb| mb > 0.0), "the allocator's counters: {health}");
    let id = yt_id("shipped");
    let info = http.get(format!("{}/api/v2/videos/youtube/{id}", server.base)).send().await.unwrap();
    assert_eq!(info.status(), 200, "yt-dlp ran as a child");
    let file = http.get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", server.base)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    let body = file.bytes().await.unwrap();
    let _ = server.child.kill();
    assert_eq!(body.as_ref(), media("clip.mp4").as_slice(), "the file from an origin found by its host name");
    let asked = origin.requests("/media/clip.mp4");
    assert!(!asked.is_empty(), "the origin was asked, through localhost");
    assert!(asked.iter().all(|(_, h)| h.get("host").is_some_and(|v| v.to_str().unwrap().starts_with("localhost:"))));
}
