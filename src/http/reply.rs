//! The response shapes every route shares: the success envelope, JSON,
//! timestamps, the `302` to a stream and the header naming its format.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};

use super::caching;
use super::error::ApiError;
use crate::service::answer::{self, Answer, Keep};

/// Header naming the format (or `video+audio` formats) a stream comes from.
pub const FORMAT_HEADER: HeaderName = HeaderName::from_static("x-reelay-format");

/// A `302` to `location`, never cached (stream URLs expire).
pub fn found(location: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location).map_err(|_| ApiError::BadGateway {
        error: "Unusable stream URL",
        detail: "the extractor returned a URL that is not valid in a header".into(),
    })?;
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub fn format_header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("unknown"))
}

pub use crate::service::rewritten::HLS_TYPE;

/// An RFC 3339 UTC timestamp to the second, as the reference prints them.
/// Formatted once a second per thread, not once a response.
pub fn timestamp() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = chrono::Utc::now();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != now.timestamp() {
            *second = now.timestamp();
            *text = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
        text.clone()
    })
}

/// The success envelope around JSON that is already serialised. The data
/// is not copied: the body is the envelope's head, the cached bytes (shared),
/// and its tail, written out together.
pub fn success(message: &'static str, data: Bytes) -> Response {
    let mut head = BytesMut::with_capacity(message.len() + 48);
    head.put_slice(b"{\"success\":true,\"message\":\"");
    head.put_slice(message.as_bytes()); // plain ASCII, nothing to escape
    head.put_slice(b"\",\"data\":");
    let mut tail = BytesMut::with_capacity(40);
    tail.put_slice(b",\"timestamp\":\"");
    tail.put_slice(timestamp().as_bytes());
    tail.put_slice(b"\"}");
    let body = Parts { parts: [head.freeze(), data, tail.freeze()], next: 0 };
    let mut resp = (StatusCode::OK, Body::new(body)).into_response();
    let h = resp.headers_mut();
    h.reserve(HEADERS);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A body made of a few buffers, sent as they are, with an exact length.
struct Parts {
    parts: [Bytes; 3],
    next: usize,
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let i = self.next;
        self.next += 1;
        std::task::Poll::Ready(self.parts.get_mut(i).map(|b| Ok(http_body::Frame::data(std::mem::take(b)))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.parts.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.parts[self.next.min(3)..].iter().map(|b| b.len() as u64).sum())
    }
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    let h = resp.headers_mut();
    h.reserve(HEADERS);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The headers a JSON answer ends up with (its type, CORS, caching, the
/// request id, three security headers): room for them when it is made, as
/// a header map that grows rehashes what it holds.
const HEADERS: usize = 10;

/// `value` as JSON, written into a buffer sized for the API's small
/// answers (`serde_json::to_vec` starts at 128 bytes and grows by copying).
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, value).expect("the API's answers are plain structs");
    out.into()
}

/// A use case's [`Answer`] as a response: its body, `Content-Type` (on a
/// relay reply, only when it succeeded), the format header, the name it is
/// saved under, and what a shared cache may keep (`caching`).
pub fn write(a: Answer) -> Response {
    let mut resp = match a.body {
        answer::Body::Text(t) => {
            let mut resp = Response::new(Body::from(t.body));
            resp.headers_mut().insert(header::ETAG, t.etag);
            resp
        }
        answer::Body::Untagged(b) => Response::new(Body::from(b)),
        answer::Body::Relay(reply) => reply.map(Body::new),
        answer::Body::Found(url) => match found(&url) {
            Ok(resp) => resp,
            Err(e) => return e.into_response(),
        },
    };
    let ok = resp.status().is_success();
    let h = resp.headers_mut();
    if let Some(t) = a.content_type.filter(|_| ok) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
    }
    if let Some(f) = &a.format {
        h.insert(FORMAT_HEADER, format_header(f));
    }
    if let Some(d) = a.disposition.filter(|_| ok)
        && let Ok(v) = HeaderValue::from_str(&d)
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    match a.keep {
        Keep::Unsaid => {}
        Keep::NoStore => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Keep::NoCache => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        Keep::Listing { expires, lifetime } => caching::listing(h, expires, lifetime),
        Keep::Until(expires) => caching::immutable_until(h, expires),
        Keep::Briefly(secs) => {
            h.insert(header::CACHE_CONTROL, format!("max-age={secs}").parse::<HeaderValue>().expect("digits"));
        }
        Keep::Public(secs) => caching::for_secs(h, secs, false),
        Keep::LivePart => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600, immutable"));
        }
    }
    resp
}
