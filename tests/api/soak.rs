//! A short soak as a leak check: the real binary under mixed traffic
//! (lookups, hot info, ranged proxy reads, clients that hang up, an origin
//! that cuts, merges, errors) for `REELAY_SOAK_SECS` (default 120 s). Open
//! file descriptors and runtime tasks after the second half must be where
//! they were after the first, and no yt-dlp or ffmpeg may outlive its
//! request. No timing thresholds: only counts. `bench/soak.py` is the
//! 30-minute version with RSS and slopes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The descendants of `pid`, by each process's parent in /proc.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else { continue };
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned());
        let ppid = field("PPid:").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        procs.push((p, ppid, field("Name:").unwrap_or_default()));
    }
    let mut found = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for (p, ppid, name) in &procs {
            if *ppid == parent {
                found.push((*p, name.clone()));
                parents.push(*p);
            }
        }
    }
    found
}

struct Reading {
    fds: f64,
    tasks: f64,
    children: Vec<(u32, String)>,
}

/// Waits (at most 30 s) for the streams to end and the children to exit,
/// then reads the counts.
async fn settle(bin: &Binary, http: &reqwest::Client) -> Reading {
    let metric = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(-1.0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = http.get(format!("{}/metrics", bin.base)).send().await.unwrap().text().await.unwrap();
        let children = descendants(bin.child.id());
        let streams = metric(&text, "reelay_active_streams ");
        if (children.is_empty() && streams <= 0.0) || Instant::now() > deadline {
            return Reading {
                fds: metric(&text, "process_open_fds "),
                tasks: metric(&text, "reelay_runtime_tasks "),
                children,
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One client of the mix, doing the `n`th kind of thing: whether it was
/// answered as that kind of request should be (a status, or why not).
async fn act(http: &reqwest::Client, base: &str, n: u64, ids: &Ids) -> Result<(), String> {
    let get = |path: String| http.get(format!("{base}{path}")).send();
    let want = |r: Result<reqwest::Response, reqwest::Error>, ok: fn(u16) -> bool| match r {
        Ok(r) if ok(r.status().as_u16()) => Ok(r),
        Ok(r) => Err(format!("kind {}: {}", n % 8, r.status())),
        Err(e) => Err(format!("kind {}: {e}", n % 8)),
    };
    let success = |s: u16| (200..300).contains(&s);
    match n % 8 {
        // A lookup of a video never seen: one extraction.
        0 => want(get(format!("/api/v2/videos/youtube/{}", yt_id("s"))).await, success).map(drop),
        // Hot info.
        1 | 2 => {
            let r = want(get(format!("/api/v2/videos/youtube/{}", ids.hot)).await, success)?;
            r.bytes().await.map(drop).map_err(|e| e.to_string())
        }
        // A ranged read of the shared 64 MiB file.
        3 => {
            let start = (n * 7_919_993) % (60 << 20);
            let range = format!("bytes={start}-{}", start + (1 << 20));
            let r = http
                .get(format!("{base}/api/v2/stream/proxy/youtube/{}?quality=360p", ids.shared))
                .header("range", range)
                .send()
                .await;
            let r = want(r, |s| s == 206)?;
            r.bytes().await.map(drop).map_err(|e| e.to_string())
        }
        // A player that hangs up after its first piece, on an origin that cuts.
        4 => {
            let mut r = want(get(format!("/api/v2/stream/proxy/youtube/{}?quality=360p", ids.cut)).await, success)?;
            r.chunk().await.map(drop).map_err(|e| e.to_string())
        }
        // A merge: a viewer reads a little and leaves; every 16th reads it all.
        5 => {
            let id = if n % 16 == 5 { yt_id("qmerge") } else { ids.merge.clone() };
            let mut r = want(get(format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await, success)?;
            if n % 16 == 5 {
                while r.chunk().await.map_err(|e| e.to_string())?.is_some() {}
                Ok(())
            } else {
                r.chunk().await.map(drop).map_err(|e| e.to_string())
            }
        }
        // A removed video, and a bad id: errors, in their own statuses.
        6 => want(get(format!("/api/v2/stream/direct/youtube/{}", yt_id("unavailabl"))).await, |s| s == 404).map(drop),
        _ => want(get("/api/v2/videos/youtube/bad".to_owned()).await, |s| s == 400).map(drop),
    }
}

struct Ids {
    hot: String,
    shared: String,
    cut: String,
    merge: String,
}

/// Runs the mix with `clients` clients for `secs`: the requests answered
/// as they should be, and what the others got.
async fn traffic(base: &str, secs: u64, clients: u64, ids: Arc<Ids>) -> (u64, Vec<String>) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, ids, done, stop) = (base.to_owned(), ids.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().unwrap();
            let mut n = c;
            let mut failed = Vec::new();
            while !stop.load(Relaxed) {
                match act(&http, &base, n, &ids).await {
                    Ok(()) => drop(done.fetch_add(1, Relaxed)),
                    Err(e) => failed.push(e),
                }
                n += clients;
            }
            failed
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Relaxed);
    let mut failed = Vec::new();
    for t in tasks {
        failed.extend(t.await.unwrap());
    }
    (done.load(Relaxed), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_leaks_no_descriptors_tasks_or_children() {
    let secs: u64 = std::env::var("REELAY_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start(&fake, &["--stream-cache-memory", "48MiB", "--rate-limit-enabled", "false"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ids = Arc::new(Ids { hot: yt_id("h"), shared: yt_id("qshare"), cut: yt_id("qcut"), merge: yt_id("qmerge") });

    let (first, failed) = traffic(&bin.base, secs / 2, 6, ids.clone()).await;
    assert!(failed.is_empty(), "answered wrongly: {failed:?}");
    let mid = settle(&bin, &http).await;
    assert!(mid.children.is_empty(), "children outlived their requests: {:?}", mid.children);
    let (second, failed) = traffic(&bin.base, secs - secs / 2, 6, ids).await;
    assert!(failed.is_empty(), "answered wrongly: {failed:?}");
    let end = settle(&bin, &http).await;
    assert!(end.children.is_empty(), "children outlived their requests: {:?}", end.children);
    eprintln!(
        "soak: {first} requests, then fds {} tasks {}; {second} more, then fds {} tasks {}",
        mid.fds, mid.tasks, end.fds, end.tasks
    );
    assert!(first > 50 && second > 50, "the mix ran: {first} then {second} requests answered as they should be");
    assert!(mid.fds > 0.0 && mid.tasks > 0.0, "the gauges are there");
    // Pooled upstream connections come and go; a leak grows with requests.
    assert!(
        end.fds <= mid.fds + 16.0,
        "descriptors grew: {} after {first} requests, {} after {second} more",
        mid.fds,
        end.fds
    );
    assert!(end.tasks <= mid.tasks + 16.0, "tasks grew: {} then {}", mid.tasks, end.tasks);
    let logs = bin.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}
