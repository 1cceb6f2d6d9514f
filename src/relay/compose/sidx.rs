//! The head of a DASH MP4 file, read from its first bytes: where the
//! initialization section ends (`ftyp` + `moov`), and the subsegments its
//! one `sidx` box lists. YouTube's and Bilibili's DASH files are laid out
//! so (ftyp, moov, sidx, then moof/mdat pairs), and so is ffmpeg's output
//! with `-movflags dash+global_sidx`.
//!
//! Written by hand: only two box kinds are read, from a partial buffer (the
//! first bytes of a file that may be gigabytes long), and the MP4 crates
//! want whole files or seekable readers. It never panics on any input
//! (fuzzed in tests/fuzz).

/// Where a file's parts are, in bytes from its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The initialization section (`ftyp` through `moov`, from byte 0),
    /// kept from the head the index was read from: what composing and
    /// muxing need of the file's head, with no read of it per request.
    pub init: bytes::Bytes,
    /// The `sidx` box itself, first and last byte (DASH's `indexRange`).
    pub sidx: (u64, u64),
    /// Ticks per second of the durations below.
    pub timescale: u32,
    /// When the first subsegment starts, in `timescale` ticks (the
    /// `sidx`'s earliest presentation time).
    pub earliest: u64,
    /// One per subsegment, in order.
    pub segments: Vec<Segment>,
}

/// One subsegment: a `moof`/`mdat` run a player can fetch by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub size: u32,
    /// In `timescale` ticks.
    pub duration: u32,
}

/// What reading the head found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The buffer ends before the `sidx` box does: read this many bytes
    /// from the start and try again.
    #[error("the index ends past byte {0}")]
    NeedMore(u64),
    /// The file is not laid out as a DASH MP4 with one `sidx`.
    #[error("{0}")]
    NotDash(&'static str),
}

/// The most subsegments read: a day of 2-second ones. More is no media
/// file, and would let a small input claim a large allocation.
const MAX_SEGMENTS: usize = 43_200;

impl Index {
    /// Reads the head of a file from `head`, its first bytes.
    pub fn parse(head: &[u8]) -> Result<Index, IndexError> {
        let mut pos = 0u64;
        let mut init_len = None;
        loop {
            let Some((kind, size, header)) = box_at(head, pos)? else {
                return Err(IndexError::NeedMore(pos.saturating_add(64 * 1024)));
            };
            match &kind {
                b"moov" => init_len = Some(pos + size),
                b"sidx" => {
                    let init_len = init_len.ok_or(IndexError::NotDash("the sidx box comes before moov"))?;
                    let end = pos + size;
                    let body = head.get(to_usize(pos + header)?..to_usize(end)?).ok_or(IndexError::NeedMore(end))?;
                    let (timescale, earliest, segments) = read_sidx(body, end)?;
                    let init = bytes::Bytes::copy_from_slice(
                        head.get(..to_usize(init_len)?).ok_or(IndexError::NeedMore(end))?,
                    );
                    return Ok(Index { init, sidx: (pos, end - 1), timescale, earliest, segments });
                }
                b"moof" | b"mdat" => return Err(IndexError::NotDash("no sidx box before the media")),
                _ => {}
            }
            pos += size;
        }
    }

    /// Length of the initialization section.
    pub fn init_len(&self) -> u64 {
        self.init.len() as u64
    }

    /// The whole duration, in seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| f64::from(s.duration)).sum::<f64>() / f64::from(self.timescale)
    }

    /// Where each subsegment starts and ends, in `timescale` ticks from
    /// the file's time zero, in order.
    pub fn spans(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.segments.iter().scan(self.earliest, |t, s| {
            let start = *t;
            *t += u64::from(s.duration);
            Some((start, *t))
        })
    }

    /// Seconds of one subsegment.
    pub fn seconds(&self, s: &Segment) -> f64 {
        f64::from(s.duration) / f64::from(self.timescale)
    }

    /// The highest bit rate of any subsegment, in bits per second: HLS's
    /// `BANDWIDTH` is a peak.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.duration > 0)
            .map(|s| (f64::from(s.size) * 8.0 / self.seconds(s)) as u64)
            .max()
            .unwrap_or(0)
    }

    /// The mean bit rate over the file, in bits per second.
    pub fn average_bitrate(&self) -> u64 {
        let bytes: u64 = self.segments.iter().map(|s| u64::from(s.size)).sum();
        let secs = self.duration();
        if secs > 0.0 { (bytes as f64 * 8.0 / secs) as u64 } else { 0 }
    }

    /// Bytes held, for the cache's weigher.
    pub fn weight(&self) -> u32 {
        (64 + self.init.len() + self.segments.len() * std::mem::size_of::<Segment>()).try_into().unwrap_or(u32::MAX)
    }
}

fn to_usize(n: u64) -> Result<usize, IndexError> {
    usize::try_from(n).map_err(|_| IndexError::NotDash("a box larger than memory"))
}

