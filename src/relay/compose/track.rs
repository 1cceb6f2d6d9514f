//! What a muxer needs of a DASH file (ISO/IEC 14496-12 and -15): from its
//! init section, the track's clock, its edit shift and its codec's setup
//! (H.264's parameter sets and NAL length size, AAC's profile, rate and
//! channels); from a fragment, each sample's time, key flag and bytes.
//! Only H.264's and AAC's setups are read: what MPEG-TS segments for
//! players that want one stream with sound carry (other codecs are
//! [`Codec::Other`], and the muxer falls back to ffmpeg). A fragment's
//! `moof` can be cut short too, for a clip that ends inside it
//! ([`Track::trim`]). Never panics on any input.

use std::ops::Range;

use super::mp4::{BoxError, Found, children};

/// The codec of a track, with what a muxer writes into the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264 in `avc1`/`avc3`: samples are NAL units behind
    /// `length_size`-byte lengths; the parameter sets live in `avcC`.
    H264 { length_size: usize, sps: Vec<Vec<u8>>, pps: Vec<Vec<u8>> },
    /// AAC in `mp4a`: raw frames; ADTS headers are made of these three.
    Aac { profile: u8, rate_index: u8, channels: u8 },
    /// Anything else (VP9, AV1, Opus): its samples are read, not written.
    Other,
}

/// One track of a DASH file, as its init section describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Ticks per second of its samples' times.
    pub timescale: u32,
    /// The edit list's media time, in ticks: the sample time that plays at
    /// zero (B-frames' delay, AAC's priming). Subtracted from every time.
    pub shift: i64,
    pub codec: Codec,
    /// `trex`'s defaults, for fragments that name none of their own.
    defaults: Defaults,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Defaults {
    duration: u32,
    size: u32,
    flags: u32,
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time, in the track's ticks (before the shift).
    pub dts: u64,
    /// Composition offset: presentation time is `dts + cto`.
    pub cto: i64,
    /// A sync sample (a keyframe; every audio frame is one).
    pub key: bool,
    /// Its bytes in the fragment buffer.
    pub data: Range<usize>,
}

/// More samples than this in one buffer is no media fragment.
const MAX_SAMPLES: u32 = 1 << 20;

fn u8_at(buf: &[u8], at: usize) -> Result<u8, BoxError> {
    buf.get(at).copied().ok_or(BoxError("a box cut short"))
}

