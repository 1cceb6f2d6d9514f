//! Muxed HLS segments written in process: one subsegment of a DASH video
//! file and the audio frames that start within its time, as one MPEG-TS
//! segment ([`ts`]). The video's bytes are one range of its file (the
//! `sidx` says which); the audio's, the range of the fragments that cover
//! that time. Both are read through the store, so the viewers of the
//! files, of their manifest, of the composed merge and of the muxed HLS
//! share them. Times stay on the film's timeline (plus [`OFFSET`]), so
//! segments made one by one, in any order, play as one stream, and a
//! player seeking cold lands where the playlist says.
//!
//! H.264 becomes Annex B (an access unit delimiter first, the parameter
//! sets before each keyframe); AAC frames get ADTS headers. An audio frame
//! belongs to the segment in whose time it starts, so segments neither
//! overlap nor leave gaps. What is not H.264 with AAC is an error
//! ([`ComposeError::Layout`]): the caller remuxes with ffmpeg instead.

use std::sync::Arc;

use bytes::Bytes;

use super::mp4::BoxError;
use super::sidx::Index;
use super::track::{Codec, Sample, Track};
use super::{ComposeError, ts};
use crate::relay::{Relay, Spec};

/// Added to every timestamp, in 90 kHz ticks: B-frames' decode times and
/// AAC's priming start before zero, which MPEG-TS cannot say.
pub const OFFSET: u64 = 90_000;

/// The inputs of a muxed segment.
pub struct Muxed {
    pub video: (Spec, Arc<Index>),
    pub audio: (Spec, Arc<Index>),
    /// Which subsegment of the video.
    pub n: usize,
    /// A seek (no segment before it was made lately): exactly the
    /// fragments are read, not the store blocks around them, which would
    /// fetch up to 1 MiB before a small fragment. A player going on from
    /// the segment before reads through the store, whose blocks the next
    /// segments (and the straddling audio fragments) share.
    pub seek: bool,
}

/// Where subsegment `n` of `index` starts and ends, in seconds from the
/// first (the playlist's timeline).
pub fn span_seconds(index: &Index, n: usize) -> Option<(f64, f64)> {
    let (from, to) = index.spans().nth(n)?;
    let ts = f64::from(index.timescale.max(1));
    Some(((from - index.earliest) as f64 / ts, (to - index.earliest) as f64 / ts))
}

/// `t` ticks of `timescale` in 90 kHz ticks, on the segment timeline.
fn to_90k(t: i128, timescale: u32) -> u64 {
    let t = t * 90_000 / i128::from(timescale.max(1)) + i128::from(OFFSET);
    u64::try_from(t.max(0)).unwrap_or(u64::MAX)
}

impl Relay {
    /// Subsegment `n` of the video with its audio, as one MPEG-TS segment.
    pub async fn ts_segment(&self, muxed: &Muxed) -> Result<Bytes, ComposeError> {
        let (vspec, vindex) = &muxed.video;
        let (aspec, aindex) = &muxed.audio;
        let (vt, at) = (Track::read(&vindex.init)?, Track::read(&aindex.init)?);
        let (Codec::H264 { .. }, Codec::Aac { .. }) = (&vt.codec, &at.codec) else {
            return Err(BoxError("MPEG-TS is written for H.264 with AAC").into());
        };
        let n = muxed.n;
        let seg = vindex.segments.get(n).ok_or(BoxError("no such subsegment"))?;
        let (from, to) = vindex.spans().nth(n).ok_or(BoxError("no such subsegment"))?;
        let read = |spec: &Spec, range: std::ops::Range<u64>| {
            let spec = spec.clone();
            async move {
                match muxed.seek {
                    true => self.read_exact(spec, range).await,
                    false => self.read(spec, range).await,
                }
            }
        };
        let video = read(vspec, seg.offset..seg.offset + u64::from(seg.size)).await?;
        let vsamples = vt.samples(&video, seg.offset)?;

        // The segment's time in seconds; the first and the last segments
        // reach out to take whatever audio starts before or after the video.
        let vts = f64::from(vindex.timescale.max(1));
        let first = n == 0;
        let last = n + 1 == vindex.segments.len();
        let (t0, t1) = (from as f64 / vts, to as f64 / vts);
        // The audio fragments holding frames that start in that time.
        let seconds = |t: u64| (t as i64 - at.shift) as f64 / f64::from(at.timescale);
        let covering: Vec<usize> = (aindex.spans().enumerate())
            .filter(|&(_, (a, b))| (last || seconds(a) < t1) && (first || seconds(b) > t0))
            .map(|(i, _)| i)
            .collect();
        let (audio, aoffset) = match (covering.first(), covering.last()) {
            (Some(&i), Some(&j)) => {
                let (a, b) = (aindex.segments[i], aindex.segments[j]);
                let end = b.offset + u64::from(b.size);
                (read(aspec, a.offset..end).await?, a.offset)
            }
            _ => (Vec::new(), 0),
        };
        let within = |s: &Sample| (first || seconds(s.dts) >= t0) && (last || seconds(s.dts) < t1);
        let asamples: Vec<Sample> = at.samples(&audio, aoffset)?.into_iter().filter(within).collect();
        let (video, audio) = (Bytes::from(video), Bytes::from(audio));
        tokio::task::spawn_blocking(move || write(&vt, &video, &vsamples, &at, &audio, &asamples))
            .await
            .map_err(|_| BoxError("the muxer stopped"))?
            .map(Bytes::from)
            .map_err(ComposeError::from)
    }
}

