//! One upstream fetch: the blocks a job claimed, brought in one ranged
//! request, resumed from the next missing byte when the origin drops the
//! connection, stalls past `STREAM_IDLE_TIMEOUT`, answers an error, or
//! refuses the URL (then with a URL from a new extraction), a few times
//! with backoff. Readers of the claimed blocks follow every frame as it
//! lands; the job runs to its range's end whether they stay or not (a range
//! is a few MiB), and fails its blocks' readers when it gives up.
//!
//! Two ways of asking for a range: googlevideo takes `&range=first-last` in
//! the query (as YouTube's own player asks, and without the throttling of
//! long responses), every other origin the `Range` header. An origin that
//! answers a ranged request with the whole file (200) is read whole from
//! byte 0, skipping what is already stored; when it is too big for the
//! memory budget, the object is marked unstored and clients get pipes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use url::Url;

use futures_util::FutureExt;

use super::store::{BLOCK, Fill};
use super::writer::Writer;
use super::{Meta, ProxyError, RelayError, Shared};

/// Tries in a row without a byte of progress before giving up.
const MAX_FAILS: u32 = 5;
/// Waits before each retry, by how many have failed in a row: quick at
/// first (a cut connection is usually fine at once), about 2 s in all before
/// a dead origin is reported.
const BACKOFF_MS: [u64; MAX_FAILS as usize] = [50, 100, 250, 500, 1000];

/// A running fetch; its writer owns the blocks it has still to fill.
struct Job {
    shared: Arc<Shared>,
    key: Arc<str>,
    writer: Writer,
    /// Its video's counters, looked up once (the status page's origin bytes).
    traffic: Arc<crate::traffic::VideoTraffic>,
    /// Why a SABR session last asked for a new extraction (attestation
    /// required, a reload): said instead of a bare refusal when that did
    /// not help.
    refusal: Option<RelayError>,
}

impl Drop for Job {
    fn drop(&mut self) {
        // Whatever is left unfilled (a failure, or the task dropped at
        // shutdown) is released, and its readers told.
        let mut store = self.shared.lock();
        let error = RelayError::Unreachable("the fetch stopped".into());
        for (&b, fill) in &self.writer.owned {
            let error = fill.error.get().cloned().unwrap_or_else(|| error.clone());
            store.drop_block(&self.key, b, Some(&error));
        }
        if let Some(obj) = store.get_mut(&self.key) {
            obj.jobs -= 1;
        }
        store.forget_if_idle(&self.key);
    }
}

/// How the origin answered one request.
pub(super) struct Head {
    /// Offset of the body's first byte in the object.
    pub(super) start: u64,
    pub(super) meta: Meta,
}

pub(super) async fn run(shared: Arc<Shared>, key: Arc<str>, claims: BTreeMap<u64, Arc<Fill>>) {
    let writer = Writer::new(shared.clone(), key.clone(), claims);
    let traffic = shared.metrics.traffic.video(&key);
    let mut job = Job { shared, key, writer, traffic, refusal: None };
    if let Err(e) = job.work().await {
        job.fail(e);
    }
}

impl Job {
    /// The object's next byte this job must bring, and one past its last.
    fn span(&self) -> Option<(u64, u64)> {
        let (&first, _) = self.writer.owned.first_key_value()?;
        let (&last, _) = self.writer.owned.last_key_value()?;
        let store = self.shared.lock();
        let obj = store.get(&self.key)?;
        let start = first * BLOCK + obj.filled(first).unwrap_or(0);
        Some((start, last * BLOCK + obj.block_len(last)))
    }

    fn fail(&mut self, e: RelayError) {
        tracing::warn!(key = %self.key, error = %e, "relay fetch failed");
        for fill in self.writer.owned.values() {
            let _ = fill.error.set(e.clone());
        }
        // Drop releases the blocks.
    }

