//! CORS (`CORS_ORIGINS`): which sites' pages may read the answers. Every
//! header is made once at start-up; per request `observe` inserts the two
//! or three that apply, and answers a preflight (`OPTIONS`) itself.
//!
//! Written here rather than taken from tower-http's `CorsLayer`: that layer
//! builds a header map per request and merges it into the answer, and
//! around axum's router it is cloned per request: 12% of a `/health`'s
//! instructions (callgrind) for two constant headers.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// The request headers a page may send (preflight).
const ALLOW_HEADERS: &str = "range,authorization,content-type,x-api-key,x-request-id";
/// The answer headers a page may read.
const EXPOSE_HEADERS: &str = "content-range,content-length,accept-ranges,retry-after,x-request-id,\
                              x-reelay-format,ratelimit-limit,ratelimit-remaining,ratelimit-reset";
const ALLOW_METHODS: &str = "GET,HEAD,POST,OPTIONS";
/// How long a browser may keep a preflight's answer.
const MAX_AGE: &str = "3600";
/// With a list, the answer depends on these request headers.
const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

/// The allowed origins, parsed from `CORS_ORIGINS`.
pub struct Cors {
    /// `None` for `*` (every site, the same answer for all); otherwise the
    /// origins echoed back, each answer varying on the request's `Origin`.
    origins: Option<Vec<HeaderValue>>,
}

impl Cors {
    /// `*`, or a comma list of origins (entries that are not header values are skipped).
    pub fn new(origins: &str) -> Self {
        if origins.trim() == "*" {
            return Cors { origins: None };
        }
        Cors { origins: Some(origins.split(',').filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect()) }
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if any.
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => origin.filter(|o| list.contains(o)).cloned(),
        }
    }

    /// What every answer (preflights too) carries: the allowed origin and,
    /// for a list, `Vary` (added to what the answer already varies on).
    fn common(&self, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
        if let Some(allow) = self.allowed(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        }
        if self.origins.is_some() {
            h.append(header::VARY, HeaderValue::from_static(VARY));
        }
    }

    /// Headers for an answer to a request from `origin` (not a preflight).
    pub fn decorate(&self, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
        self.common(origin, h);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }

    /// The answer to a preflight: `200`, empty, with what the page may do.
    pub fn preflight(&self, origin: Option<&HeaderValue>) -> Response<Body> {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::OK;
        let h = resp.headers_mut();
        self.common(origin, h);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn any_origin_is_one_answer_for_all() {
        let cors = Cors::new("*");
        let mut h = HeaderMap::new();
        cors.decorate(Some(&v("https://a.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("x-request-id"));
        assert!(h.get(header::VARY).is_none());
    }

    #[test]
    fn a_list_echoes_its_own_and_varies() {
        let cors = Cors::new("https://a.example, https://b.example");
        let mut h = HeaderMap::new();
        h.insert(header::VARY, v("accept-encoding"));
        cors.decorate(Some(&v("https://b.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://b.example");
        let vary: Vec<_> = h.get_all(header::VARY).iter().collect();
        assert_eq!(vary, [v("accept-encoding"), v(VARY)], "added to, not replaced");

        let mut h = HeaderMap::new();
        cors.decorate(Some(&v("https://evil.example")), &mut h);
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let mut h = HeaderMap::new();
        cors.decorate(None, &mut h);
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no Origin, nothing to echo");
    }

    #[test]
    fn a_preflight_says_what_a_page_may_send() {
        let resp = Cors::new("*").preflight(Some(&v("https://a.example")));
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("x-api-key"));
        assert!(h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("POST"));
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "3600");
    }
}
