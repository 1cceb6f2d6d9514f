//! What a use case answers, before HTTP writes it: the body (text reelay
//! wrote, bytes from the relay, or the origin's URL to redirect to), what it
//! is, which format it comes from, and what a shared cache may keep of it.
//! `http::reply::write` turns it into a response; the use cases never see
//! axum.

use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::relay::Reply;

/// One answer of a use case.
pub struct Answer {
    pub body: Body,
    /// `Content-Type`, when the answer says it (the relay's replies carry
    /// the origin's otherwise).
    pub content_type: Option<&'static str>,
    /// What a shared cache may keep of it.
    pub keep: Keep,
    /// The format (or `video+audio` formats) it comes from, for
    /// `X-Reelay-Format`.
    pub format: Option<String>,
    /// `Content-Disposition`, for a file saved under a name.
    pub disposition: Option<String>,
}

/// What an answer carries.
pub enum Body {
    /// Text or bytes reelay made, with its entity tag.
    Text(Text),
    /// Text that names the origin's own URLs, which expire on the origin's
    /// clock: no entity tag, and no cache keeps it.
    Untagged(Bytes),
    /// The relay's reply: status, length and ranges already worked out.
    Relay(Reply),
    /// A `302` to this URL (the origin's, or another route's).
    Found(String),
}

/// What a shared cache may keep of an answer (RFC 9111); `http::caching`
/// writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Looked at again each time it is used (`no-cache`): a live master.
    NoCache,
    /// The route decides (the stable routes' default), or the relay's
    /// reply already said.
    Unsaid,
    /// Nothing may keep it.
    NoStore,
    /// Kept while its links keep half their life: they expire at
    /// `expires` and were written with `lifetime` seconds to live.
    Listing { expires: i64, lifetime: i64 },
    /// What a signed link expiring then names: it cannot change.
    Until(i64),
    /// Public for this many seconds (a thumbnail).
    Public(u64),
    /// A live playlist: kept this many seconds.
    Briefly(u64),
    /// A live part: kept an hour, never changed.
    LivePart,
}

impl Answer {
    /// Text reelay wrote, of `content_type`, kept as `keep` says.
    pub fn text(content_type: &'static str, text: Text, keep: Keep) -> Self {
        Answer { body: Body::Text(text), content_type: Some(content_type), keep, format: None, disposition: None }
    }

    /// The relay's reply, as it is.
    pub fn relay(reply: Reply) -> Self {
        Answer { body: Body::Relay(reply), content_type: None, keep: Keep::Unsaid, format: None, disposition: None }
    }

    /// A redirect to `url`.
    pub fn found(url: impl Into<String>) -> Self {
        Answer {
            body: Body::Found(url.into()),
            content_type: None,
            keep: Keep::NoStore,
            format: None,
            disposition: None,
        }
    }

    /// The same answer, naming the format it comes from.
    pub fn of_format(mut self, id: impl Into<String>) -> Self {
        self.format = Some(id.into());
        self
    }
}

/// Text reelay rendered, with its entity tag (worked out once per render,
/// not once per hit).
#[derive(Clone)]
pub struct Text {
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl Text {
    /// Text tagged by its digest.
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        Text { etag: etag_of(&body), body }
    }
}

/// A strong entity tag for a body reelay renders: its digest, so every
/// instance that renders the same bytes names them the same.
pub fn etag_of(body: &[u8]) -> HeaderValue {
    etag_with("t", Sha256::digest(body).as_slice())
}

/// A strong entity tag for what `parts` name (a muxed segment's plan).
pub fn etag_naming(parts: &[&[u8]]) -> HeaderValue {
    let mut d = Sha256::new();
    for p in parts {
        d.update((p.len() as u64).to_le_bytes());
        d.update(p);
    }
    etag_with("n", d.finalize().as_slice())
}

fn etag_with(kind: &str, digest: &[u8]) -> HeaderValue {
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::try_from(format!("\"{kind}-{hex}\"")).expect("hex and quotes are a valid header")
}