fn u16_at(buf: &[u8], at: usize) -> Result<u16, BoxError> {
    Ok(u16::from_be_bytes(buf.get(at..at + 2).ok_or(BoxError("a box cut short"))?.try_into().expect("2 bytes")))
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, BoxError> {
    Ok(u32::from_be_bytes(buf.get(at..at + 4).ok_or(BoxError("a box cut short"))?.try_into().expect("4 bytes")))
}

fn u64_at(buf: &[u8], at: usize) -> Result<u64, BoxError> {
    Ok(u64::from_be_bytes(buf.get(at..at + 8).ok_or(BoxError("a box cut short"))?.try_into().expect("8 bytes")))
}

/// The children of `parent`.
fn kids(buf: &[u8], parent: &Found) -> Result<Vec<Found>, BoxError> {
    children(buf, parent.start + parent.header, parent.start + parent.size)
}

/// The first child of `parent` of type `kind`.
fn find(buf: &[u8], parent: &Found, kind: &[u8; 4]) -> Result<Found, BoxError> {
    kids(buf, parent)?.into_iter().find(|b| &b.kind == kind).ok_or(BoxError("a box the muxer needs is missing"))
}

/// The box at the end of `path` under `parent`.
fn path(buf: &[u8], parent: &Found, path: &[&[u8; 4]]) -> Result<Found, BoxError> {
    path.iter().try_fold(*parent, |at, kind| find(buf, &at, kind))
}

/// The `moov` and the one `trak` of an init section (`ftyp` + `moov`).
fn moov_trak(init: &[u8]) -> Result<(Found, Found), BoxError> {
    let top = children(init, 0, init.len())?;
    let moov = *top.iter().find(|b| &b.kind == b"moov").ok_or(BoxError("no moov"))?;
    let trak = find(init, &moov, b"trak")?;
    Ok((moov, trak))
}

/// A track's clock: its timescale and its edit list's shift, in ticks.
fn clock(init: &[u8], trak: &Found) -> Result<(u32, i64), BoxError> {
    let mdhd = path(init, trak, &[b"mdia", b"mdhd"])?;
    let body = mdhd.start + mdhd.header;
    let timescale = u32_at(init, body + if u8_at(init, body)? == 1 { 20 } else { 12 })?;
    if timescale == 0 {
        return Err(BoxError("a track with no clock"));
    }
    let shift = match path(init, trak, &[b"edts", b"elst"]) {
        Ok(elst) => edit_shift(init, &elst)?,
        Err(_) => 0,
    };
    Ok((timescale, shift))
}

/// The media time, in the track's ticks, that plays at `seconds` of the
/// film: what a clip's edit list starts the track at.
pub fn media_time(init: &[u8], seconds: f64) -> Result<i64, BoxError> {
    let (_, trak) = moov_trak(init)?;
    let (timescale, shift) = clock(init, &trak)?;
    Ok(shift + (seconds * f64::from(timescale)).round() as i64)
}

impl Track {
    /// The one track of an init section (`ftyp` + `moov`).
    pub fn read(init: &[u8]) -> Result<Track, BoxError> {
        let (moov, trak) = moov_trak(init)?;
        let (timescale, shift) = clock(init, &trak)?;
        let stsd = path(init, &trak, &[b"mdia", b"minf", b"stbl", b"stsd"])?;
        // A full box, then an entry count, then the entries.
        let entries = children(init, stsd.start + stsd.header + 8, stsd.start + stsd.size)?;
        let entry = entries.first().ok_or(BoxError("no sample description"))?;
        let codec = match &entry.kind {
            b"avc1" | b"avc3" => {
                // A visual sample entry's fields take 78 bytes before its boxes.
                let inner = children(init, entry.start + entry.header + 78, entry.start + entry.size)?;
                let avcc = inner.iter().find(|b| &b.kind == b"avcC").ok_or(BoxError("no avcC"))?;
                avc_config(&init[avcc.start + avcc.header..avcc.start + avcc.size])?
            }
            b"mp4a" => {
                // An audio sample entry's fields take 28 bytes before its boxes.
                let inner = children(init, entry.start + entry.header + 28, entry.start + entry.size)?;
                let esds = inner.iter().find(|b| &b.kind == b"esds").ok_or(BoxError("no esds"))?;
                aac_config(&init[esds.start + esds.header + 4..esds.start + esds.size])?
            }
            _ => Codec::Other,
        };
        let mut defaults = Defaults::default();
        if let Ok(trex) = path(init, &moov, &[b"mvex", b"trex"]) {
            let at = trex.start + trex.header;
            defaults = Defaults {
                duration: u32_at(init, at + 12)?,
                size: u32_at(init, at + 16)?,
                flags: u32_at(init, at + 20)?,
            };
        }
        Ok(Track { timescale, shift, codec, defaults })
    }

    /// The samples of the `moof`/`mdat` pairs in `buf`, which starts at
    /// byte `file_offset` of its file (an explicit base data offset counts
    /// from the file's start).
    pub fn samples(&self, buf: &[u8], file_offset: u64) -> Result<Vec<Sample>, BoxError> {
        let mut out = Vec::new();
        for moof in children(buf, 0, buf.len())?.iter().filter(|b| &b.kind == b"moof") {
            for traf in kids(buf, moof)?.iter().filter(|b| &b.kind == b"traf") {
                self.traf(buf, moof, traf, file_offset, buf.len(), &mut out)?;
            }
        }
        Ok(out)
    }

    fn traf(
        &self,
        buf: &[u8],
        moof: &Found,
        traf: &Found,
        file_offset: u64,
        limit: usize,
        out: &mut Vec<Sample>,
    ) -> Result<(), BoxError> {
        let boxes = kids(buf, traf)?;
        let tfhd = boxes.iter().find(|b| &b.kind == b"tfhd").ok_or(BoxError("no tfhd"))?;
        let mut at = tfhd.start + tfhd.header;
        let flags = u32_at(buf, at)? & 0x00ff_ffff;
        at += 8;
        let mut base = moof.start as u64;
        if flags & 0x01 != 0 {
            let explicit = u64_at(buf, at)?;
            base = explicit.checked_sub(file_offset).ok_or(BoxError("a base data offset before the fragment"))?;
            at += 8;
        }
        if flags & 0x02 != 0 {
            at += 4;
        }
        let mut d = self.defaults;
        for (bit, field) in [(0x08, &mut d.duration), (0x10, &mut d.size), (0x20, &mut d.flags)] {
            if flags & bit != 0 {
                *field = u32_at(buf, at)?;
                at += 4;
            }
        }
        let tfdt = boxes.iter().find(|b| &b.kind == b"tfdt").ok_or(BoxError("no tfdt"))?;
        let body = tfdt.start + tfdt.header;
        let mut dts = match u8_at(buf, body)? {
            1 => u64_at(buf, body + 4)?,
            _ => u64::from(u32_at(buf, body + 4)?),
        };
        let mut pos = base;
        for trun in boxes.iter().filter(|b| &b.kind == b"trun") {
            let mut at = trun.start + trun.header;
            let version = u8_at(buf, at)?;
            let flags = u32_at(buf, at)? & 0x00ff_ffff;
            let count = u32_at(buf, at + 4)?;
            if count > MAX_SAMPLES {
                return Err(BoxError("too many samples in a fragment"));
            }
            at += 8;
            if flags & 0x01 != 0 {
                let offset = i64::from(u32_at(buf, at)? as i32);
                pos = base.checked_add_signed(offset).ok_or(BoxError("a data offset out of range"))?;
                at += 4;
            }
            let mut first_flags = None;
            if flags & 0x04 != 0 {
                first_flags = Some(u32_at(buf, at)?);
                at += 4;
            }
            for n in 0..count {
                let mut field = |bit: u32, default: u32| -> Result<u32, BoxError> {
                    if flags & bit == 0 {
                        return Ok(default);
                    }
                    let v = u32_at(buf, at)?;
                    at += 4;
                    Ok(v)
                };
                let duration = field(0x100, d.duration)?;
                let size = field(0x200, d.size)?;
                let sample_flags = field(0x400, d.flags)?;
                let cto = field(0x800, 0)?;
                let sample_flags = if n == 0 { first_flags.unwrap_or(sample_flags) } else { sample_flags };
                let cto = if version == 0 { i64::from(cto) } else { i64::from(cto as i32) };
                let start = usize::try_from(pos).map_err(|_| BoxError("a sample out of range"))?;
                let end = start.checked_add(size as usize).ok_or(BoxError("a sample out of range"))?;
                if end > limit {
                    return Err(BoxError("a sample past the fragment"));
                }
                // sample_is_non_sync_sample is bit 16.
                out.push(Sample { dts, cto, key: sample_flags & 0x0001_0000 == 0, data: start..end });
                pos = end as u64;
                dts = dts.checked_add(u64::from(duration)).ok_or(BoxError("a time out of range"))?;
            }
        }
        Ok(())
    }
}

/// A fragment cut short: its `moof` rewritten to list the first samples
/// only, and how many bytes of its `mdat`'s payload those take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    pub moof: Vec<u8>,
    pub kept: u64,
}

