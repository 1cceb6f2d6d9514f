//! The few ISO BMFF boxes a merge writes or patches (ISO/IEC 14496-12):
//! a `moov` holding both inputs' tracks, the `sidx` that indexes the
//! merged file, and each copied `moof`'s track and sequence numbers.
//! Everything else is copied as the inputs have it. Never panics on any
//! input: what it cannot read is an error, and the caller falls back.

/// A box it could not read or write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BoxError(pub &'static str);

/// One box in a buffer: its type, where it starts and its whole size, and
/// its header's length.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub kind: [u8; 4],
    pub start: usize,
    pub size: usize,
    pub header: usize,
}

impl Found {
    /// The whole box.
    pub fn all<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.start + self.size]
    }
}

/// The box header at `pos` of `buf`: (type, size, header length), the size
/// read from the header (not checked against the buffer).
pub fn header_at(buf: &[u8], pos: usize) -> Result<([u8; 4], u64, usize), BoxError> {
    let h = buf.get(pos..pos + 8).ok_or(BoxError("a box header cut short"))?;
    let kind: [u8; 4] = h[4..8].try_into().expect("4 bytes");
    let (size, header) = match u32::from_be_bytes(h[..4].try_into().expect("4 bytes")) {
        1 => {
            let l = buf.get(pos + 8..pos + 16).ok_or(BoxError("a box header cut short"))?;
            (u64::from_be_bytes(l.try_into().expect("8 bytes")), 16)
        }
        0 => return Err(BoxError("a box that runs to the end of the file")),
        n => (u64::from(n), 8),
    };
    if size < header as u64 {
        return Err(BoxError("a box shorter than its header"));
    }
    Ok((kind, size, header))
}

/// The boxes laid end to end in `buf[from..to]`, each whole within it.
pub fn children(buf: &[u8], from: usize, to: usize) -> Result<Vec<Found>, BoxError> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        let (kind, size, header) = header_at(buf, pos)?;
        let size = usize::try_from(size).map_err(|_| BoxError("a box larger than memory"))?;
        if pos.checked_add(size).is_none_or(|end| end > to) {
            return Err(BoxError("a box runs past its parent"));
        }
        out.push(Found { kind, start: pos, size, header });
        pos += size;
    }
    Ok(out)
}

/// The first child of `parent` of type `kind`.
fn child(buf: &[u8], parent: &Found, kind: &[u8; 4]) -> Result<Found, BoxError> {
    children(buf, parent.start + parent.header, parent.start + parent.size)?
        .into_iter()
        .find(|b| &b.kind == kind)
        .ok_or(BoxError("a box is missing from the init section"))
}

/// A box of `kind` around `body`.
pub fn wrap(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&u32::try_from(body.len() + 8).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) -> Result<(), BoxError> {
    buf.get_mut(at..at + 4).ok_or(BoxError("a box cut short"))?.copy_from_slice(&v.to_be_bytes());
    Ok(())
}

fn get_u32(buf: &[u8], at: usize) -> Result<u32, BoxError> {
    Ok(u32::from_be_bytes(buf.get(at..at + 4).ok_or(BoxError("a box cut short"))?.try_into().expect("4 bytes")))
}

fn get_u64(buf: &[u8], at: usize) -> Result<u64, BoxError> {
    Ok(u64::from_be_bytes(buf.get(at..at + 8).ok_or(BoxError("a box cut short"))?.try_into().expect("8 bytes")))
}

/// A duration field of a full box (`mvhd`, `tkhd`): 32 bits in version 0,
/// 64 in version 1.
fn put_duration(buf: &mut [u8], at: usize, version: u8, v: u64) -> Result<(), BoxError> {
    match version {
        0 => put_u32(buf, at, u32::try_from(v).unwrap_or(u32::MAX)),
        _ => {
            buf.get_mut(at..at + 8).ok_or(BoxError("a box cut short"))?.copy_from_slice(&v.to_be_bytes());
            Ok(())
        }
    }
}

