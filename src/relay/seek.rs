//! Seeks: a small closed range of a file where the store holds none of the
//! blocks (an HLS segment of a DASH file asked first at 1:30:00, a muxed
//! segment's fragments, a file's index), read from the origin exactly. A
//! store block is fetched from its start: up to 1 MiB before a 60 KB
//! segment, and its read-ahead after it.
//!
//! - One origin request per range however many ask for it at once (single
//!   flight), kept a few seconds for those who ask just after (a room whose
//!   players seek together); the bytes are not stored in blocks.
//! - The answer says the object's length and validators: an object the
//!   store knew nothing of learns its meta from it, as from a fetch.
//! - A player going on (a range starting where a seek ended) reads through
//!   the store, whose blocks and read-ahead serve the rest of its way and
//!   every viewer behind it.
//! - Any failure of the exact request (a cut, an origin that ignores
//!   `Range`, a refused URL twice) leaves the range to the store's resuming
//!   fetch: a seek is an optimisation, never a new way to fail.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::fetch::{Plan, interpret, own_meta};
use super::serve::{Reply, decide, framed, head, whole};
use super::store::{BLOCK, Kind};
use super::{Meta, ProxyError, Relay, RelayError, Shared, Visit, range};
use crate::lazy::{Lazy, lazy};

/// The longest range read exactly; longer ones are a player reading on,
/// which the store's blocks serve.
pub(super) const SEEK_MAX: u64 = 2 * BLOCK;

/// How long an exact read is kept for those who ask for it again.
const KEPT: Duration = Duration::from_secs(10);

/// The bytes of one exact read and what the origin said of the object.
#[derive(Clone)]
pub(super) struct Sought {
    pub bytes: Bytes,
    pub meta: Meta,
}

/// An object's bytes `[first, one past the last)`.
type Span = (Arc<str>, u64, u64);

/// Exact reads in flight and just done, and where recent seeks ended.
pub(super) struct Seeks {
    /// By (object, first byte, one past the last): one origin request per
    /// range at a time, kept [`KEPT`] (bounded by bytes).
    reads: Lazy<moka::future::Cache<Span, Sought>>,
    /// (object, where a seek ended): a range starting there is a player
    /// going on, for the store's blocks.
    ends: Lazy<moka::sync::Cache<(Arc<str>, u64), ()>>,
}

impl Seeks {
    pub(super) fn new() -> Self {
        Seeks {
            reads: lazy(|| {
                moka::future::Cache::builder()
                    .weigher(|_, s: &Sought| u32::try_from(s.bytes.len()).unwrap_or(u32::MAX))
                    .max_capacity(64 << 20)
                    .time_to_live(KEPT)
                    .build()
            }),
            ends: lazy(|| {
                moka::sync::Cache::builder().max_capacity(4096).time_to_live(Duration::from_secs(120)).build()
            }),
        }
    }
}

impl Relay {
    /// A client's GET answered by an exact read when it is a seek (see the
    /// module's doc); `None` for the store's way.
    pub(super) async fn serve_seek(&self, visit: &Visit, headers: &HeaderMap, counted: bool) -> Option<Reply> {
        let shared = &self.0;
        let (first, last) = range::closed(headers)?;
        if last - first >= SEEK_MAX || shared.seeks.ends.contains_key(&(visit.key.clone(), first)) {
            return None;
        }
        let known = shared.lock().get(&visit.key).and_then(|o| o.meta.clone());
        let wanted = match &known {
            // The validators and the length decide, as for any request.
            Some(meta) => {
                let validators =
                    range::Validators { etag: meta.etag.clone(), last_modified: meta.last_modified.clone() };
                match decide(headers, meta.len?, &validators) {
                    Ok((StatusCode::PARTIAL_CONTENT, start, end)) => start..end,
                    _ => return None,
                }
            }
            // Conditionals need the validators: the store's way learns them.
            None if range::conditional(headers) => return None,
            None => first..last + 1,
        };
        let sought = self.exact(visit, wanted.clone()).await.ok()?;
        let meta = known.unwrap_or(sought.meta);
        let len = meta.len?;
        let end = wanted.end.min(len);
        let bytes = sought.bytes.slice(..(end - wanted.start) as usize);
        if counted {
            shared.metrics.relay.served_origin.inc_by(bytes.len() as u64);
        }
        let body = whole(&shared.metrics, &visit.key, bytes, counted);
        Some(framed(head(StatusCode::PARTIAL_CONTENT, &meta, body), wanted.start..end, len))
    }