    async fn work(&mut self) -> Result<(), RelayError> {
        let shared = self.shared.clone();
        let source = {
            let store = shared.lock();
            match store.get(&self.key).map(|o| &o.kind) {
                Some(super::Kind::Fetched { source, .. }) => source.clone(),
                _ => return Ok(()),
            }
        };
        let mut stale: Option<String> = None;
        let mut fails = 0u32;
        let mut refreshed = false;
        loop {
            let Some((pos, end)) = self.span() else { return Ok(()) };
            if pos >= end {
                return Ok(());
            }
            let loc = match source.locate(stale.take().as_deref()).await {
                Ok(loc) => loc,
                Err(RelayError::Expired) => return Err(self.refusal.take().unwrap_or(RelayError::Expired)),
                Err(e) => return Err(e),
            };
            let (meta_known, whole) = {
                let store = shared.lock();
                let m = store.get(&self.key).and_then(|o| o.meta.clone());
                (m.is_some(), m.is_some_and(|m| !m.ranged))
            };
            shared.metrics.relay.upstream_ranges.inc();
            let outcome = match &loc.sabr {
                Some(sabr) => self.read_sabr(&loc, sabr, pos, end, meta_known).await,
                None => {
                    let plan = Plan::new(&loc.url, pos, end, whole);
                    match shared.upstream.fetch(&plan.url, &loc.via(), plan.header).await {
                        Ok(fetched) => self.read(fetched, &plan, meta_known).await,
                        Err(e) => Err(e.into()),
                    }
                }
            };
            let progressed = self.span().is_none_or(|(now, _)| now > pos);
            let unfinished = self.span().is_some_and(|(now, stop)| now < stop);
            let outcome = match outcome {
                // An answer that brought nothing asked for (a start past what the
                // origin says is its end, say) is a failure, not a loop.
                Ok(()) if !progressed && unfinished => {
                    Err(Retry::Again("the origin sent none of the bytes asked for".into()))
                }
                other => other,
            };
            match outcome {
                Ok(()) => {
                    fails = 0;
                    continue;
                }
                Err(Retry::Expired) if !refreshed || progressed => {
                    shared.metrics.relay.resumes_expired.inc();
                    tracing::info!(key = %self.key, at = pos, "the origin refused the stream URL; asking for a new one");
                    refreshed = true;
                    stale = Some(loc.url);
                    continue;
                }
                Err(Retry::Expired) => return Err(self.refusal.take().unwrap_or(RelayError::Expired)),
                Err(Retry::Fatal(e)) => return Err(e),
                Err(Retry::Again(why)) => {
                    if progressed {
                        fails = 0;
                    }
                    fails += 1;
                    if fails > MAX_FAILS {
                        return Err(RelayError::Unreachable(why));
                    }
                    shared.metrics.relay.resumes_dropped.inc();
                    tracing::info!(key = %self.key, at = pos, attempt = fails, reason = %why, "resuming a relay fetch");
                    tokio::time::sleep(Duration::from_millis(BACKOFF_MS[fails as usize - 1])).await;
                }
            }
        }
    }

    /// Reads one response into the claimed blocks.
    async fn read(&mut self, fetched: super::Fetched, plan: &Plan, meta_known: bool) -> Result<(), Retry> {
        let (parts, body) = fetched.response.into_parts();
        let head = interpret(parts.status, &parts.headers, plan)?;
        if !self.accept(head, meta_known)? {
            return Ok(());
        }
        let at = plan.body_start(&parts.headers, parts.status);
        let read = self.read_body(body, at).await;
        // Whatever was copied is published, so a resume starts after it.
        self.writer.flush();
        let end = read?;
        match self.span() {
            Some((pos, stop)) if pos < stop && end < stop => {
                Err(Retry::Again(format!("the origin ended the response at byte {end} of {stop}")))
            }
            _ => Ok(()),
        }
    }

    /// Bytes `pos..end` of a SABR format, from a session placed there
    /// (`super::sabr::read_range`), into the claimed blocks. The object's
    /// length is the format's; a refused URL, attestation required or a
    /// reload asked for is a refusal (the video is extracted again, once).
    async fn read_sabr(
        &mut self,
        loc: &super::Locator,
        sabr: &super::sabr::SabrSource,
        pos: u64,
        end: u64,
        meta_known: bool,
    ) -> Result<(), Retry> {
        let meta = sabr.meta();
        if !self.accept(Head { start: pos, meta }, meta_known)? {
            return Ok(());
        }
        let (shared, traffic) = (self.shared.clone(), self.traffic.clone());
        let writer = &mut self.writer;
        let read = super::sabr::read_range(&shared, &self.key, loc, sabr, pos..end, false, |at, data| {
            shared.metrics.relay.origin_bytes.inc_by(data.len() as u64);
            traffic.fetched(data.len() as u64);
            writer.write(at, data)
        })
        .await;
        self.writer.flush();
        use crate::sabr::SabrFailure::{AttestationRequired, Reload};
        match read {
            Ok(()) => Ok(()),
            Err(RelayError::Expired) => Err(Retry::Expired),
            Err(e @ RelayError::Sabr(AttestationRequired | Reload)) => {
                self.refusal = Some(e);
                Err(Retry::Expired)
            }
            Err(e @ RelayError::Sabr(_)) => Err(Retry::Fatal(e)),
            Err(e) => Err(Retry::Again(e.to_string())),
        }
    }

