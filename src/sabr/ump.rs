//! UMP, the framing of a SABR answer: parts one after another, each a type,
//! a size and that many bytes, with no header or trailer. Numbers are UMP's
//! own variable-length integers (not protobuf's): the count of leading one
//! bits of the first byte says how many bytes follow (0 to 4), the first
//! byte's remaining bits are the lowest of the value and the bytes after it
//! the higher ones, little-endian; five bytes hold a plain 32-bit value.
//!
//! [`Reader`] takes the body in whatever chunks the connection gives: a part
//! is handed out once all of it is in, however it was split. A part that
//! lies within one chunk is a slice of it, not a copy (a segment's bytes
//! are copied once, into the store); only a part split across chunks is
//! put together.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Part types reelay reads (the protocol has more; the rest are skipped).
pub mod kind {
    pub const MEDIA_HEADER: u32 = 20;
    pub const MEDIA: u32 = 21;
    pub const MEDIA_END: u32 = 22;
    pub const LIVE_METADATA: u32 = 31;
    pub const NEXT_REQUEST_POLICY: u32 = 35;
    pub const FORMAT_INITIALIZATION_METADATA: u32 = 42;
    pub const SABR_REDIRECT: u32 = 43;
    pub const SABR_ERROR: u32 = 44;
    pub const SABR_SEEK: u32 = 45;
    pub const RELOAD_PLAYER_RESPONSE: u32 = 46;
    pub const SABR_CONTEXT_UPDATE: u32 = 57;
    pub const STREAM_PROTECTION_STATUS: u32 = 58;
    pub const SABR_CONTEXT_SENDING_POLICY: u32 = 59;
}

/// One part: its type and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub kind: u32,
    pub data: Bytes,
}

/// The longest part accepted: a media part is a slice of one segment, far
/// below this; a size past it is a broken stream, not a reason to buffer.
pub const MAX_PART: usize = 64 << 20;

/// Why a stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UmpError {
    #[error("a UMP part of {0} bytes is larger than any SABR sends")]
    TooLarge(u64),
    #[error("the UMP stream ended inside a part")]
    Truncated,
}

/// A value and the bytes it took, from the start of `buf`; `None` when
/// `buf` ends before the number does.
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = (first.leading_ones() as usize).min(4) + 1;
    let rest = buf.get(1..len)?;
    let value = match len {
        5 => u64::from(u32::from_le_bytes(rest.try_into().expect("four bytes"))),
        _ => {
            let low_bits = 7 - (len as u32 - 1);
            let low = u64::from(first) & ((1 << low_bits) - 1);
            let high = rest.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            low | (high << low_bits)
        }
    };
    Some((value, len))
}

/// `value` as UMP writes it: the shortest form.
pub fn write_varint(out: &mut Vec<u8>, value: u32) {
    let v = value;
    match v {
        0..0x80 => out.push(v as u8),
        0x80..0x4000 => out.extend([0x80 | (v & 0x3f) as u8, (v >> 6) as u8]),
        0x4000..0x20_0000 => out.extend([0xc0 | (v & 0x1f) as u8, (v >> 5) as u8, (v >> 13) as u8]),
        0x20_0000..0x1000_0000 => {
            out.extend([0xe0 | (v & 0x0f) as u8, (v >> 4) as u8, (v >> 12) as u8, (v >> 20) as u8])
        }
        _ => {
            out.push(0xf0);
            out.extend(v.to_le_bytes());
        }
    }
}

/// A part as UMP frames it.
pub fn write_part(out: &mut Vec<u8>, kind: u32, data: &[u8]) {
    write_varint(out, kind);
    write_varint(out, u32::try_from(data.len()).expect("a part under 4 GiB"));
    out.extend_from_slice(data);
}

/// Parts from a body arriving in chunks.
#[derive(Default)]
pub struct Reader {
    /// The chunks not yet handed out, as they came.
    chunks: VecDeque<Bytes>,
    /// Their bytes in all.
    len: usize,
}

impl Reader {
    /// Adds a chunk of the body.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The next whole part, if it is in; an error for a size no SABR part
    /// has.
    pub fn next_part(&mut self) -> Result<Option<Part>, UmpError> {
        // A part's type and size take at most five bytes each.
        let mut head = [0u8; 10];
        let n = self.peek(&mut head);
        let Some((kind, a)) = read_varint(&head[..n]) else { return Ok(None) };
        let Some((size, b)) = read_varint(&head[a..n]) else { return Ok(None) };
        if size > MAX_PART as u64 {
            return Err(UmpError::TooLarge(size));
        }
        if self.len < a + b + size as usize {
            return Ok(None);
        }
        self.take(a + b);
        let data = self.take(size as usize);
        Ok(Some(Part { kind: kind as u32, data }))
    }

    /// Copies the first bytes held into `out`; how many there were.
    fn peek(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for chunk in &self.chunks {
            let k = chunk.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&chunk[..k]);
            n += k;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// The next `n` bytes (held): a slice of the first chunk when it has
    /// them all, else put together.
    fn take(&mut self, n: usize) -> Bytes {
        if n == 0 {
            return Bytes::new();
        }
        self.len -= n;
        let front = self.chunks.front_mut().expect("the bytes are held");
        if front.len() >= n {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let front = self.chunks.front_mut().expect("the bytes are held");
            let k = front.len().min(n - out.len());
            out.extend_from_slice(&front[..k]);
            front.advance(k);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }

    /// Checks that the body ended between parts.
    pub fn finish(&self) -> Result<(), UmpError> {
        if self.len == 0 { Ok(()) } else { Err(UmpError::Truncated) }
    }
}

/// A MEDIA or MEDIA_END payload: the header id it belongs to, and the rest.
pub fn header_id(data: &Bytes) -> Option<(u64, Bytes)> {
    let (id, n) = read_varint(data)?;
    Some((id, data.slice(n..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_take_the_bytes_the_protocol_gives_them() {
        for (value, bytes) in [
            (21u32, &[0x15u8][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x02]),
            (300, &[0xac, 0x04]),
            (16384, &[0xc0, 0x00, 0x02]),
            (100_000, &[0xc0, 0x35, 0x0c]),
            (3_000_000, &[0xe0, 0x6c, 0xdc, 0x02]),
            (268_435_456, &[0xf0, 0x00, 0x00, 0x00, 0x10]),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(read_varint(bytes), Some((u64::from(value), bytes.len())), "{value}");
            assert_eq!(read_varint(&bytes[..bytes.len() - 1]), None, "{value} cut");
        }
    }

    #[test]
    fn a_huge_size_is_an_error_not_a_buffer() {
        let mut r = Reader::default();
        r.push(Bytes::from_static(&[0x15, 0xf0, 0xff, 0xff, 0xff, 0x7f]));
        assert!(matches!(r.next_part(), Err(UmpError::TooLarge(_))));
    }

    proptest! {
        /// However the stream is cut into chunks, the same parts come out.
        #[test]
        fn any_split_gives_the_same_parts(
            parts in prop::collection::vec((0u32..100_000, prop::collection::vec(any::<u8>(), 0..300)), 0..12),
            cuts in prop::collection::vec(0usize..4000, 0..20),
        ) {
            let mut stream = Vec::new();
            for (kind, data) in &parts {
                write_part(&mut stream, *kind, data);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.push(0);
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut r = Reader::default();
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                r.push(Bytes::copy_from_slice(&stream[w[0]..w[1]]));
                while let Some(p) = r.next_part().unwrap() {
                    got.push((p.kind, p.data.to_vec()));
                }
            }
            r.finish().unwrap();
            prop_assert_eq!(got, parts);
        }
    }
}