/// One input's head: its `ftyp` and `moov`, the first `init_len` bytes.
pub struct Init<'a> {
    buf: &'a [u8],
    ftyp: Found,
    moov: Found,
}

impl<'a> Init<'a> {
    pub fn read(buf: &'a [u8]) -> Result<Self, BoxError> {
        let top = children(buf, 0, buf.len())?;
        let find = |k: &[u8; 4]| top.iter().find(|b| &b.kind == k).copied();
        let (Some(ftyp), Some(moov)) = (find(b"ftyp"), find(b"moov")) else {
            return Err(BoxError("no ftyp and moov at the start"));
        };
        Ok(Init { buf, ftyp, moov })
    }

    /// Its one track and that track's `trex` (a DASH file holds one).
    fn track(&self) -> Result<(Found, Found), BoxError> {
        let kids = children(self.buf, self.moov.start + self.moov.header, self.moov.start + self.moov.size)?;
        let mut traks = kids.iter().filter(|b| &b.kind == b"trak");
        let trak = *traks.next().ok_or(BoxError("no track in the moov"))?;
        if traks.next().is_some() {
            return Err(BoxError("more than one track in a DASH file"));
        }
        let mvex = kids.iter().find(|b| &b.kind == b"mvex").ok_or(BoxError("no mvex: not a fragmented file"))?;
        let trex = child(self.buf, mvex, b"trex")?;
        Ok((trak, trex))
    }

    /// Its `mvhd`'s timescale.
    pub fn movie_timescale(&self) -> Result<u32, BoxError> {
        let mvhd = child(self.buf, &self.moov, b"mvhd")?;
        let version = *self.buf.get(mvhd.start + 8).ok_or(BoxError("mvhd cut short"))?;
        get_u32(self.buf, mvhd.start + 12 + if version == 1 { 16 } else { 8 })
    }
}

/// The merged file's `ftyp` and `moov`: the video's movie header (with the
/// whole `duration`, in its timescale, and room for two tracks), the
/// video's track as track 1 and the audio's as track 2, and an `mvex` whose
/// `mehd` says the duration too (players read either).
///
/// A clip (`edits`: each track's media time that plays first) gets an
/// edit list per track in place of the inputs' own.
pub fn merged_head(video: &Init, audio: &Init, duration: u64, edits: Option<[i64; 2]>) -> Result<Vec<u8>, BoxError> {
    let mut mvhd = child(video.buf, &video.moov, b"mvhd")?.all(video.buf).to_vec();
    let version = *mvhd.get(8).ok_or(BoxError("mvhd cut short"))?;
    let times = if version == 1 { 16 } else { 8 };
    put_duration(&mut mvhd, 12 + times + 4, version, duration)?;
    // next_track_ID is the last field.
    let last = mvhd.len().checked_sub(4).ok_or(BoxError("mvhd cut short"))?;
    put_u32(&mut mvhd, last, 3)?;
    let mut moov = mvhd;
    let mut mvex = Vec::new();
    let mehd = [&[1u8, 0, 0, 0][..], &duration.to_be_bytes()].concat();
    mvex.extend(wrap(b"mehd", &mehd));
    for (id, init) in [(1u32, video), (2, audio)] {
        let (trak, trex) = init.track()?;
        let mut trak_bytes = trak.all(init.buf).to_vec();
        let tkhd = child(&trak_bytes, &Found { start: 0, ..trak }, b"tkhd")?;
        let v = *trak_bytes.get(tkhd.start + 8).ok_or(BoxError("tkhd cut short"))?;
        let id_at = tkhd.start + 12 + if v == 1 { 16 } else { 8 };
        put_u32(&mut trak_bytes, id_at, id)?;
        put_duration(&mut trak_bytes, id_at + 8, v, duration)?;
        if let Some(edits) = edits {
            trak_bytes = with_edit(&trak_bytes, duration, edits[id as usize - 1])?;
        }
        moov.extend(trak_bytes);
        let mut trex_bytes = trex.all(init.buf).to_vec();
        put_u32(&mut trex_bytes, 12, id)?;
        mvex.extend(trex_bytes);
    }
    moov.extend(wrap(b"mvex", &mvex));
    let mut out = video.ftyp.all(video.buf).to_vec();
    out.extend(wrap(b"moov", &moov));
    Ok(out)
}