/// The box at `pos`: its type, whole size and header length; `None` when
/// the buffer ends inside its header.
fn box_at(head: &[u8], pos: u64) -> Result<Option<([u8; 4], u64, u64)>, IndexError> {
    let p = to_usize(pos)?;
    let Some(h) = head.get(p..p + 8) else { return Ok(None) };
    let kind: [u8; 4] = h[4..8].try_into().expect("4 bytes");
    let (size, header) = match u32::from_be_bytes(h[..4].try_into().expect("4 bytes")) {
        1 => match head.get(p + 8..p + 16) {
            Some(l) => (u64::from_be_bytes(l.try_into().expect("8 bytes")), 16),
            None => return Ok(None),
        },
        0 => return Err(IndexError::NotDash("a box runs to the end of the file before any sidx")),
        n => (u64::from(n), 8),
    };
    if size < header {
        return Err(IndexError::NotDash("a box shorter than its header"));
    }
    Ok(Some((kind, size, header)))
}

/// A big-endian reader over a box body.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        let (a, rest) = self.0.split_at_checked(N).ok_or(IndexError::NotDash("a sidx box cut short"))?;
        self.0 = rest;
        Ok(a.try_into().expect("N bytes"))
    }
    fn u16(&mut self) -> Result<u16, IndexError> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, IndexError> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, IndexError> {
        self.take().map(u64::from_be_bytes)
    }
}

/// ISO/IEC 14496-12 §8.16.3: the subsegments start right after the box
/// (`anchor`), plus `first_offset`.
fn read_sidx(body: &[u8], anchor: u64) -> Result<(u32, u64, Vec<Segment>), IndexError> {
    let mut c = Cursor(body);
    let version = c.take::<4>()?[0];
    let _reference_id = c.u32()?;
    let timescale = c.u32()?;
    let (earliest, first_offset) =
        if version == 0 { (u64::from(c.u32()?), u64::from(c.u32()?)) } else { (c.u64()?, c.u64()?) };
    let _reserved = c.u16()?;
    let count = usize::from(c.u16()?);
    if timescale == 0 {
        return Err(IndexError::NotDash("the sidx box has no timescale"));
    }
    if count == 0 || count > MAX_SEGMENTS {
        return Err(IndexError::NotDash("the sidx box lists no usable subsegments"));
    }
    let mut offset = anchor.checked_add(first_offset).ok_or(IndexError::NotDash("a sidx offset past 2^64"))?;
    let mut segments = Vec::with_capacity(count);
    for _ in 0..count {
        let reference = c.u32()?;
        let duration = c.u32()?;
        let _sap = c.u32()?;
        if reference >> 31 == 1 {
            return Err(IndexError::NotDash("the sidx box points at other sidx boxes"));
        }
        let size = reference & 0x7fff_ffff;
        segments.push(Segment { offset, size, duration });
        offset = offset.checked_add(u64::from(size)).ok_or(IndexError::NotDash("a sidx offset past 2^64"))?;
    }
    Ok((timescale, earliest, segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn sidx(refs: &[(u32, u32)]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 0];
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&1000u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&(refs.len() as u16).to_be_bytes());
        for (size, dur) in refs {
            b.extend_from_slice(&size.to_be_bytes());
            b.extend_from_slice(&dur.to_be_bytes());
            b.extend_from_slice(&0x9000_0000u32.to_be_bytes());
        }
        boxed(b"sidx", &b)
    }

    #[test]
    fn reads_youtubes_layout() {
        let mut file = boxed(b"ftyp", b"dash0000");
        file.extend(boxed(b"moov", &[0; 100]));
        let init = file.len() as u64;
        let s = sidx(&[(500, 2000), (400, 2000), (300, 1000)]);
        let sidx_len = s.len() as u64;
        file.extend(s);
        file.extend(boxed(b"moof", &[0; 10]));
        let index = Index::parse(&file).unwrap();
        assert_eq!(index.init_len(), init);
        assert_eq!(index.sidx, (init, init + sidx_len - 1));
        let start = init + sidx_len;
        assert_eq!(index.segments[0], Segment { offset: start, size: 500, duration: 2000 });
        assert_eq!(index.segments[2].offset, start + 900);
        assert_eq!(index.duration(), 5.0);
        assert_eq!(index.peak_bitrate(), 2400);
    }

    #[test]
    fn asks_for_more_or_refuses_plainly() {
        let mut file = boxed(b"ftyp", b"dash0000");
        file.extend(boxed(b"moov", &[0; 100]));
        let whole = [file.clone(), sidx(&[(1, 1)])].concat();
        for cut in [file.len(), file.len() + 4, whole.len() - 1] {
            assert!(matches!(Index::parse(&whole[..cut]), Err(IndexError::NeedMore(_))), "{cut}");
        }
        let progressive = [file.clone(), boxed(b"mdat", &[0; 8])].concat();
        assert!(matches!(Index::parse(&progressive), Err(IndexError::NotDash(_))));
        assert!(matches!(Index::parse(&sidx(&[(1, 1)])), Err(IndexError::NotDash(_))));
    }
}
