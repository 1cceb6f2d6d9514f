//! The HTTP client every byte from an origin comes through: pooled, each
//! redirect hop checked against private addresses, the format's own headers
//! sent and the client's only through an allowlist.
//!
//! It keeps two pools of connections, because their bodies are read
//! differently:
//!
//! - `fetch` (the relay's ranged fetches) reads as fast as the origin sends
//!   into the shared store, so its read buffer may grow (hyper's adaptive
//!   buffer, up to [`FETCH_BUF`]): bigger frames, fewer copies and writes.
//! - `pipe` (thumbnails, playlists, origins that ignore ranges on objects too
//!   big to store) hands each frame to one client as it reads, so its buffer
//!   is capped at [`PIPE_BUF`]: a slow client costs a few small buffers.
//!
//! Owns: origin connections and header rules. May import `egress` and `net`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

use crate::egress::connect::Connector;
use crate::egress::{Egress, Route};
use crate::net::{GuardedResolver, check_literal};

/// The request headers a URL needs (User-Agent, Referer, cookies), as the
/// extractor gave them for a format.
pub type Headers = BTreeMap<String, String>;

/// The largest read buffer of a piped origin response, and so the largest
/// frame one client's stream holds (BENCHMARKS.md: memory per slow stream).
pub const PIPE_BUF: usize = 16 * 1024;
/// The largest read buffer of a ranged fetch into the store.
pub const FETCH_BUF: usize = 512 * 1024;
/// Connecting to an origin.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waiting for a response head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;

/// Client request headers that may go upstream on a pipe: what seeking and
/// revalidation need. Never Host, Cookie or Authorization.
const FROM_CLIENT: [HeaderName; 5] =
    [header::RANGE, header::IF_RANGE, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::ACCEPT];

/// Format headers from the extractor that must not be copied as they are.
const NOT_FORWARDED: [&str; 5] = ["host", "content-length", "connection", "transfer-encoding", "accept-encoding"];

#[derive(Debug, Clone, thiserror::Error)]
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

type Pool = Client<HttpsConnector<Connector>, Full<Bytes>>;

/// The two pools of one route.
struct Pools {
    /// Ranged fetches into the store.
    fetch: Pool,
    /// Responses relayed to one client as they are read.
    pipe: Pool,
    /// Plain-http requests through the route's HTTP proxy carry this.
    proxy_auth: Option<HeaderValue>,
}

/// Routes whose pools are kept (each proxy, and recent source addresses).
const ROUTES_KEPT: u64 = 1024;

pub struct Upstream {
    /// The server's own address, no proxy: most fetches.
    direct: std::sync::Arc<Pools>,
    /// Pools of other routes (`EGRESS_PROXIES`, `EGRESS_SOURCE_CIDR`), made
    /// on first use and dropped when idle.
    routes: crate::lazy::Lazy<moka::sync::Cache<Route, std::sync::Arc<Pools>>>,
    /// The proxies cached routes name.
    egress: std::sync::Arc<Egress>,
    resolver: GuardedResolver,
    /// TLS settings with the platform's verifier, made once: making them
    /// reads the system's certificates (~4 ms), too slow for each route.
    tls: rustls::ClientConfig,
    /// `ALLOW_PRIVATE_NETWORKS`, checked for literal-IP URLs on every hop.
    allow_private: bool,
}

/// Which pool a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Fetch,
    Pipe,
}

impl Upstream {
    /// `resolve` pins host names to addresses (like curl's `--resolve`):
    /// `UPSTREAM_RESOLVE`. Pinned addresses pass the private-address guard
    /// like any other.
    pub fn new(allow_private: bool, resolve: HashMap<String, IpAddr>, egress: std::sync::Arc<Egress>) -> Self {
        let resolver = GuardedResolver { allow_private, pinned: std::sync::Arc::new(resolve) };
        let tls = rustls::ClientConfig::builder()
            .try_with_platform_verifier()
            .expect("the platform's certificate verifier starts")
            .with_no_client_auth();
        let routes = crate::lazy::lazy(|| {
            moka::sync::Cache::builder().max_capacity(ROUTES_KEPT).time_to_idle(Duration::from_secs(600)).build()
        });
        let direct =
            std::sync::Arc::new(pools(&Connector::new(resolver.clone(), &tls, CONNECT_TIMEOUT, None, None), &tls));
        Upstream { direct, routes, egress, resolver, tls, allow_private }
    }