/// `trak` with one edit in place of its edit list: `duration` (in the
/// movie's timescale) of its media from `media_time` (in its own).
fn with_edit(trak: &[u8], duration: u64, media_time: i64) -> Result<Vec<u8>, BoxError> {
    let (_, _, header) = header_at(trak, 0)?;
    let mut body = Vec::with_capacity(trak.len() + 36);
    for b in children(trak, header, trak.len())? {
        if &b.kind == b"edts" {
            continue;
        }
        body.extend_from_slice(b.all(trak));
        if &b.kind == b"tkhd" {
            let mut elst = vec![1, 0, 0, 0, 0, 0, 0, 1];
            elst.extend_from_slice(&duration.to_be_bytes());
            elst.extend_from_slice(&media_time.to_be_bytes());
            // Rate 1.0.
            elst.extend_from_slice(&[0, 1, 0, 0]);
            body.extend(wrap(b"edts", &wrap(b"elst", &elst)));
        }
    }
    Ok(wrap(b"trak", &body))
}

/// One reference of a `sidx`: the bytes from one of its track's fragments
/// to the next (the other track's between them included), and its time.
pub struct Reference {
    pub size: u32,
    pub duration: u32,
}

/// The size of a `sidx` with `count` references.
pub fn sidx_len(count: usize) -> u64 {
    40 + 12 * count as u64
}

/// A `sidx` (version 1) for `track` in `timescale`, starting at
/// `earliest`, whose first reference starts `first_offset` bytes after it.
/// One per track: each indexes its own track's fragments, so a player
/// seeks every stream to its own fragment.
pub fn sidx(
    track: u32,
    timescale: u32,
    earliest: u64,
    first_offset: u64,
    refs: &[Reference],
) -> Result<Vec<u8>, BoxError> {
    let count = u16::try_from(refs.len()).map_err(|_| BoxError("too many fragments for one sidx"))?;
    let mut body = Vec::with_capacity(36 + refs.len() * 12);
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&track.to_be_bytes());
    body.extend_from_slice(&timescale.to_be_bytes());
    body.extend_from_slice(&earliest.to_be_bytes());
    body.extend_from_slice(&first_offset.to_be_bytes());
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&count.to_be_bytes());
    for r in refs {
        if r.size >> 31 != 0 {
            return Err(BoxError("a fragment of 2 GiB or more"));
        }
        body.extend_from_slice(&r.size.to_be_bytes());
        body.extend_from_slice(&r.duration.to_be_bytes());
        // starts_with_SAP, SAP type 1.
        body.extend_from_slice(&0x9000_0000u32.to_be_bytes());
    }
    Ok(wrap(b"sidx", &body))
}

/// What a fragment's `moof` becomes in a composed file.
#[derive(Debug, Clone, Copy)]
pub struct Renumber {
    /// The track it belongs to there (1 video, 2 audio).
    pub track: u32,
    /// Its fragment's sequence number there.
    pub sequence: u32,
    /// How far the moof moved (composed offset minus input offset), for an
    /// explicit base data offset.
    pub moved: i64,
    /// Ticks its decode time moves back (a clip starts near zero).
    pub rebase: u64,
}

