//! What hyper refuses before a handler runs, answered in the API's error
//! shape.
//!
//! hyper answers a request it cannot parse (a malformed request line, a head
//! larger than its buffer, too many headers) on its own, with a bare status
//! and an empty body, and closes the connection. [`Refusals`] wraps each
//! connection's socket and swaps exactly that response, byte for byte the
//! form hyper writes, for the API's JSON error with a request id. Every
//! response reelay itself writes carries `x-request-id`, so none of them
//! matches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::state::AppState;

/// The most a connection buffers: its read buffer, and the response body
/// queued for a client that reads slowly. Request heads larger than this are
/// refused by hyper itself (the API refuses targets and headers over 8 KiB
/// before that, with its JSON errors). See BENCHMARKS.md for the trade-off.
pub const SERVER_BUF: usize = 16 * 1024;

/// A connection's socket, watched for hyper's own refusals.
pub struct Refusals<S> {
    /// The socket.
    inner: S,
    /// For request ids and the request counters.
    state: AppState,
    /// A refusal being written in hyper's stead: the JSON response, how much
    /// of it is written, and the length of hyper's response to report back.
    swap: Option<(Vec<u8>, usize, usize)>,
}

impl<S> Refusals<S> {
    pub fn new(inner: S, state: AppState) -> Self {
        Refusals { inner, state, swap: None }
    }
}

/// The status of `buf` when it is, in full, a response hyper wrote for a
/// request it could not parse: `HTTP/1.1 <status> <reason>`, then
/// `connection: close`, `content-length: 0` and a date, nothing else.
pub fn hyper_refusal(buf: &[u8]) -> Option<StatusCode> {
    const TAIL: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";
    const DATE_LEN: usize = 29; // "Sat, 28 Nov 2026 17:45:55 GMT"
    // Every write passes here: reject body chunks and our own heads (which
    // are longer) before looking closer.
    if buf.len() > 128 || !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let status = [StatusCode::BAD_REQUEST, StatusCode::URI_TOO_LONG, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE]
        .into_iter()
        .find(|s| {
            let line = format!("HTTP/1.1 {} {}", s.as_str(), s.canonical_reason().unwrap_or_default());
            buf.starts_with(line.as_bytes())
                && buf[line.len()..].starts_with(TAIL)
                && buf.len() == line.len() + TAIL.len() + DATE_LEN + 4
        })?;
    buf.ends_with(b"\r\n\r\n").then_some(status)
}

/// The API's JSON error for a refusal, as a whole HTTP/1.1 response.
fn json_refusal(status: StatusCode, request_id: &str) -> Vec<u8> {
    let detail = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            format!("the request head is larger than {SERVER_BUF} bytes or has more than 100 headers")
        }
        StatusCode::URI_TOO_LONG => "the request target is too long".to_owned(),
        _ => "the request is not valid HTTP/1.1".to_owned(),
    };
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "success": false,
        "error": reason,
        "detail": detail,
        "code": reason,
        "timestamp": super::reply::timestamp(),
        "request_id": request_id,
    })
    .to_string();
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\
         x-request-id: {request_id}\r\nx-content-type-options: nosniff\r\n\r\n{body}",
        status.as_str(),
        body.len()
    )
    .into_bytes()
}

impl<S: AsyncWrite + Unpin> Refusals<S> {
    /// Writes the pending JSON refusal; `Ready(Ok(n))` with hyper's length
    /// once all of it is out.
    fn poll_swap(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let (bytes, written, reported) = self.swap.as_mut().expect("a refusal is pending");
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let reported = *reported;
        self.swap = None;
        Poll::Ready(Ok(reported))
    }

    /// Starts swapping when `buf` is one of hyper's refusals.
    fn check(&mut self, buf: &[u8]) -> bool {
        let Some(status) = hyper_refusal(buf) else { return false };
        let request_id = self.state.next_request_id();
        tracing::info!(request_id, status = status.as_u16(), "request refused before routing");
        self.state.metrics.record_http(None, status.as_u16(), std::time::Duration::ZERO);
        self.swap = Some((json_refusal(status, &request_id), 0, buf.len()));
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Refusals<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Refusals<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.swap.is_some() || this.check(buf) {
            return this.poll_swap(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if this.swap.is_some() || this.check(first) {
            return this.poll_swap(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Sat, 28 Nov 2026 17:45:55 GMT";

    #[test]
    fn hypers_own_refusals_are_recognised() {
        let r =
            |line: &str| format!("HTTP/1.1 {line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n");
        assert_eq!(
            hyper_refusal(r("431 Request Header Fields Too Large").as_bytes()),
            Some(StatusCode::from_u16(431).unwrap())
        );
        assert_eq!(hyper_refusal(r("400 Bad Request").as_bytes()), Some(StatusCode::BAD_REQUEST));
        assert_eq!(hyper_refusal(r("414 URI Too Long").as_bytes()), Some(StatusCode::URI_TOO_LONG));
        // Anything else passes through: other statuses, more headers, a body.
        assert_eq!(hyper_refusal(r("404 Not Found").as_bytes()), None);
        assert_eq!(hyper_refusal(format!("{}x", r("400 Bad Request")).as_bytes()), None);
        let with_id =
            format!("HTTP/1.1 400 Bad Request\r\nx-request-id: a\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n");
        assert_eq!(hyper_refusal(with_id.as_bytes()), None);
        assert_eq!(hyper_refusal(b"HTTP/1.1 400 Bad Request"), None);
        assert_eq!(hyper_refusal(b""), None);
    }

    #[test]
    fn the_swapped_response_is_the_api_error_shape() {
        let bytes = json_refusal(StatusCode::BAD_REQUEST, "abc-1");
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["success"], false);
        assert_eq!(json["request_id"], "abc-1");
        assert_eq!(json["error"], "Bad Request");
    }
}
