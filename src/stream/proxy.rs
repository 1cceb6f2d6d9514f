//! The byte relay: one shared, pooled upstream client; the format's own
//! headers go upstream, the client's only through an allowlist, and only an
//! allowlist of upstream headers comes back.
//!
//! Bodies are relayed chunk by chunk as the client reads them, so memory per
//! stream stays at a few chunks however fast the origin or slow the client.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;

use crate::extract::Headers;
use crate::metrics::StreamGuard;
use crate::net::{GuardedResolver, check_literal};

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

pub struct Upstream {
    /// Shared by every stream so connections to the origin are reused.
    client: reqwest::Client,
    /// `ALLOW_PRIVATE_NETWORKS`, checked for literal-IP URLs.
    allow_private: bool,
}

impl Upstream {
    pub fn new(allow_private: bool) -> Self {
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if let Err(why) = check_literal(attempt.url(), allow_private) {
                attempt.error(why)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(policy)
            .connect_timeout(Duration::from_secs(10))
            // Idle time between reads, not a total: long videos take long.
            .read_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .expect("static client settings are valid");
        Upstream { client, allow_private }
    }

    /// Opens `url` with the format's headers and the client's allowed ones.
    /// `HEAD` from the client is `HEAD` upstream.
    pub async fn open(
        &self,
        method: &Method,
        url: &str,
        format_headers: &Headers,
        client: &HeaderMap,
    ) -> Result<reqwest::Response, ProxyError> {
        let parsed = url::Url::parse(url).map_err(|e| ProxyError::Connect(e.to_string()))?;
        check_literal(&parsed, self.allow_private).map_err(ProxyError::Refused)?;
        let mut headers = HeaderMap::new();
        for (k, v) in format_headers {
            if NOT_FORWARDED.contains(&k.to_ascii_lowercase().as_str()) {
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
        let resp = self.client.request(method, parsed).headers(headers).send().await.map_err(|e| {
            if is_refused(&e) { ProxyError::Refused(error_chain(&e)) } else { ProxyError::Connect(error_chain(&e)) }
        })?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED || status == StatusCode::RANGE_NOT_SATISFIABLE {
            Ok(resp)
        } else if status == StatusCode::FORBIDDEN || status == StatusCode::GONE {
            Err(ProxyError::Expired(status))
        } else {
            Err(ProxyError::Status(status))
        }
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

fn is_refused(e: &reqwest::Error) -> bool {
    let chain = error_chain(e);
    chain.contains("no public address") || chain.contains("private or local address")
}

/// Turns an upstream response into the client's: same status, allowed
/// headers, body relayed as it arrives and counted into the metrics.
pub fn relay(upstream: reqwest::Response, guard: StreamGuard) -> Response {
    let status = upstream.status();
    let mut builder = Response::builder().status(status);
    let headers = builder.headers_mut().expect("fresh builder");
    for name in &TO_CLIENT {
        if let Some(v) = upstream.headers().get(name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    let body = upstream.bytes_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            guard.add_bytes(bytes.len() as u64);
        }
        chunk
    });
    builder.body(Body::from_stream(body)).expect("status and headers came from a valid response")
}
