//! A pipe: one origin response relayed to one client as it is read, for
//! what the store does not keep (thumbnails, origins that ignore ranges on
//! files too big to store). The origin's read buffer is capped
//! ([`super::upstream::PIPE_BUF`]), so a slow client costs a few small
//! buffers however fast the origin is.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use super::Fetched;
use crate::metrics::StreamGuard;

/// Upstream response headers that may reach the client. Never Set-Cookie,
/// and never the origin's `Cache-Control`: what a shared cache in front may
/// keep is reelay's to say (each route sets it; unset means `no-store`).
const TO_CLIENT: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
];

/// Turns an upstream response into the client's: same status, allowed
/// headers, body relayed as it arrives and counted into the metrics.
pub fn pipe(upstream: Fetched, guard: Option<StreamGuard>, idle: Duration) -> http::Response<super::Body> {
    let (parts, body) = upstream.response.into_parts();
    let mut builder = http::Response::builder().status(parts.status);
    let headers = builder.headers_mut().expect("fresh builder");
    for name in &TO_CLIENT {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    let body = PipeBody { inner: body, guard, idle, timer: Box::pin(tokio::time::sleep(idle)), waiting: false };
    builder.body(super::Body::Pipe(body)).expect("status and headers came from a valid response")
}

/// The piped body: counts what it hands on, and gives up on an origin that
/// sends nothing for the idle timeout (time spent waiting for a slow client
/// does not count).
pub struct PipeBody {
    inner: Incoming,
    /// Counts a client's stream (not one of ffmpeg's inputs).
    guard: Option<StreamGuard>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// True while waiting on the origin; the idle clock starts when it becomes true.
    waiting: bool,
}

impl http_body::Body for PipeBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.waiting {
            this.waiting = true;
            this.timer.as_mut().reset(tokio::time::Instant::now() + this.idle);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                if let (Some(data), Some(g)) = (frame.data_ref(), &this.guard) {
                    g.add_bytes(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("the origin stopped sending".into()))),
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