impl Track {
    /// `moof` (a whole box, whose `mdat` follows it directly) listing only
    /// the samples decoded before `end` seconds of the film; `None` when
    /// all are (or the fragment is laid out in a way this does not cut:
    /// several tracks or runs, an explicit base offset, data not right
    /// after the `mdat` header).
    pub fn trim(&self, moof: &[u8], end: f64) -> Result<Option<Trimmed>, BoxError> {
        let end = (end * f64::from(self.timescale)).round() as i64 + self.shift;
        let whole = Found { kind: *b"moof", start: 0, size: moof.len(), header: 8 };
        if super::mp4::header_at(moof, 0)?.2 != 8 {
            return Ok(None);
        }
        let trafs: Vec<Found> = kids(moof, &whole)?.into_iter().filter(|b| &b.kind == b"traf").collect();
        let [traf] = trafs[..] else { return Ok(None) };
        let boxes = kids(moof, &traf)?;
        let runs: Vec<&Found> = boxes.iter().filter(|b| &b.kind == b"trun").collect();
        let [trun] = runs[..] else { return Ok(None) };
        let samples = self.samples_of(moof, &traf)?;
        let n = samples.iter().take_while(|s| (s.dts as i64) < end).count();
        if n == samples.len() || n == 0 || traf.header != 8 || trun.header != 8 {
            return Ok(None);
        }
        let at = trun.start + trun.header;
        let flags = u32_at(moof, at)? & 0x00ff_ffff;
        let tfhd = boxes.iter().find(|b| &b.kind == b"tfhd").ok_or(BoxError("no tfhd"))?;
        let explicit = u32_at(moof, tfhd.start + tfhd.header)? & 0x01 != 0;
        if flags & 0x01 == 0 || explicit {
            return Ok(None);
        }
        let offset = u32_at(moof, at + 8)?;
        if u64::from(offset) != moof.len() as u64 + 8 {
            return Ok(None);
        }
        let entry = 4 * ((flags >> 8) & 0xf).count_ones() as usize;
        let head = 8 + 4 + if flags & 0x04 != 0 { 4 } else { 0 };
        let keep_to = at + head + n * entry;
        let cut = trun.start + trun.size - keep_to;
        let mut out = Vec::with_capacity(moof.len() - cut);
        out.extend_from_slice(&moof[..keep_to]);
        out.extend_from_slice(&moof[trun.start + trun.size..]);
        let shrink = |out: &mut Vec<u8>, at: usize| -> Result<(), BoxError> {
            let size = u32_at(out, at)? as usize - cut;
            out[at..at + 4].copy_from_slice(&(size as u32).to_be_bytes());
            Ok(())
        };
        shrink(&mut out, 0)?;
        shrink(&mut out, traf.start)?;
        shrink(&mut out, trun.start)?;
        out[at + 4..at + 8].copy_from_slice(&(n as u32).to_be_bytes());
        out[at + 8..at + 12].copy_from_slice(&(offset - cut as u32).to_be_bytes());
        let kept = samples[..n].iter().map(|s| (s.data.end - s.data.start) as u64).sum();
        Ok(Some(Trimmed { moof: out, kept }))
    }

