//! A SABR session ([`crate::sabr::Session`]) carried over the upstream's
//! connections: each request POSTed (on the format's route, with its
//! headers), each answer read as it arrives and its parts handed to the
//! session, what they bring handed on at once (a segment is usable before
//! the answer ends), the server's backoff waited, its redirects followed
//! (the session keeps the URL). An answer cut short loses only its
//! unfinished segment: the next request says what is held. A failed
//! request (a 5xx, a dead connection) is asked again a few times with a
//! growing pause; a refused URL (403) is [`RelayError::Expired`], for the
//! caller to extract the video again.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;

use super::{ProxyError, RelayError, Upstream};
use crate::sabr::ump::Reader;
use crate::sabr::{Event, Next, Session};
use crate::upstream::Via;

/// Failed requests in a row before the session gives up.
const MAX_FAILS: u32 = 5;
/// The pause before each retry (ms).
const BACKOFF_MS: [u64; MAX_FAILS as usize] = [100, 250, 500, 1000, 2000];
/// The longest pause a server's backoff may ask for.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs `session` until both its formats are held to their end, handing
/// every event to `sink`; `sink` answers whether to go on (a viewer gone,
/// enough read ahead).
pub async fn run(
    upstream: &Upstream,
    via: &Via<'_>,
    idle: Duration,
    session: &mut Session,
    mut sink: impl FnMut(Event) -> bool,
) -> Result<(), RelayError> {
    let mut fails = 0u32;
    loop {
        let (url, body) = session.request();
        let outcome = exchange(upstream, via, idle, &url, body, session, &mut sink).await;
        match outcome {
            Ok(false) => return Ok(()),
            Ok(true) => fails = 0,
            Err(RelayError::Sabr(e)) => return Err(RelayError::Sabr(e)),
            Err(RelayError::Expired) => return Err(RelayError::Expired),
            Err(e) => {
                fails += 1;
                if fails > MAX_FAILS {
                    return Err(e);
                }
                tracing::info!(attempt = fails, error = %e, "asking the SABR server again");
                tokio::time::sleep(Duration::from_millis(BACKOFF_MS[fails as usize - 1])).await;
                continue;
            }
        }
        match session.answered().map_err(RelayError::Sabr)? {
            Next::Done => return Ok(()),
            Next::Ask { after_ms } => {
                let pause = Duration::from_millis(after_ms).min(MAX_BACKOFF);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// One request and its answer; `Ok(false)` when the sink wants no more.
async fn exchange(
    upstream: &Upstream,
    via: &Via<'_>,
    idle: Duration,
    url: &str,
    body: Vec<u8>,
    session: &mut Session,
    sink: &mut impl FnMut(Event) -> bool,
) -> Result<bool, RelayError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.yt-ump"));
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    let fetched = upstream.post(url, via, headers, Bytes::from(body)).await.map_err(|e| match e {
        ProxyError::Expired(_) => RelayError::Expired,
        other => other.into(),
    })?;
    let mut body = fetched.response.into_body();
    let mut reader = Reader::default();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(RelayError::Unreachable("the SABR server sent nothing".into())),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| RelayError::Unreachable(format!("the SABR answer broke off: {e}")))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        reader.push(&data);
        while let Some(part) = reader.next_part().map_err(|e| RelayError::Unreachable(e.to_string()))? {
            if let Some(event) = session.absorb(part).map_err(RelayError::Sabr)?
                && !sink(event)
            {
                return Ok(false);
            }
        }
    }
    reader.finish().map_err(|e| RelayError::Unreachable(e.to_string()))?;
    Ok(true)
}