    /// Copies a body that starts at object offset `at` into the claimed
    /// blocks; returns the offset it ended at.
    async fn read_body(&mut self, mut body: hyper::body::Incoming, mut at: u64) -> Result<u64, Retry> {
        let Some((start, _)) = self.span() else { return Ok(at) };
        let idle = self.shared.settings.idle;
        loop {
            // Publish what is copied whenever the origin has nothing more ready.
            let next = match body.frame().now_or_never() {
                Some(next) => next,
                None => {
                    self.writer.flush();
                    match tokio::time::timeout(idle, body.frame()).await {
                        Err(_) => {
                            return Err(Retry::Again(format!("the origin sent nothing for {} s", idle.as_secs())));
                        }
                        Ok(next) => next,
                    }
                }
            };
            let frame = match next {
                None => return Ok(at),
                Some(Err(e)) => return Err(Retry::Again(format!("the connection failed: {e}"))),
                Some(Ok(frame)) => frame,
            };
            let Ok(mut data) = frame.into_data() else { continue };
            self.shared.metrics.relay.origin_bytes.inc_by(data.len() as u64);
            self.traffic.fetched(data.len() as u64);
            // Bytes before the job's position (a whole-file answer) are skipped.
            if at < start {
                let skip = (start - at).min(data.len() as u64);
                at += skip;
                let _ = data.split_to(skip as usize);
            }
            if !data.is_empty() {
                let pos = at;
                at += data.len() as u64;
                if !self.writer.write(pos, &data) {
                    return Ok(at);
                }
            }
        }
    }

    /// Checks a response head against what is known of the object; sets the
    /// object's meta on its first answer. Returns whether to read the body.
    fn accept(&mut self, head: Head, meta_known: bool) -> Result<bool, Retry> {
        let mut store = self.shared.lock();
        let Some(obj) = store.get_mut(&self.key) else { return Ok(false) };
        match &obj.meta {
            Some(m) if m.len != head.meta.len && head.meta.len.is_some() && m.len.is_some() => {
                drop(store);
                self.reset();
                return Err(Retry::Fatal(RelayError::Changed));
            }
            Some(_) => {}
            None => {
                obj.meta = Some(own_meta(&self.shared, &self.key, head.meta.clone()));
                if let Some(disk) = self.shared.disk_for(Some(obj)) {
                    disk.save_meta(&self.key, obj.meta.as_ref().expect("just set"));
                }
            }
        }
        let meta = obj.meta.clone().expect("set above");
        let count = obj.block_count().unwrap_or(u64::MAX);
        // Claimed blocks past the end, and everything when unstored, are
        // released; their readers look again and find the end (or a pipe).
        let beyond: Vec<u64> = self.writer.owned.keys().copied().filter(|&b| b >= count || !meta.stored).collect();
        for b in beyond {
            self.writer.owned.remove(&b);
            store.drop_block(&self.key, b, None);
        }
        // Readers waiting for the length can go on.
        for fill in self.writer.owned.values() {
            fill.notify.notify_waiters();
        }
        drop(store);
        if !meta_known && !head.meta.ranged && meta.stored {
            // A whole-file origin: this one answer fills every missing block.
            self.claim_rest();
        }
        Ok(!self.writer.owned.is_empty() && head.start <= self.span().map_or(0, |s| s.0))
    }

    /// Claims every missing block of a whole-file object for this job.
    fn claim_rest(&mut self) {
        let mut store = self.shared.lock();
        let count = store.get(&self.key).and_then(|o| o.block_count()).unwrap_or(0);
        for b in 0..count {
            if let Some(fill) = store.open(&self.key, b) {
                self.writer.owned.insert(b, fill);
            }
        }
    }

    /// The object's bytes changed: everything stored is dropped.
    fn reset(&mut self) {
        let mut store = self.shared.lock();
        let Some(obj) = store.get_mut(&self.key) else { return };
        obj.meta = None;
        store.drop_all(&self.key, Some(&RelayError::Changed));
        self.writer.owned.clear();
    }
}

/// Why reading a response stopped short.
pub(super) enum Retry {
    /// Try again from the next missing byte (after a pause).
    Again(String),
    /// The URL was refused: get a new one and try again.
    Expired,
    /// Nothing more to try.
    Fatal(RelayError),
}

impl From<ProxyError> for Retry {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Expired(_) => Retry::Expired,
            ProxyError::Refused(m) => Retry::Fatal(RelayError::Refused(m)),
            ProxyError::Status(s) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Retry::Again(format!("the origin answered {s}"))
            }
            ProxyError::Status(s) => Retry::Fatal(RelayError::Status(s)),
            ProxyError::Connect(m) => Retry::Again(m),
        }
    }
}