    /// The samples one `traf` lists, their data ranges as the `moof` says
    /// (not checked against a buffer: the `mdat` is not in it).
    fn samples_of(&self, moof: &[u8], traf: &Found) -> Result<Vec<Sample>, BoxError> {
        let whole = Found { kind: *b"moof", start: 0, size: moof.len(), header: 8 };
        let mut out = Vec::new();
        self.traf(moof, &whole, traf, 0, usize::MAX, &mut out)?;
        Ok(out)
    }
}

/// The media time of an edit list's first edit that is not empty.
fn edit_shift(buf: &[u8], elst: &Found) -> Result<i64, BoxError> {
    let body = elst.start + elst.header;
    let version = u8_at(buf, body)?;
    let count = u32_at(buf, body + 4)?;
    let mut at = body + 8;
    for _ in 0..count.min(16) {
        let media_time = if version == 1 {
            let t = u64_at(buf, at + 8)? as i64;
            at += 20;
            t
        } else {
            let t = i64::from(u32_at(buf, at + 4)? as i32);
            at += 12;
            t
        };
        if media_time >= 0 {
            return Ok(media_time);
        }
    }
    Ok(0)
}

/// `avcC`'s NAL length size and parameter sets.
fn avc_config(b: &[u8]) -> Result<Codec, BoxError> {
    let length_size = usize::from(u8_at(b, 4)? & 3) + 1;
    let mut at = 5;
    let sets = |count: usize, at: &mut usize| -> Result<Vec<Vec<u8>>, BoxError> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(u16_at(b, *at)?);
            out.push(b.get(*at + 2..*at + 2 + len).ok_or(BoxError("avcC cut short"))?.to_vec());
            *at += 2 + len;
        }
        Ok(out)
    };
    let n = usize::from(u8_at(b, at)? & 0x1f);
    at += 1;
    let sps = sets(n, &mut at)?;
    let n = usize::from(u8_at(b, at)?);
    at += 1;
    let pps = sets(n, &mut at)?;
    if sps.is_empty() || pps.is_empty() {
        return Err(BoxError("avcC without parameter sets"));
    }
    Ok(Codec::H264 { length_size, sps, pps })
}

/// A descriptor's tag, its body's length and where the body starts.
fn descriptor(b: &[u8], at: usize) -> Result<(u8, usize, usize), BoxError> {
    let tag = u8_at(b, at)?;
    let (mut len, mut pos) = (0usize, at + 1);
    for _ in 0..4 {
        let byte = u8_at(b, pos)?;
        pos += 1;
        len = (len << 7) | usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, len, pos))
}