/// The segment's bytes: both tracks' samples in decode order.
fn write(
    vt: &Track,
    video: &[u8],
    vsamples: &[Sample],
    at: &Track,
    audio: &[u8],
    asamples: &[Sample],
) -> Result<Vec<u8>, BoxError> {
    let (Codec::H264 { length_size, sps, pps }, Codec::Aac { profile, rate_index, channels }) = (&vt.codec, &at.codec)
    else {
        return Err(BoxError("MPEG-TS is written for H.264 with AAC"));
    };
    let vtime = |s: &Sample| to_90k(i128::from(s.dts) - i128::from(vt.shift), vt.timescale);
    let atime = |s: &Sample| to_90k(i128::from(s.dts) - i128::from(at.shift), at.timescale);
    let mut out = ts::Writer::new(video.len() + audio.len() + (video.len() + audio.len()) / 20 + 4096)?;
    let mut unit = Vec::new();
    let mut frames = Vec::new();
    let (mut v, mut a) = (vsamples.iter().peekable(), asamples.iter().peekable());
    loop {
        let take_video = match (v.peek(), a.peek()) {
            (Some(s), Some(t)) => vtime(s) <= atime(t),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_video {
            let s = v.next().expect("peeked");
            annex_b(&video[s.data.clone()], *length_size, s.key.then_some((sps, pps)), &mut unit)?;
            let dts = vtime(s);
            let pts = to_90k(i128::from(s.dts) + i128::from(s.cto) - i128::from(vt.shift), vt.timescale);
            out.video(pts.max(dts), dts, s.key, &unit)?;
        } else {
            // Audio frames go out in PES packets of up to about 100 ms.
            let s = a.next().expect("peeked");
            let pts = atime(s);
            frames.clear();
            let mut push = |s: &Sample| -> Result<(), BoxError> {
                let frame = &audio[s.data.clone()];
                frames.extend_from_slice(&ts::adts(*profile, *rate_index, *channels, frame.len())?);
                frames.extend_from_slice(frame);
                Ok(())
            };
            push(s)?;
            while let Some(t) = a.peek() {
                let next = atime(t);
                if next.saturating_sub(pts) >= 9_000 || v.peek().is_some_and(|s| vtime(s) <= next) {
                    break;
                }
                push(a.next().expect("peeked"))?;
            }
            out.audio(pts, &frames)?;
        }
    }
    Ok(out.finish())
}

/// H.264's sequence and picture parameter sets.
type ParameterSets<'a> = (&'a Vec<Vec<u8>>, &'a Vec<Vec<u8>>);

/// One access unit in Annex B: an access unit delimiter, then the
/// parameter sets when it is a keyframe that lacks them, then its NAL
/// units behind start codes.
fn annex_b(sample: &[u8], length_size: usize, sets: Option<ParameterSets>, out: &mut Vec<u8>) -> Result<(), BoxError> {
    const START: [u8; 4] = [0, 0, 0, 1];
    out.clear();
    out.extend_from_slice(&START);
    out.extend_from_slice(&[0x09, 0xF0]);
    let mut nals = Vec::new();
    let mut at = 0;
    while at < sample.len() {
        let len = sample
            .get(at..at + length_size)
            .ok_or(BoxError("a NAL length cut short"))?
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        at += length_size;
        let nal = sample.get(at..at + len).ok_or(BoxError("a NAL unit past its sample"))?;
        at += len;
        nals.push(nal);
    }
    let has_sets = nals.iter().any(|n| n.first().is_some_and(|b| b & 0x1f == 7));
    if let (Some((sps, pps)), false) = (sets, has_sets) {
        for set in sps.iter().chain(pps) {
            out.extend_from_slice(&START);
            out.extend_from_slice(set);
        }
    }
    for nal in nals {
        // Its own delimiter is already written.
        if nal.first().is_some_and(|b| b & 0x1f == 9) {
            continue;
        }
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_gets_its_parameter_sets_and_one_delimiter() {
        let sample = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x65, 1, 2];
        let (sps, pps) = (vec![vec![0x67, 9]], vec![vec![0x68, 8]]);
        let mut out = Vec::new();
        annex_b(&sample, 4, Some((&sps, &pps)), &mut out).unwrap();
        let want = [0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x67, 9, 0, 0, 0, 1, 0x68, 8, 0, 0, 0, 1, 0x65, 1, 2];
        assert_eq!(out, want);
        annex_b(&sample, 4, None, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x65, 1, 2]);
        assert!(annex_b(&[0, 0, 0, 9, 1], 4, None, &mut out).is_err());
    }
}
