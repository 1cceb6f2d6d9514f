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

/// One client of the mix, doing the `n`th kind of thing.
async fn act(http: &reqwest::Client, base: &str, n: u64, ids: &Ids) {
    let get = |path: String| http.get(format!("{base}{path}")).send();
    match n % 8 {
        // A lookup of a video never seen: one extraction.
        0 => drop(get(format!("/api/v2/videos/youtube/{}", yt_id("s"))).await),
        // Hot info.
        1 | 2 => drop(get(format!("/api/v2/videos/youtube/{}", ids.hot)).await.map(|r| r.bytes())),
        // A ranged read of the shared 64 MiB file.
        3 => {
            let start = (n * 7_919_993) % (60 << 20);
            let range = format!("bytes={start}-{}", start + (1 << 20));
            if let Ok(r) = http
                .get(format!("{base}/api/v2/stream/proxy/youtube/{}?quality=360p", ids.shared))
                .header("range", range)
                .send()
                .await
            {
                let _ = r.bytes().await;
            }
        }
        // A player that hangs up after its first piece, on an origin that cuts.
        4 => {
            if let Ok(mut r) = get(format!("/api/v2/stream/proxy/youtube/{}?quality=360p", ids.cut)).await {
                let _ = r.chunk().await;
            }
        }
        // A merge: a viewer reads a little and leaves; every 16th reads it all.
        5 => {
            let id = if n % 16 == 5 { yt_id("qmerge") } else { ids.merge.clone() };
            if let Ok(mut r) = get(format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await {
                if n % 16 == 5 {
                    while let Ok(Some(_)) = r.chunk().await {}
                } else {
                    let _ = r.chunk().await;
                }
            }
        }
        // A removed video, and a bad id: errors.
        6 => drop(get(format!("/api/v2/stream/direct/youtube/{}", yt_id("unavailabl"))).await),
        _ => drop(get("/api/v2/videos/youtube/bad".to_owned()).await),
    }
}

struct Ids {
    hot: String,
    shared: String,
    cut: String,
    merge: String,
}

/// Runs the mix with `clients` clients for `secs`.
async fn traffic(base: &str, secs: u64, clients: u64, ids: Arc<Ids>) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, ids, done, stop) = (base.to_owned(), ids.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().unwrap();
            let mut n = c;
            while !stop.load(Relaxed) {
                act(&http, &base, n, &ids).await;
                n += clients;
                done.fetch_add(1, Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_leaks_no_descriptors_tasks_or_children() {
    let secs: u64 = std::env::var("REELAY_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    let bin = Binary::start(&fake, &["--stream-cache-memory", "48MiB", "--rate-limit-enabled", "false"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ids = Arc::new(Ids { hot: yt_id("h"), shared: yt_id("qshare"), cut: yt_id("qcut"), merge: yt_id("qmerge") });

    let first = traffic(&bin.base, secs / 2, 6, ids.clone()).await;
    let mid = settle(&bin, &http).await;
    assert!(mid.children.is_empty(), "children outlived their requests: {:?}", mid.children);
    let second = traffic(&bin.base, secs - secs / 2, 6, ids).await;
    let end = settle(&bin, &http).await;
    assert!(end.children.is_empty(), "children outlived their requests: {:?}", end.children);
    eprintln!(
        "soak: {first} requests, then fds {} tasks {}; {second} more, then fds {} tasks {}",
        mid.fds, mid.tasks, end.fds, end.tasks
    );
    assert!(first > 50 && second > 50, "the mix ran: {first} then {second} requests");
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