/// Renumbers a `moof` in place: its fragment's sequence number, each
/// `traf`'s track and decode time; an explicit base data offset (rare: most
/// files say the data starts at the moof) moves by as much as the moof did.
pub fn patch_moof(moof: &mut [u8], to: Renumber) -> Result<(), BoxError> {
    let Renumber { track, sequence, moved, rebase } = to;
    let (kind, size, header) = header_at(moof, 0)?;
    if &kind != b"moof" || size != moof.len() as u64 {
        return Err(BoxError("not a whole moof"));
    }
    for b in children(moof, header, moof.len())? {
        match &b.kind {
            b"mfhd" => put_u32(moof, b.start + b.header + 4, sequence)?,
            b"traf" => {
                for t in children(moof, b.start + b.header, b.start + b.size)? {
                    if &t.kind == b"tfdt" && rebase > 0 {
                        let at = t.start + t.header;
                        let late = || BoxError("a fragment before its clip's base");
                        if moof.get(at) == Some(&1) {
                            let moved = get_u64(moof, at + 4)?.checked_sub(rebase).ok_or_else(late)?;
                            moof.get_mut(at + 4..at + 12)
                                .ok_or(BoxError("tfdt cut short"))?
                                .copy_from_slice(&moved.to_be_bytes());
                        } else {
                            let moved = u64::from(get_u32(moof, at + 4)?).checked_sub(rebase).ok_or_else(late)?;
                            put_u32(moof, at + 4, u32::try_from(moved).map_err(|_| late())?)?;
                        }
                    }
                    if &t.kind != b"tfhd" {
                        continue;
                    }
                    let at = t.start + t.header;
                    let flags = get_u32(moof, at)? & 0x00ff_ffff;
                    put_u32(moof, at + 4, track)?;
                    if flags & 1 == 1 {
                        let base = get_u64(moof, at + 8)?;
                        let moved =
                            base.checked_add_signed(moved).ok_or(BoxError("a base data offset out of range"))?;
                        moof.get_mut(at + 8..at + 16)
                            .ok_or(BoxError("tfhd cut short"))?
                            .copy_from_slice(&moved.to_be_bytes());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(kind: &[u8; 4], version: u8, rest: &[u8]) -> Vec<u8> {
        wrap(kind, &[&[version, 0, 0, 0][..], rest].concat())
    }

    #[test]
    fn a_moof_is_renumbered_and_its_explicit_base_moved() {
        let mfhd = full(b"mfhd", 0, &7u32.to_be_bytes());
        let tfhd = wrap(b"tfhd", &[&[0, 0, 0, 1][..], &1u32.to_be_bytes(), &1000u64.to_be_bytes()].concat());
        let traf = wrap(b"traf", &tfhd);
        let mut moof = wrap(b"moof", &[mfhd, traf].concat());
        patch_moof(&mut moof, Renumber { track: 2, sequence: 42, moved: 500, rebase: 0 }).unwrap();
        let kids = children(&moof, 8, moof.len()).unwrap();
        assert_eq!(get_u32(&moof, kids[0].start + 12).unwrap(), 42);
        let tfhd_at = kids[1].start + 8;
        assert_eq!(get_u32(&moof, tfhd_at + 12).unwrap(), 2);
        assert_eq!(get_u64(&moof, tfhd_at + 16).unwrap(), 1500);
    }

    #[test]
    fn broken_boxes_are_errors_not_panics() {
        let to = Renumber { track: 1, sequence: 1, moved: 0, rebase: 0 };
        assert!(patch_moof(&mut [0, 0, 0, 9, b'm', b'o', b'o', b'f', 0], to).is_err());
        assert!(Init::read(&[0, 0, 0, 4]).is_err());
        assert!(children(&[0, 0, 0, 64, b'm', b'o', b'o', b'v'], 0, 8).is_err());
        let refs = [Reference { size: 1 << 31, duration: 1 }];
        assert!(sidx(1, 1000, 0, 0, &refs).is_err());
        assert_eq!(sidx(1, 1000, 0, 0, &[Reference { size: 9, duration: 1 }]).unwrap().len() as u64, sidx_len(1));
    }
}
