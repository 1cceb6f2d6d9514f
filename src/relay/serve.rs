//! A client's request for an object, answered from the store: the length
//! and validators are learned (from the store, the disk tier's record, or
//! the first upstream answer), `Range` and the conditionals are decided by
//! [`super::range`], and the body is a [`super::Reader`] whose first bytes
//! are in hand before the head goes out, so a dead origin is an error
//! rather than an empty `200`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body::{Frame, SizeHint};

use super::pipe::{PipeBody, pipe};
use super::range::{self, Answer, Validators};
use super::store::{BLOCK, Fill, Look};
use super::{Meta, Reader, Relay, RelayError, Shared, Spec, Visit};
use crate::metrics::{Metrics, StreamGuard};

/// An answer to a stream request: status, headers and body.
pub type Reply = http::Response<Body>;

/// The body of a relayed response.
pub enum Body {
    Empty,
    /// Bytes from the store: the first ones (already read), then a reader.
    Stream(Streamed),
    /// An origin response piped through.
    Pipe(PipeBody),
    /// A small body in hand (`None` once sent).
    Full(Option<Bytes>),
}

pub struct Streamed {
    first: Option<Bytes>,
    rest: Pin<Box<dyn Stream<Item = Result<Bytes, RelayError>> + Send>>,
    /// Bytes still to send, when known.
    remaining: Option<u64>,
    /// Counts the stream for clients (not for ffmpeg's inputs).
    guard: Option<StreamGuard>,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Pipe(p) => Pin::new(p).poll_frame(cx),
            Body::Stream(s) => {
                let next = match s.first.take() {
                    Some(first) => Some(Ok(first)),
                    None => match s.rest.as_mut().poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(next) => next,
                    },
                };
                Poll::Ready(next.map(|item| match item {
                    Ok(data) => {
                        if let Some(g) = &s.guard {
                            g.add_bytes(data.len() as u64);
                        }
                        if let Some(r) = &mut s.remaining {
                            *r = r.saturating_sub(data.len() as u64);
                        }
                        Ok(Frame::data(data))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a relayed stream broke off");
                        Err(e.into())
                    }
                }))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Pipe(p) => p.is_end_stream(),
            Body::Stream(s) => s.remaining == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Pipe(p) => p.size_hint(),
            Body::Stream(s) => s.remaining.map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl Relay {
    /// Serves a client's GET or HEAD for the object `spec` names.
    pub async fn serve(&self, spec: Spec, method: &Method, headers: &HeaderMap) -> Result<Reply, RelayError> {
        self.serve_counted(spec, method, headers, true).await
    }

    /// Serves a request; `counted` says whether it is a client's stream (in
    /// `active_streams` and the bytes served) or the relay's own (ffmpeg's).
    pub(super) async fn serve_counted(
        &self,
        spec: Spec,
        method: &Method,
        headers: &HeaderMap,
        counted: bool,
    ) -> Result<Reply, RelayError> {
        let shared = &self.0;
        let visit = shared.register(spec);
        if method == Method::GET
            && let Some(reply) = self.serve_seek(&visit, headers, counted).await
        {
            return Ok(reply);
        }
        let (meta, waited) = shared.meta(&visit.key, range::first_byte(headers)).await?;
        if waited || visit.following {
            // Another request's fetch brought the head, or is running: this
            // one follows it.
            shared.metrics.relay.coalesced.inc();
        }
        if !meta.stored {
            return self.pipe(&visit.key, method, headers, counted).await;
        }
        answer(visit, &meta, method, headers, counted, waited).await
    }

    /// A pipe from the origin for an object the store does not keep.
    pub(super) async fn pipe(
        &self,
        key: &Arc<str>,
        method: &Method,
        headers: &HeaderMap,
        counted: bool,
    ) -> Result<Reply, RelayError> {
        let shared = &self.0;
        let source = match shared.lock().get(key).map(|o| &o.kind) {
            Some(super::Kind::Fetched { source, .. }) => source.clone(),
            _ => return Err(RelayError::Gone("the stream is not available".into())),
        };
        let mut stale = None;
        loop {
            let loc = source.locate(stale.as_deref()).await?;
            match shared.upstream.open(method, &loc.url, &loc.via(), headers).await {
                Ok(fetched) => {
                    shared.metrics.relay.pipes.inc();
                    let guard = counted.then(|| StreamGuard::of(shared.metrics.clone(), key));
                    return Ok(pipe(fetched, guard, shared.settings.idle));
                }
                Err(super::ProxyError::Expired(_)) if stale.is_none() => stale = Some(loc.url),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A body of bytes from the store: `first` (in hand), then the reader's;
/// `len` in all, when known.
pub(super) fn streamed(metrics: &Arc<Metrics>, first: Bytes, reader: Reader, len: Option<u64>, counted: bool) -> Body {
    let guard = counted.then(|| StreamGuard::of(metrics.clone(), reader.key()));
    let rest = futures_util::stream::unfold(reader, |mut r| async move { r.next().await.map(|i| (i, r)) });
    Body::Stream(Streamed { first: Some(first), rest: Box::pin(rest), remaining: len, guard })
}

/// A body of bytes in hand (a seek's exact read), counted as a client's
/// stream of `key` when `counted`.
pub(super) fn whole(metrics: &Arc<Metrics>, key: &str, bytes: Bytes, counted: bool) -> Body {
    let guard = counted.then(|| StreamGuard::of(metrics.clone(), key));
    let remaining = Some(bytes.len() as u64);
    Body::Stream(Streamed { first: Some(bytes), rest: Box::pin(futures_util::stream::empty()), remaining, guard })
}

/// A body of `len` bytes from `stream` (a composed file's), counted as a
/// client's stream of the object `key`.
pub(super) fn composed_body(
    metrics: &Arc<Metrics>,
    key: &str,
    stream: impl Stream<Item = Result<Bytes, RelayError>> + Send + 'static,
    len: u64,
) -> Body {
    let guard = Some(StreamGuard::of(metrics.clone(), key));
    Body::Stream(Streamed { first: None, rest: Box::pin(stream), remaining: Some(len), guard })
}

/// The response for an object of known length; `waited` says whether the
/// request already counted as joining another's fetch.
pub(super) async fn answer(
    visit: Visit,
    meta: &Meta,
    method: &Method,
    headers: &HeaderMap,
    counted: bool,
    waited: bool,
) -> Result<Reply, RelayError> {
    let len = meta.len.unwrap_or(0);
    let validators = Validators { etag: meta.etag.clone(), last_modified: meta.last_modified.clone() };
    let (status, start, end) = match decide(headers, len, &validators) {
        Ok(range) => range,
        Err(status) => return Ok(early(head(status, meta, Body::Empty), len)),
    };
    let body = if method == Method::HEAD || start == end {
        Body::Empty
    } else {
        let shared = visit.shared.clone();
        let joined = matches!(shared.lock().get(&visit.key).and_then(|o| o.look(start / BLOCK)), Some(Look::Wait(_)));
        if joined && !waited && !visit.following {
            // Another request's fetch is bringing these bytes: this one follows it.
            shared.metrics.relay.coalesced.inc();
        }
        let mut reader = Reader::new(visit, start, Some(end));
        match reader.next().await {
            Some(Err(e)) => return Err(e),
            None => Body::Empty,
            Some(Ok(first)) => streamed(&shared.metrics, first, reader, Some(end - start), counted),
        }
    };
    Ok(framed(head(status, meta, body), start..end, len))
}

/// How a request for an object of `len` bytes is answered: the status and
/// the bytes to send, or the status of an answer with no body (`304`,
/// `416`: see [`early`]).
pub(super) fn decide(
    headers: &HeaderMap,
    len: u64,
    validators: &Validators,
) -> Result<(StatusCode, u64, u64), StatusCode> {
    match range::answer(headers, len, validators) {
        Answer::NotModified => Err(StatusCode::NOT_MODIFIED),
        Answer::Unsatisfiable => Err(StatusCode::RANGE_NOT_SATISFIABLE),
        Answer::Full => Ok((StatusCode::OK, 0, len)),
        Answer::Part { start, end } => Ok((StatusCode::PARTIAL_CONTENT, start, end + 1)),
    }
}

/// `reply`, an answer with no body, with the length a `416` names.
pub(super) fn early(mut reply: Reply, len: u64) -> Reply {
    if reply.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        reply.headers_mut().insert(header::CONTENT_RANGE, value(format!("bytes */{len}")));
    }
    reply
}

/// `reply` (a `200` or `206` of `bytes` of `len`) with its length, ranges
/// and, for a part, which part.
pub(super) fn framed(mut reply: Reply, bytes: std::ops::Range<u64>, len: u64) -> Reply {
    let partial = reply.status() == StatusCode::PARTIAL_CONTENT;
    let h = reply.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.end - bytes.start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        h.insert(header::CONTENT_RANGE, value(format!("bytes {}-{}/{len}", bytes.start, bytes.end - 1)));
    }
    reply
}

fn value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("digits and ASCII are a valid header")
}

/// A response with the object's type and validators (the origin's
/// `Cache-Control` stays behind: the route says what caches may keep).
pub(super) fn head(status: StatusCode, meta: &Meta, body: Body) -> Reply {
    let mut reply = http::Response::new(body);
    *reply.status_mut() = status;
    let h = reply.headers_mut();
    let text = |s: &Option<String>| s.as_deref().and_then(|s| HeaderValue::from_str(s).ok());
    let content_type = text(&meta.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, content_type);
    for (name, v) in [(header::ETAG, &meta.etag), (header::LAST_MODIFIED, &meta.last_modified)] {
        if let Some(v) = text(v) {
            h.insert(name, v);
        }
    }
    reply
}

impl Shared {
    /// The object's meta, fetching the block at `start` to learn it when
    /// nothing is known yet; and whether it waited for another request's
    /// fetch to learn it.
    pub(super) async fn meta(self: &Arc<Self>, key: &Arc<str>, start: u64) -> Result<(Meta, bool), RelayError> {
        let mut joined = false;
        loop {
            let fill: Arc<Fill> = {
                let mut store = self.lock();
                let Some(obj) = store.get(key) else {
                    return Err(RelayError::Gone("the stream is not available".into()));
                };
                if let Some(m) = &obj.meta {
                    return Ok((m.clone(), joined));
                }
                let b = start / BLOCK;
                match obj.look(b) {
                    Some(Look::Wait(fill)) => {
                        joined = true;
                        fill
                    }
                    Some(Look::Ready) => return Err(RelayError::Gone("the stream has no length".into())),
                    None => self
                        .claim(&mut store, key, b, 1)
                        .ok_or_else(|| RelayError::Gone("the stream is not available".into()))?,
                }
            };
            let notified = fill.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.lock().get(key).and_then(|o| o.meta.clone()) {
                return Ok((m, joined));
            }
            if fill.error.get().is_none() {
                notified.await;
            }
            if let Some(e) = fill.error.get() {
                return Err(e.clone());
            }
        }
    }
}