/// `esds`' AudioSpecificConfig (ISO/IEC 14496-1 and -3), as ADTS wants it.
fn aac_config(b: &[u8]) -> Result<Codec, BoxError> {
    let (tag, _, mut at) = descriptor(b, 0)?;
    if tag != 0x03 {
        return Err(BoxError("esds without an ES descriptor"));
    }
    let flags = u8_at(b, at + 2)?;
    at += 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(u8_at(b, at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, _, at) = descriptor(b, at)?;
    if tag != 0x04 || u8_at(b, at)? != 0x40 {
        return Err(BoxError("not MPEG-4 audio"));
    }
    let (tag, len, at) = descriptor(b, at + 13)?;
    if tag != 0x05 || len < 2 {
        return Err(BoxError("no AudioSpecificConfig"));
    }
    let asc = u16_at(b, at)?;
    let mut object = (asc >> 11) as u8;
    let rate_index = ((asc >> 7) & 0x0f) as u8;
    let channels = ((asc >> 3) & 0x0f) as u8;
    if object == 5 || object == 29 {
        // HE-AAC signalled explicitly: the core's type follows the
        // extension's rate; ADTS carries the core (SBR is implicit there).
        let more = u32_at(b, at).unwrap_or(u32::from(asc) << 16);
        object = ((more >> 10) & 0x1f) as u8;
    }
    if !(1..=4).contains(&object) || rate_index > 12 || channels == 0 || channels > 7 {
        return Err(BoxError("an AAC setup ADTS cannot carry"));
    }
    Ok(Codec::Aac { profile: object - 1, rate_index, channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aac_lc_setup_is_read() {
        // ES descriptor, decoder config (AAC), AudioSpecificConfig 0x1210:
        // LC, 44.1 kHz, stereo.
        let mut b = vec![0x03, 25, 0, 1, 0, 0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend([0x05, 2, 0x12, 0x10, 0x06, 1, 2]);
        assert_eq!(aac_config(&b), Ok(Codec::Aac { profile: 1, rate_index: 4, channels: 2 }));
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        super::super::mp4::wrap(kind, body)
    }

    /// A moof of one track with three samples of 10 bytes, 1000 ticks each
    /// from tick 0, data right after the mdat header.
    fn moof() -> Vec<u8> {
        let tfhd = boxed(b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 1]);
        let tfdt = boxed(b"tfdt", &[0, 0, 0, 0, 0, 0, 0, 0]);
        let mut trun = vec![0, 0, 3, 1, 0, 0, 0, 3, 0, 0, 0, 0];
        for _ in 0..3 {
            trun.extend_from_slice(&[0, 0, 3, 0xe8, 0, 0, 0, 10]);
        }
        let traf = boxed(b"traf", &[tfhd, tfdt, boxed(b"trun", &trun)].concat());
        let mut moof = boxed(b"moof", &traf);
        let offset = moof.len() as u32 + 8;
        let at = moof.len() - 3 * 8 - 4;
        moof[at..at + 4].copy_from_slice(&offset.to_be_bytes());
        moof
    }

    #[test]
    fn a_moof_is_cut_to_the_samples_before_the_end() {
        let track = Track {
            timescale: 1000,
            shift: 0,
            codec: Codec::Other,
            defaults: Defaults { duration: 0, size: 0, flags: 0 },
        };
        let whole = moof();
        let cut = track.trim(&whole, 1.5).unwrap().expect("cut");
        assert_eq!((cut.kept, cut.moof.len()), (20, whole.len() - 8));
        let samples = track
            .samples_of(
                &cut.moof,
                &kids(&cut.moof, &Found { kind: *b"moof", start: 0, size: cut.moof.len(), header: 8 }).unwrap()[0],
            )
            .unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].data.start, cut.moof.len() + 8, "the data follows the shorter moof's mdat header");
        assert_eq!(track.trim(&whole, 5.0).unwrap(), None, "nothing past the end");
        for n in 0..whole.len() {
            let _ = track.trim(&whole[..n], 1.5);
        }
    }

    #[test]
    fn broken_setups_are_errors_not_panics() {
        for n in 0..32 {
            let b = vec![0x03u8; n];
            let _ = aac_config(&b);
            let _ = avc_config(&b);
            let _ = Track::read(&b);
        }
        assert!(avc_config(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 200]).is_err());
    }
}
