//! Stand-ins for what real origins do to long downloads, served by the test
//! origin under `/q/{quirk}/{file}` (and googlevideo's `/videoplayback`).
//! Each honours `Range` (one `bytes=a-b` or `bytes=a-`) like a CDN, counts
//! the bytes it sends, and then misbehaves its own way:
//!
//! - `ranged`: nothing more (a well-behaved CDN, counted);
//! - `cut`: drops the connection after 5 MB of any response (googlevideo
//!   and CDNs do this to long transfers);
//! - `throttle`: sends the first 10 MiB of a response at full speed and the
//!   rest at 2 MiB/s (YouTube's throttling of long requests);
//! - `paced`: everything at 2 MiB/s (a stream that takes a while);
//! - `stall`: the first response for `?once=K` stops sending halfway
//!   (however much it was asked for) and keeps the connection open;
//! - `expiring`: `?tok=T` where `T` ends in `-0` (the first extraction's)
//!   stops working after 5 MB were sent for it: the response in flight is
//!   cut and later ones answer 403 (a signed URL expiring mid-playback);
//! - `/videoplayback?file=F&range=a-b`: googlevideo's range in the query,
//!   answered 200 with just those bytes; without it, a long response is
//!   throttled like `throttle`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::helpers::media_dir;

/// Bytes sent by the quirky routes, by path (without the query).
pub type Sent = Arc<Mutex<HashMap<String, u64>>>;

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

/// A media file's bytes, read once per test run and shared.
pub fn file(name: &str) -> Bytes {
    static FILES: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    assert!(!name.contains('/') && !name.contains(".."));
    let mut files = FILES.get_or_init(Default::default).lock().unwrap();
    files.entry(name.to_owned()).or_insert_with(|| std::fs::read(media_dir().join(name)).unwrap().into()).clone()
}

/// `Range: bytes=a-b` / `bytes=a-` against `len`: the inclusive span.
fn range(headers: &HeaderMap, len: u64) -> Option<(u64, u64)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?.strip_prefix("bytes=")?;
    let (a, b) = v.split_once('-')?;
    let a: u64 = a.parse().ok()?;
    let b: u64 = if b.is_empty() { len - 1 } else { b.parse::<u64>().ok()?.min(len - 1) };
    (a <= b && a < len).then_some((a, b))
}

/// How a response goes wrong.
#[derive(Clone, Copy)]
enum Fault {
    None,
    CutAfter(u64),
    ThrottleAfter(u64),
    StallAfter(u64),
}

/// The body of `data`, chunk by chunk, counted into `sent[path]`, with `fault`.
fn body(data: Bytes, path: String, sent: Sent, fault: Fault, on_bytes: impl Fn(u64) -> bool + Send + 'static) -> Body {
    let chunks: Vec<Bytes> =
        (0..data.len()).step_by(64 * 1024).map(|i| data.slice(i..(i + 64 * 1024).min(data.len()))).collect();
    let mut done = 0u64;
    let stream = futures_util::stream::iter(chunks).then(move |chunk| {
        let (sent, path) = (sent.clone(), path.clone());
        let before = done;
        done += chunk.len() as u64;
        let keep_going = on_bytes(chunk.len() as u64);
        async move {
            match fault {
                Fault::CutAfter(n) if before >= n => return Err(std::io::Error::other("cut")),
                Fault::StallAfter(n) if before >= n => futures_util::future::pending::<()>().await,
                Fault::ThrottleAfter(n) if before >= n => {
                    tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / (2 * MIB) as f64)).await
                }
                _ => {}
            }
            if !keep_going {
                return Err(std::io::Error::other("expired"));
            }
            *sent.lock().unwrap().entry(path).or_default() += chunk.len() as u64;
            Ok::<_, std::io::Error>(chunk)
        }
    });
    Body::from_stream(stream)
}

/// The whole file or the asked range, as a CDN answers it.
fn answer(
    name: &str,
    path: String,
    headers: &HeaderMap,
    sent: Sent,
    fault: Fault,
    on_bytes: impl Fn(u64) -> bool + Send + 'static,
) -> Response {
    let data = file(name);
    let len = data.len() as u64;
    let (status, slice, content_range) = match range(headers, len) {
        Some((a, b)) => {
            (StatusCode::PARTIAL_CONTENT, data.slice(a as usize..=b as usize), Some(format!("bytes {a}-{b}/{len}")))
        }
        None if headers.contains_key(header::RANGE) => {
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{len}"))])
                .into_response();
        }
        None => (StatusCode::OK, data, None),
    };
    let mut resp = Response::new(body(slice.clone(), path, sent, fault, on_bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, "video/mp4".parse().unwrap());
    h.insert(header::CONTENT_LENGTH, slice.len().into());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    if let Some(cr) = content_range {
        h.insert(header::CONTENT_RANGE, cr.parse().unwrap());
    }
    resp
}

/// `/q/{quirk}/{file}`.
pub async fn quirky(
    Path((quirk, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    sent: Sent,
) -> Response {
    static STALLED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    static SPENT: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let path = format!("/q/{quirk}/{name}");
    match quirk.as_str() {
        "ranged" => answer(&name, path, &headers, sent, Fault::None, |_| true),
        "cut" => answer(&name, path, &headers, sent, Fault::CutAfter(5 * MB), |_| true),
        "throttle" => answer(&name, path, &headers, sent, Fault::ThrottleAfter(10 * MIB), |_| true),
        "paced" => answer(&name, path, &headers, sent, Fault::ThrottleAfter(0), |_| true),
        "stall" => {
            let once = q.get("once").cloned().unwrap_or_default();
            let first = STALLED.get_or_init(Default::default).lock().unwrap().insert(once);
            let len = file(&name).len() as u64;
            let asked = range(&headers, len).map_or(len, |(a, b)| b + 1 - a);
            let fault = if first { Fault::StallAfter((asked / 2).max(64 * 1024)) } else { Fault::None };
            answer(&name, path, &headers, sent, fault, |_| true)
        }
        "expiring" => {
            let tok = q.get("tok").cloned().unwrap_or_default();
            if !tok.ends_with("-0") {
                return answer(&name, path, &headers, sent, Fault::None, |_| true);
            }
            let spent = SPENT.get_or_init(Default::default);
            if spent.lock().unwrap().get(&tok).is_some_and(|n| *n >= 5 * MB) {
                return (StatusCode::FORBIDDEN, "expired").into_response();
            }
            answer(&name, path, &headers, sent, Fault::None, move |n| {
                let mut spent = spent.lock().unwrap();
                let total = spent.entry(tok.clone()).or_default();
                *total += n;
                *total <= 5 * MB
            })
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// googlevideo's `/videoplayback`: `range=a-b` in the query.
pub async fn videoplayback(Query(q): Query<HashMap<String, String>>, headers: HeaderMap, sent: Sent) -> Response {
    let name = q.get("file").cloned().unwrap_or_default();
    let path = "/videoplayback".to_owned();
    match q.get("range").and_then(|r| r.split_once('-')) {
        Some((a, b)) => {
            let mut h = HeaderMap::new();
            h.insert(header::RANGE, format!("bytes={a}-{b}").parse().unwrap());
            let mut resp = answer(&name, path, &h, sent, Fault::None, |_| true);
            // googlevideo answers a query range with a plain 200.
            if resp.status() == StatusCode::PARTIAL_CONTENT {
                *resp.status_mut() = StatusCode::OK;
                resp.headers_mut().remove(header::CONTENT_RANGE);
            }
            resp
        }
        None => answer(&name, path, &headers, sent, Fault::ThrottleAfter(10 * MIB), |_| true),
    }
}
