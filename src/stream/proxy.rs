//! The byte relay: one shared, pooled upstream client; the format's own
//! headers go upstream, the client's only through an allowlist, and only an
//! allowlist of upstream headers comes back.
//!
//! The client is hyper's own (not reqwest) for one reason: its read buffer
//! can be capped. Bodies are relayed frame by frame as the client reads
//! them, and each frame is at most [`RELAY_BUF`] bytes, so a slow client
//! costs a few buffers however fast the origin is (uncapped, hyper's
//! adaptive buffer grows to 400 KiB per stream).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

use crate::extract::Headers;
use crate::metrics::StreamGuard;
use crate::net::{GuardedResolver, check_literal};

/// The largest read from an origin, and so the largest frame a stream holds.
/// 64 KiB relays a fast origin ~1.5× faster but costs a slow client ~300 KiB
/// instead of ~120 KiB (BENCHMARKS.md); memory per stream won.
pub const RELAY_BUF: usize = 16 * 1024;
/// Connecting to an origin.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waiting for a response head, or for the next bytes of a body. There is no
/// limit on a whole transfer: long videos take long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;

/// Client request headers that may go upstream: what seeking and
/// revalidation need. Never Host, Cookie or Authorization.
const FROM_CLIENT: [HeaderName; 5] =
    [header::RANGE, header::IF_RANGE, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::ACCEPT];

/// Upstream response headers that may reach the client. Never Set-Cookie.
const TO_CLIENT: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
];

/// Format headers from the extractor that must not be copied as they are.
const NOT_FORWARDED: [&str; 4] = ["host", "content-length", "connection", "transfer-encoding"];

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The URL or a redirect hop points at a private address.
    #[error("{0}")]
    Refused(String),
    /// The origin answered 403 or 410: the URL has most likely expired.
    #[error("the origin refused the stream URL ({0})")]
    Expired(StatusCode),
    /// The origin answered another error status.
    #[error("the origin answered {0}")]
    Status(StatusCode),
    /// Connecting or reading the response head failed.
    #[error("the origin could not be reached: {0}")]
    Connect(String),
}

/// An origin's response, and the URL it finally came from (after redirects),
/// against which a playlist's relative URIs resolve.
pub struct Fetched {
    pub response: hyper::Response<Incoming>,
    pub url: Url,
}

pub struct Upstream {
    /// Shared by every stream so connections to the origin are reused.
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Empty<Bytes>>,
    /// `ALLOW_PRIVATE_NETWORKS`, checked for literal-IP URLs on every hop.
    allow_private: bool,
}

impl Upstream {
    pub fn new(allow_private: bool) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_platform_verifier()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http1_max_buf_size(RELAY_BUF)
            .build(https);
        Upstream { client, allow_private }
    }

    /// Opens `url` with the format's headers and the client's allowed ones,
    /// following redirects (each hop checked). `HEAD` from the client is
    /// `HEAD` upstream.
    pub async fn open(
        &self,
        method: &Method,
        url: &str,
        format_headers: &Headers,
        client: &HeaderMap,
    ) -> Result<Fetched, ProxyError> {
        let mut url = Url::parse(url).map_err(|e| ProxyError::Connect(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (k, v) in format_headers {
            if NOT_FORWARDED.iter().any(|n| k.eq_ignore_ascii_case(n)) {
                continue;
            }
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                headers.insert(k, v);
            }
        }
        for name in &FROM_CLIENT {
            if let Some(v) = client.get(name) {
                headers.insert(name.clone(), v.clone());
            }
        }
        let method = if method == Method::HEAD { Method::HEAD } else { Method::GET };
        for _ in 0..=MAX_REDIRECTS {
            check_literal(&url, self.allow_private).map_err(ProxyError::Refused)?;
            let uri: Uri =
                url.as_str().parse().map_err(|e: axum::http::uri::InvalidUri| ProxyError::Connect(e.to_string()))?;
            let mut req = Request::builder().method(method.clone()).uri(uri).body(Empty::new()).expect("valid parts");
            *req.headers_mut() = headers.clone();
            let response = match tokio::time::timeout(IDLE_TIMEOUT, self.client.request(req)).await {
                Err(_) => return Err(ProxyError::Connect("no response head within 30 s".into())),
                Ok(Err(e)) if is_refused(&e) => return Err(ProxyError::Refused(error_chain(&e))),
                Ok(Err(e)) => return Err(ProxyError::Connect(error_chain(&e))),
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            let location = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok());
            if let (true, Some(location)) = (status.is_redirection() && status != StatusCode::NOT_MODIFIED, location) {
                let next = url.join(location).map_err(|e| ProxyError::Connect(format!("bad redirect: {e}")))?;
                if next.host_str() != url.host_str() {
                    // Credentials meant for one host never follow a redirect to another.
                    headers.remove(header::COOKIE);
                    headers.remove(header::AUTHORIZATION);
                }
                url = next;
                continue;
            }
            return if status.is_success()
                || status == StatusCode::NOT_MODIFIED
                || status == StatusCode::RANGE_NOT_SATISFIABLE
            {
                Ok(Fetched { response, url })
            } else if status == StatusCode::FORBIDDEN || status == StatusCode::GONE {
                Err(ProxyError::Expired(status))
            } else {
                Err(ProxyError::Status(status))
            };
        }
        Err(ProxyError::Connect(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn is_refused(e: &hyper_util::client::legacy::Error) -> bool {
    let chain = error_chain(e);
    chain.contains("no public address") || chain.contains("private or local address")
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) =
        tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await.map_err(|_| "the origin stalled".to_owned())?
    {
        if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
            out.extend_from_slice(&data);
            if out.len() > limit {
                return Err("the response is too large".into());
            }
        }
    }
    Ok(out)
}

/// Turns an upstream response into the client's: same status, allowed
/// headers, body relayed as it arrives and counted into the metrics.
pub fn relay(upstream: Fetched, guard: StreamGuard) -> Response {
    let (parts, body) = upstream.response.into_parts();
    let mut builder = Response::builder().status(parts.status);
    let headers = builder.headers_mut().expect("fresh builder");
    for name in &TO_CLIENT {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    let body = RelayBody { inner: body, guard, idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)), waiting: false };
    builder.body(Body::new(body)).expect("status and headers came from a valid response")
}

/// The relayed body: counts what it hands on, and gives up on an origin that
/// sends nothing for [`IDLE_TIMEOUT`] (time spent waiting for a slow client
/// does not count).
struct RelayBody {
    inner: Incoming,
    guard: StreamGuard,
    idle: Pin<Box<tokio::time::Sleep>>,
    /// True while waiting on the origin; the idle clock starts when it becomes true.
    waiting: bool,
}

impl http_body::Body for RelayBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.waiting {
            this.waiting = true;
            this.idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                if let Some(data) = frame.data_ref() {
                    this.guard.add_bytes(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("the origin sent nothing for 30 s".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