    /// Bytes `range` of the visited object by one exact origin request,
    /// shared with everyone asking for the same range now; `Err` when the
    /// object is not a fetched one that answers ranges, when the store holds
    /// a block of the range (it is served from there), or when the request
    /// fails.
    pub(super) async fn exact(&self, visit: &Visit, range: Range<u64>) -> Result<Sought, RelayError> {
        let shared = &self.0;
        let blocks = range.start / BLOCK..range.end.saturating_sub(1) / BLOCK + 1;
        let readable = {
            let store = shared.lock();
            let obj = store.get(&visit.key);
            let fetched = obj.is_some_and(|o| matches!(o.kind, Kind::Fetched { .. }));
            let answers_ranges = obj.and_then(|o| o.meta.as_ref()).is_none_or(|m| m.stored && m.ranged);
            let held = blocks.clone().any(|b| obj.is_some_and(|o| o.has(b)) || shared.on_disk(&visit.key, b));
            fetched && answers_ranges && !held && !range.is_empty()
        };
        if !readable {
            return Err(RelayError::Gone("not a seek".into()));
        }
        let key = (visit.key.clone(), range.start, range.end);
        let read = shared.seeks.reads.try_get_with(key, fetch_exact(shared.clone(), visit.key.clone(), range.clone()));
        let sought = read.await.map_err(|e| (*e).clone())?;
        shared.seeks.ends.insert((visit.key.clone(), range.end), ());
        Ok(sought)
    }
}

/// The object's meta from an origin's answer, set in the store (and the
/// disk tier's record) when it had none, as a fetch's first answer sets it:
/// reelay's own entity tag; a file the origin sends whole kept only if it
/// fits. The store's meta when it had one.
fn adopt(shared: &Shared, key: &Arc<str>, meta: Meta) -> Meta {
    let meta = own_meta(shared, key, meta);
    let mut store = shared.lock();
    let Some(obj) = store.get_mut(key) else { return meta };
    if let Some(known) = &obj.meta {
        return known.clone();
    }
    obj.meta = Some(meta.clone());
    if let Some(disk) = shared.disk_for(Some(obj)) {
        disk.save_meta(key, &meta);
    }
    meta
}

/// One origin request for exactly `range` of `key` (googlevideo's `range=`
/// where the URL takes it; a SABR session placed there for a SABR
/// format); a refused URL is located again once. The object's meta is set
/// from the answer when the store had none.
async fn fetch_exact(shared: Arc<Shared>, key: Arc<str>, range: Range<u64>) -> Result<Sought, RelayError> {
    let source = match shared.lock().get(&key).map(|o| &o.kind) {
        Some(Kind::Fetched { source, .. }) => source.clone(),
        _ => return Err(RelayError::Gone("the stream is not available".into())),
    };
    let traffic = shared.metrics.traffic.video(&key);
    let first = source.locate(None).await?;
    if let Some(sabr) = first.sabr.clone() {
        let want = (range.end - range.start) as usize;
        let mut out = BytesMut::with_capacity(want);
        super::sabr::read_range(&shared, &key, &first, &sabr, range.clone(), true, |_, data| {
            shared.metrics.relay.origin_bytes.inc_by(data.len() as u64);
            traffic.fetched(data.len() as u64);
            out.extend_from_slice(&data[..data.len().min(want - out.len())]);
            out.len() < want
        })
        .await?;
        if out.len() < want && range.start + out.len() as u64 != sabr.len {
            return Err(RelayError::Unreachable("the SABR session ended early".into()));
        }
        let meta = sabr.meta();
        return Ok(Sought { bytes: out.freeze(), meta: adopt(&shared, &key, meta) });
    }
    let mut stale = None;
    let mut located = Some(first);
    let fetched = loop {
        let loc = match located.take() {
            Some(loc) => loc,
            None => source.locate(stale.as_deref()).await?,
        };
        let plan = Plan::new(&loc.url, range.start, range.end, false);
        shared.metrics.relay.upstream_ranges.inc();
        match shared.upstream.fetch(&plan.url, &loc.via(), plan.header).await {
            Ok(fetched) => break (fetched, plan),
            Err(ProxyError::Expired(_)) if stale.is_none() => stale = Some(loc.url),
            Err(e) => return Err(e.into()),
        }
    };
    let ((fetched, plan), want) = (fetched, (range.end - range.start) as usize);
    let (parts, mut body) = fetched.response.into_parts();
    let head = interpret(parts.status, &parts.headers, &plan).map_err(|_| RelayError::Status(parts.status))?;
    let Some(len) = head.meta.len.filter(|_| head.start == range.start || !head.meta.ranged) else {
        return Err(RelayError::Status(parts.status));
    };
    let meta = adopt(&shared, &key, head.meta);
    // An origin that ignores ranges sends the whole file: the seek's bytes
    // are read from its start when they are near it; the store, which now
    // knows to fetch the file whole (or to pipe it, too big to keep),
    // serves the rest.
    let mut skip = match meta.ranged {
        true => 0,
        false if meta.stored && range.end <= SEEK_MAX => range.start as usize,
        false => return Err(RelayError::Gone("the origin ignores ranges".into())),
    };
    let mut out = BytesMut::with_capacity(want);
    while out.len() < want {
        let frame = match tokio::time::timeout(shared.settings.idle, body.frame()).await {
            Err(_) => return Err(RelayError::Unreachable("the origin stalled".into())),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| RelayError::Unreachable(e.to_string()))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        shared.metrics.relay.origin_bytes.inc_by(data.len() as u64);
        traffic.fetched(data.len() as u64);
        let from = skip.min(data.len());
        skip -= from;
        out.extend_from_slice(&data[from..data.len().min(from + want - out.len())]);
    }
    if out.len() < want && range.start + out.len() as u64 != len {
        return Err(RelayError::Unreachable("the origin ended the answer early".into()));
    }
    Ok(Sought { bytes: out.freeze(), meta })
}
