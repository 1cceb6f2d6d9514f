//! Seeking, expiry refresh, smart mode, strict direct mode, audio, hang-ups
//! and memory on large streams.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn ranges_match_the_origin_byte_for_byte() {
    let app = spawn_app().await;
    let id = yt_id("ranges");
    let proxied = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    let direct = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=360p")).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let len = media("clip.mp4").len();
    for range in [
        "bytes=0-0",
        "bytes=0-",
        "bytes=-500",
        "bytes=1000-",
        "bytes=100-199",
        &format!("bytes={}-", len - 1),
        &format!("bytes={}-", len + 10),
    ] {
        let a = app.http.get(&proxied).header("range", range).send().await.unwrap();
        let b = app.http.get(&direct).header("range", range).send().await.unwrap();
        assert_eq!(a.status(), b.status(), "{range}");
        assert_eq!(a.headers().get("content-range"), b.headers().get("content-range"), "{range}");
        if a.status() == 416 {
            // Unsatisfiable: the API's JSON error, with the origin's Content-Range.
            let body: serde_json::Value = a.json().await.unwrap();
            assert_error_shape(reqwest::StatusCode::RANGE_NOT_SATISFIABLE, &body);
            continue;
        }
        for h in ["content-length", "content-type"] {
            assert_eq!(a.headers().get(h), b.headers().get(h), "{range}: {h}");
        }
        assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap(), "{range}");
    }
    // Revalidation passes through.
    let modified = app.http.get(&direct).send().await.unwrap().headers()["last-modified"].clone();
    let resp = app.http.get(&proxied).header("if-modified-since", modified.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 304);
    let resp = app.http.get(&proxied).send().await.unwrap();
    assert_eq!(resp.headers()["last-modified"], modified);
}

#[tokio::test]
async fn an_origin_that_ignores_range_is_stored_whole_or_piped() {
    // Small enough for the store: the first range, asked before anything is
    // known of the file, is read from the start of the origin's answer (the
    // rest of it left); the file is then fetched whole once, and every
    // later range served from it.
    let app = spawn_app().await;
    let id = yt_id("norangenora");
    let clip = media("clip.mp4");
    let url = format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base);
    let resp = app.http.get(&url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 100-199/{}", clip.len()));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &clip[100..200]);
    let fetched = || app.origin.seen.lock().unwrap().iter().filter(|(p, _)| p.starts_with("/norange/clip")).count();
    for range in ["bytes=-10", "bytes=5000-5099", "bytes=100-"] {
        let resp = app.http.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        let said = resp.headers()["content-range"].to_str().unwrap().to_owned();
        let (from, to) = said[6..].split_once('/').unwrap().0.split_once('-').unwrap();
        let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &clip[from..=to], "{range}: {said}");
    }
    assert_eq!(fetched(), 2, "the first range's answer, then one whole-file fetch for every range");

    // Too big for this store's budget: each client gets the origin's answer, a 200.
    let app = spawn().arg("--stream-cache-memory", "64KiB").start().await;
    let resp = app
        .http
        .get(format!("{}/api/v2/stream/proxy/youtube/{id}?quality=360p", app.base))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-range").is_none());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), clip.as_slice());
}

#[tokio::test]
async fn expired_urls_are_extracted_again_once() {
    let app = spawn_app().await;
    for prefix in ["expiredexpi", "revokedrevo"] {
        let id = yt_id(prefix);
        let before = app.fake.runs();
        let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
        assert_eq!(resp.status(), 200, "{prefix}");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());
        assert_eq!(app.fake.runs() - before, 2, "{prefix}: exactly two extractions");
    }
    // Merged streams refresh too.
    let id = yt_id("revokedrevo");
    let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=720p")).await;
    assert_eq!(resp.status(), 200);
    // Always refused: a clear 502 after one retry.
    let id = yt_id("alwaysexpir");
    let before = app.fake.runs();
    let (status, body) = app.json(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert_eq!(status, 502, "{body}");
    assert_error_shape(status, &body);
    assert_eq!(app.fake.runs() - before, 2);
}

