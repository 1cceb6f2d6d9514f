//! The relay read by the server itself, with no HTTP request in between:
//! bytes `range` of an object (a DASH file's head, for its manifest), from
//! the store as any viewer's are, or piped from the origin for an object the
//! store does not keep.

use std::ops::Range;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;

use bytes::Bytes;

use super::store::BLOCK;
use super::{Meta, Reader, Relay, RelayError, Spec};

impl Relay {
    /// Bytes `range` of the object `spec` names; fewer past its end.
    pub async fn read(&self, spec: Spec, range: Range<u64>) -> Result<Vec<u8>, RelayError> {
        let shared = &self.0;
        let visit = shared.register(spec);
        let (meta, waited) = shared.meta(&visit.key, range.start).await?;
        if waited || visit.following {
            shared.metrics.relay.coalesced.inc();
        }
        let want = range.end.saturating_sub(range.start) as usize;
        let mut out = Vec::with_capacity(want);
        if !meta.stored {
            return self.read_piped(&visit.key, range, out).await;
        }
        let end = meta.len.map_or(range.end, |len| range.end.min(len));
        if range.start >= end {
            return Ok(out);
        }
        let mut reader = Reader::new(visit, range.start, Some(end));
        while let Some(data) = reader.next().await {
            out.extend_from_slice(&data?);
        }
        Ok(out)
    }

    /// Bytes `range` of `spec` for a reader that seeks (a file's head for
    /// its index, a muxed segment's few fragments): exactly that range from
    /// the origin where the store holds none of its blocks, once for all who
    /// ask at once ([`super::seek`]), else (and on any failure) through the
    /// store. A store block would fetch from its start, up to 1 MiB around a
    /// small range; what a seek reads is kept where it is used (the index,
    /// the muxed segment made once for every viewer).
    pub async fn read_exact(&self, spec: Spec, range: Range<u64>) -> Result<Vec<u8>, RelayError> {
        let visit = self.0.register(spec.clone());
        match self.exact(&visit, range.clone()).await {
            Ok(sought) => Ok(sought.bytes.to_vec()),
            Err(_) => {
                drop(visit);
                self.read(spec, range).await
            }
        }
    }

    /// A reader of `range` of a stored object (a composed file's input),
    /// whose bytes count as served by what it is read for, not by itself.
    pub(crate) async fn reader(&self, spec: Spec, range: Range<u64>) -> Result<Reader, RelayError> {
        let visit = self.0.register(spec);
        let (meta, _) = self.0.meta(&visit.key, range.start).await?;
        if !meta.stored {
            return Err(RelayError::Gone("the file is not one the store keeps".into()));
        }
        let end = meta.len.map_or(range.end, |len| range.end.min(len));
        let mut reader = Reader::new(visit, range.start, Some(end));
        reader.counted = false;
        Ok(reader)
    }

    /// Fetches the whole of `spec` into the store ahead of its readers (a
    /// live segment as soon as the playlist names it), who follow the fetch
    /// as bytes arrive. Its bytes are not counted as served. Returns their
    /// number.
    pub async fn prefetch(&self, spec: Spec) -> Result<u64, RelayError> {
        let visit = self.0.register(spec);
        let (meta, _) = self.0.meta(&visit.key, 0).await?;
        if !meta.stored {
            return Ok(0);
        }
        let mut reader = Reader::new(visit, 0, meta.len);
        reader.counted = false;
        let mut n = 0;
        while let Some(data) = reader.next().await {
            n += data?.len() as u64;
        }
        Ok(n)
    }

    /// Puts the whole of `spec`'s object in the store from bytes in hand (a
    /// live SABR segment: the session brought it, and no URL serves it
    /// again), as a fetch would have: readers find it complete, with
    /// reelay's own ETag; a transient spec's object is pinned until
    /// [`Relay::discard`]. An object already known is left as it is.
    pub fn keep(&self, spec: Spec, data: Bytes, content_type: &str) {
        if data.is_empty() {
            return;
        }
        let visit = self.0.register(spec);
        let meta = Meta {
            len: Some(data.len() as u64),
            content_type: Some(content_type.to_owned()),
            ranged: true,
            stored: true,
            ..Meta::default()
        };
        let meta = super::fetch::own_meta(&self.0, &visit.key, meta);
        let mut store = self.0.lock();
        let Some(obj) = store.get_mut(&visit.key).filter(|o| o.meta.is_none()) else { return };
        obj.meta = Some(meta);
        for (b, at) in (0..data.len()).step_by(BLOCK as usize).enumerate() {
            let end = (at + BLOCK as usize).min(data.len());
            store.insert_ready(&visit.key, b as u64, data.slice(at..end));
        }
        store.make_room();
    }

    /// Drops an object's blocks from memory, unless someone reads it now
    /// (then the budget's LRU takes them later: a pinned object is
    /// unpinned).
    pub fn discard(&self, key: &str) {
        let mut store = self.0.lock();
        if store.get(key).is_some_and(|o| o.readers == 0 && o.jobs == 0) {
            store.drop_all(key, None);
            store.forget_if_idle(key);
        } else if let Some(key) = store.key_of(key) {
            store.unpin(&key);
        }
    }

    /// `range` of an object the store does not keep, from one origin
    /// request (an origin that ignores `Range` answers from byte 0).
    async fn read_piped(
        &self,
        key: &std::sync::Arc<str>,
        range: Range<u64>,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, RelayError> {
        let mut headers = HeaderMap::new();
        let asked = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        headers.insert(header::RANGE, HeaderValue::from_str(&asked).expect("digits"));
        let reply = self.pipe(key, &Method::GET, &headers, false).await?;
        let mut skip = match reply.status() {
            StatusCode::PARTIAL_CONTENT => 0,
            StatusCode::OK => range.start as usize,
            other => return Err(RelayError::Status(other)),
        };
        let want = range.end.saturating_sub(range.start) as usize;
        let mut body = reply.into_body();
        while out.len() < want {
            let Some(frame) = body.frame().await else { break };
            let frame = frame.map_err(|e| RelayError::Unreachable(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            let from = skip.min(data.len());
            skip -= from;
            out.extend_from_slice(&data[from..]);
        }
        out.truncate(want);
        Ok(out)
    }
}