impl From<Retry> for RelayError {
    fn from(r: Retry) -> Self {
        match r {
            Retry::Again(m) => RelayError::Unreachable(m),
            Retry::Expired => RelayError::Expired,
            Retry::Fatal(e) => e,
        }
    }
}

/// One request: its URL, and the `Range` header when the header asks.
pub(super) struct Plan {
    pub(super) url: String,
    pub(super) header: Option<(u64, u64)>,
    /// The first byte asked for.
    start: u64,
    /// googlevideo's `range=`: a 200 carries exactly the range.
    pub(super) query: bool,
    /// `clen=` of a googlevideo URL: the file's length.
    clen: Option<u64>,
}

impl Plan {
    pub(super) fn new(url: &str, start: u64, end: u64, whole: bool) -> Plan {
        let parsed = Url::parse(url).ok();
        let googlevideo = parsed.as_ref().and_then(Url::host_str).is_some_and(|h| h.ends_with(".googlevideo.com"));
        let clen =
            parsed.as_ref().and_then(|u| u.query_pairs().find(|(k, _)| k == "clen")).and_then(|(_, v)| v.parse().ok());
        match parsed {
            Some(mut u) if googlevideo && clen.is_some() && !whole => {
                let kept: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k != "range")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(kept).append_pair("range", &format!("{start}-{}", end - 1));
                Plan { url: u.into(), header: None, start, query: true, clen }
            }
            _ if whole => Plan { url: url.to_owned(), header: None, start: 0, query: false, clen: None },
            _ => Plan { url: url.to_owned(), header: Some((start, end - 1)), start, query: false, clen: None },
        }
    }

    /// Where the body of a successful answer starts in the object.
    fn body_start(&self, headers: &HeaderMap, status: StatusCode) -> u64 {
        match status {
            StatusCode::PARTIAL_CONTENT => content_range(headers).map_or(self.start, |(first, _)| first),
            _ if self.query => self.start,
            _ => 0,
        }
    }
}

/// `Content-Range: bytes first-last/total` → `(first, total)`; `total` is
/// `None` for `*`.
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let first = match span.trim() {
        "*" => 0,
        s => s.split_once('-')?.0.trim().parse().ok()?,
    };
    Some((first, total))
}

/// What an object's first answer makes its meta: reelay's own entity tag;
/// a file the origin sends whole, every time, kept only if it fits.
pub(super) fn own_meta(shared: &Shared, key: &str, mut meta: Meta) -> Meta {
    if let Some(len) = meta.len {
        meta.etag = Some(own_etag(key, len));
    }
    if !meta.ranged {
        meta.stored = meta.len.is_some_and(|len| len <= shared.settings.memory / 2);
    }
    meta
}

/// The entity tag reelay gives a stored object: strong, and the same on
/// every instance and after every restart (it names what the bytes are and
/// their length, not which origin server sent them), so a cache in front,
/// a resuming download (`If-Range`) and nginx's slices agree on it.
fn own_etag(key: &str, len: u64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(key.as_bytes()).chain_update(len.to_le_bytes()).finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"r-{hex}\"")
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Reads a response head: where its body starts and what it says of the
/// object.
pub(super) fn interpret(status: StatusCode, headers: &HeaderMap, plan: &Plan) -> Result<Head, Retry> {
    let content_length = || header_text(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let mut meta = Meta {
        len: None,
        content_type: header_text(headers, header::CONTENT_TYPE),
        etag: header_text(headers, header::ETAG),
        last_modified: header_text(headers, header::LAST_MODIFIED),
        ranged: true,
        stored: true,
    };
    let start = match status {
        StatusCode::PARTIAL_CONTENT => {
            let (first, total) =
                content_range(headers).ok_or_else(|| Retry::Again("a 206 without a readable Content-Range".into()))?;
            if first != plan.start {
                return Err(Retry::Again(format!("asked for byte {}, the origin sent from {first}", plan.start)));
            }
            meta.len = total;
            if total.is_none() {
                return Err(Retry::Fatal(RelayError::Unreachable("the origin does not say the file's length".into())));
            }
            first
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            meta.len = content_range(headers).and_then(|(_, total)| total);
            if meta.len.is_none() {
                return Err(Retry::Fatal(RelayError::Status(status)));
            }
            u64::MAX
        }
        s if s.is_success() && plan.query => {
            meta.len = plan.clen;
            plan.start
        }
        s if s.is_success() => {
            // The whole file: the origin ignores ranges (or was not asked).
            meta.ranged = false;
            meta.len = content_length();
            0
        }
        s => return Err(Retry::Fatal(RelayError::Status(s))),
    };
    Ok(Head { start, meta })
}