#[tokio::test]
async fn smart_mode_chooses_by_country_binding_and_settings() {
    let app = spawn_app().await;
    let id = yt_id("smart");
    let path = format!("/api/v2/stream/youtube/{id}?quality=360p");
    let status_of = |resp: reqwest::Response| resp.status().as_u16();
    assert_eq!(status_of(app.get(&path).await), 302, "default: direct");
    let cn = app.http.get(format!("{}{path}", app.base)).header("cf-ipcountry", "CN").send().await.unwrap();
    assert_eq!(cn.status(), 200, "CN clients get the proxy");
    assert_eq!(cn.bytes().await.unwrap().as_ref(), media("clip.mp4").as_slice());
    let cn = app.http.get(format!("{}{path}", app.base)).header("x-country-code", "cn").send().await.unwrap();
    assert_eq!(status_of(cn), 200);
    assert_eq!(status_of(app.get(&format!("{path}&country=CN")).await), 200);
    assert_eq!(status_of(app.get(&format!("{path}&country=CN&mode=direct")).await), 302, "mode wins");
    assert_eq!(status_of(app.get(&format!("{path}&mode=proxy")).await), 200);
    let (status, body) = app.json(&format!("{path}&mode=sideways")).await;
    assert_eq!(status, 400);
    assert_error_shape(status, &body);

    // A URL bound to another address is proxied unless direct is forced.
    let bound = yt_id("boundboundb");
    assert_eq!(status_of(app.get(&format!("/api/v2/stream/youtube/{bound}?quality=360p")).await), 200);
    assert_eq!(status_of(app.get(&format!("/api/v2/stream/youtube/{bound}?quality=360p&mode=direct")).await), 302);

    let app = spawn().arg("--default-stream-mode", "proxy").arg("--proxy-countries", "DE,FR").start().await;
    assert_eq!(status_of(app.get(&format!("/api/v2/stream/youtube/{id}?quality=360p")).await), 200);
    let app = spawn().arg("--proxy-countries", "DE,FR").start().await;
    assert_eq!(status_of(app.get(&format!("/api/v2/stream/youtube/{id}?quality=360p&country=fr")).await), 200);
    assert_eq!(status_of(app.get(&format!("/api/v2/stream/youtube/{id}?quality=360p&country=CN")).await), 302);
    // By link: first to the canonical path (what balancers hash), then the same choice.
    let by_url = app.get(&format!("/api/v2/stream?url=https://youtu.be/{id}&quality=360p")).await;
    assert_eq!(by_url.status(), 307);
    assert_eq!(by_url.headers()["location"], format!("/api/v2/stream/youtube/{id}?quality=360p").as_str());
    let by_url = app.follow(&format!("/api/v2/stream?url=https://youtu.be/{id}&quality=360p")).await;
    assert_eq!(by_url.status(), 302);
}

#[tokio::test]
async fn strict_direct_explains_instead_of_falling_back() {
    let app = spawn_app().await;
    let id = yt_id("strict");
    let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=1080p")).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["x-reelay-format"], "18");
    let (status, body) = app.json(&format!("/api/v2/stream/direct/youtube/{id}?quality=1080p&strict=true")).await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(status, &body);
    assert!(
        body["detail"].as_str().unwrap().contains(&format!("/api/v2/stream/proxy/youtube/{id}?quality=1080p")),
        "{body}"
    );
    let (status, _) = app.json(&format!("/api/v2/stream/youtube/{id}?quality=720p&mode=direct&strict=true")).await;
    assert_eq!(status, 409);
    // 360p has a single format with sound: strict is satisfied.
    assert_eq!(app.get(&format!("/api/v2/stream/direct/youtube/{id}?quality=360p&strict=true")).await.status(), 302);
}

#[tokio::test]
async fn audio_only_by_redirect_and_proxy() {
    let app = spawn_app().await;
    let id = yt_id("audio");
    for q in ["quality=audio", "audio_only=true"] {
        let resp = app.get(&format!("/api/v2/stream/direct/youtube/{id}?{q}")).await;
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["x-reelay-format"], "140");
        let resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?{q}")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), media("a.m4a").as_slice());
    }
}

#[tokio::test]
async fn head_works_on_every_stream_endpoint() {
    let app = spawn_app().await;
    let id = yt_id("head");
    for (path, want) in [
        (format!("/api/v2/stream/direct/youtube/{id}"), 302),
        (format!("/api/v2/stream/proxy/youtube/{id}?quality=360p"), 200),
        (format!("/api/v2/stream/proxy/youtube/{id}?quality=720p"), 200),
        (format!("/api/v2/stream/youtube/{id}"), 302),
        ("/api/v2/stream/proxy/twitch/42".to_owned(), 200),
    ] {
        let resp = app.http.head(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(resp.status(), want, "{path}");
    }
}

#[tokio::test]
async fn hang_up_mid_stream_counts_the_stream_out() {
    let app = spawn_app().await;
    let id = yt_id("slowslowslo");
    let mut resp = app.get(&format!("/api/v2/stream/proxy/youtube/{id}?quality=360p")).await;
    assert!(resp.chunk().await.unwrap().is_some());
    assert_eq!(app.metrics().await["active_streams"], 1);
    drop(resp);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if app.metrics().await["active_streams"] == 0 {
            let served = app.metrics().await["total_bytes_served"].as_u64().unwrap();
            assert!(served < media("clip.mp4").len() as u64, "only what was sent is counted: {served}");
            return;
        }
    }
    panic!("active_streams stayed up after the hang-up");
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024
}

#[tokio::test]
async fn a_large_stream_keeps_memory_flat() {
    // The real binary, so its memory is its own.
    let origin = spawn_origin().await;
    let fake = FakeExtractor::new(&origin.base, 0);
    // The store keeps 32 MiB; everything past it is relayed and let go.
    let mut server = Binary::start(&fake, &["--log-level", "warn", "--stream-cache-memory", "32MiB"]).await;
    let (base, http) = (server.base.clone(), reqwest::Client::new());
    let mut resp = http
        .get(format!("{base}/api/v2/stream/proxy/youtube/{}?quality=360p", yt_id("bigbigbigbi")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        total += chunk.len() as u64;
    }
    let peak = peak_rss_mib(server.child.id());
    let _ = server.child.kill();
    assert_eq!(total, BIG_LEN);
    // The test build alone peaks at 82-91 MiB (its code, the store, buffers
    // in flight); the full suite on two cores pushed it to 97 once. Broken
    // (a store that keeps what it relays) it would pass 300.
    assert!(peak < 32 + 80, "peak RSS {peak} MiB while relaying {} MiB through a 32 MiB store", BIG_LEN >> 20);
}