    /// The pools of `route`; a route whose proxy is no longer configured
    /// cannot be followed (its URLs would be refused from elsewhere).
    fn pools(&self, route: &Route) -> Result<std::sync::Arc<Pools>, ProxyError> {
        if route.is_direct() {
            return Ok(self.direct.clone());
        }
        let proxy = match route.proxy.as_deref() {
            None => None,
            Some(label) => Some(
                self.egress
                    .proxy(label)
                    .ok_or_else(|| ProxyError::Connect(format!("egress proxy {label} is no longer configured")))?,
            ),
        };
        Ok(self.routes.get_with_by_ref(route, || {
            std::sync::Arc::new(pools(
                &Connector::new(self.resolver.clone(), &self.tls, CONNECT_TIMEOUT, route.source, proxy),
                &self.tls,
            ))
        }))
    }

    /// Opens `url` for a pipe with the format's headers and the client's
    /// allowed ones, following redirects (each hop checked). `HEAD` from the
    /// client is `HEAD` upstream.
    pub async fn open(
        &self,
        method: &Method,
        url: &str,
        via: &Via<'_>,
        client: &HeaderMap,
    ) -> Result<Fetched, ProxyError> {
        let Via { headers: format_headers, route } = *via;
        let mut headers = request_headers(format_headers);
        for name in &FROM_CLIENT {
            if let Some(v) = client.get(name) {
                headers.insert(name.clone(), v.clone());
            }
        }
        let method = if method == Method::HEAD { Method::HEAD } else { Method::GET };
        self.request(Use::Pipe, route, method, url, headers, Bytes::new()).await
    }

    /// Opens `url` for the store: the format's headers, an identity
    /// encoding, and `range` (`Range: bytes=first-last`) when given.
    pub async fn fetch(&self, url: &str, via: &Via<'_>, range: Option<(u64, u64)>) -> Result<Fetched, ProxyError> {
        let Via { headers: format_headers, route } = *via;
        let mut headers = request_headers(format_headers);
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some((first, last)) = range {
            let value = HeaderValue::try_from(format!("bytes={first}-{last}")).expect("digits are a valid header");
            headers.insert(header::RANGE, value);
        }
        self.request(Use::Fetch, route, Method::GET, url, headers, Bytes::new()).await
    }

    /// A POST of `body` with `headers` (a streaming protocol's request, such
    /// as SABR's), from the fetch pool, on the format's route.
    pub async fn post(&self, url: &str, via: &Via<'_>, extra: HeaderMap, body: Bytes) -> Result<Fetched, ProxyError> {
        let Via { headers: format_headers, route } = *via;
        let mut headers = request_headers(format_headers);
        headers.extend(extra);
        self.request(Use::Fetch, route, Method::POST, url, headers, body).await
    }

    async fn request(
        &self,
        pool: Use,
        route: &Route,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Fetched, ProxyError> {
        let pools = self.pools(route)?;
        let client = match pool {
            Use::Fetch => &pools.fetch,
            Use::Pipe => &pools.pipe,
        };
        let mut url = Url::parse(url).map_err(|e| ProxyError::Connect(e.to_string()))?;
        for _ in 0..=MAX_REDIRECTS {
            check_literal(&url, self.allow_private).map_err(ProxyError::Refused)?;
            let uri: Uri =
                url.as_str().parse().map_err(|e: http::uri::InvalidUri| ProxyError::Connect(e.to_string()))?;
            let mut req =
                Request::builder().method(method.clone()).uri(uri).body(Full::new(body.clone())).expect("valid parts");
            *req.headers_mut() = headers.clone();
            if let (Some(auth), "http") = (&pools.proxy_auth, url.scheme()) {
                req.headers_mut().insert(header::PROXY_AUTHORIZATION, auth.clone());
            }
            let response = match tokio::time::timeout(HEAD_TIMEOUT, client.request(req)).await {
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

/// How a video's URL is fetched: the format's headers, and the route its
/// extraction took.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    pub headers: &'a Headers,
    pub route: &'a Route,
}

/// A route's two pools over one connector.
fn pools(connector: &Connector, tls: &rustls::ClientConfig) -> Pools {
    let pool = |buf: usize| {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector.clone());
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http1_max_buf_size(buf)
            .build(https)
    };
    Pools { fetch: pool(FETCH_BUF), pipe: pool(PIPE_BUF), proxy_auth: connector.proxy_authorization() }
}

/// The format's headers as a request's, without those that must not be copied.
fn request_headers(format_headers: &Headers) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in format_headers {
        if NOT_FORWARDED.iter().any(|n| k.eq_ignore_ascii_case(n)) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    headers
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
        tokio::time::timeout(HEAD_TIMEOUT, body.frame()).await.map_err(|_| "the origin stalled".to_owned())?
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
