//! An MPEG-TS segment writer (ISO/IEC 13818-1) for one program of H.264
//! video and AAC audio, as HLS players read it: a PAT and a PMT first, the
//! program clock on the video's packets, each access unit one PES packet.
//! The packet and table encoding is the `mpeg2ts` crate's; this module
//! splits PES packets across TS packets and keeps the counters.

use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{self, Pat, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation, TransportScramblingControl, TsHeader,
    TsPacket, TsPacketWriter, TsPayload, VersionNumber, WriteTsPacket,
};

use super::mp4::BoxError;

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
/// The longest the program clock goes unsaid, in 90 kHz ticks (the
/// standard asks for 100 ms at most).
const PCR_EVERY: u64 = 90 * 90;
/// Timestamps are 33 bits.
const WRAP: u64 = (1 << 33) - 1;

/// One segment being written.
pub struct Writer {
    out: TsPacketWriter<Vec<u8>>,
    /// The continuity counters of the PAT, the PMT, the video and the audio.
    cc: [ContinuityCounter; 4],
    /// When the program clock was last said, in 90 kHz ticks.
    last_pcr: Option<u64>,
}

fn failed(_: mpeg2ts::Error) -> BoxError {
    BoxError("a TS packet could not be written")
}

fn pid(n: u16) -> Pid {
    Pid::new(n).expect("a 13-bit PID")
}

impl Writer {
    /// A segment that starts with its program's tables.
    pub fn new(capacity: usize) -> Result<Writer, BoxError> {
        let mut w = Writer {
            out: TsPacketWriter::new(Vec::with_capacity(capacity)),
            cc: std::array::from_fn(|_| ContinuityCounter::new()),
            last_pcr: None,
        };
        let pat = Pat {
            transport_stream_id: 1,
            version_number: VersionNumber::new(),
            table: vec![ProgramAssociation { program_num: 1, program_map_pid: pid(PMT_PID) }],
        };
        w.packet(0, 0, None, Some(TsPayload::Pat(pat)))?;
        let es = |stream_type, n| EsInfo { stream_type, elementary_pid: pid(n), descriptors: Vec::new() };
        let pmt = Pmt {
            program_num: 1,
            pcr_pid: Some(pid(VIDEO_PID)),
            version_number: VersionNumber::new(),
            program_info: Vec::new(),
            es_info: vec![es(StreamType::H264, VIDEO_PID), es(StreamType::AdtsAac, AUDIO_PID)],
        };
        w.packet(PMT_PID, 1, None, Some(TsPayload::Pmt(pmt)))?;
        Ok(w)
    }

    /// One access unit of video (Annex B), decoded at `dts` and shown at
    /// `pts` (90 kHz ticks).
    pub fn video(&mut self, pts: u64, dts: u64, key: bool, data: &[u8]) -> Result<(), BoxError> {
        let field = clock_field(key, dts)?;
        self.last_pcr = Some(dts);
        let dts = (dts != pts).then_some(dts);
        self.pes(VIDEO_PID, 2, StreamId::new(0xE0), pts, dts, Some(field), data)
    }

    /// AAC frames with their ADTS headers, the first shown at `pts`.
    pub fn audio(&mut self, pts: u64, data: &[u8]) -> Result<(), BoxError> {
        if self.last_pcr.is_none_or(|at| pts.saturating_sub(at) > PCR_EVERY) {
            // The clock, on the video's PID, in a packet of its own.
            let field = clock_field(false, pts)?;
            self.last_pcr = Some(pts);
            self.packet(VIDEO_PID, 2, Some(field), None)?;
        }
        self.pes(AUDIO_PID, 3, StreamId::new(0xC0), pts, None, None, data)
    }

    /// The segment's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out.into_stream()
    }

    /// One PES packet across as many TS packets as it takes.
    #[allow(clippy::too_many_arguments)]
    fn pes(
        &mut self,
        pid: u16,
        counter: usize,
        stream_id: StreamId,
        pts: u64,
        dts: Option<u64>,
        field: Option<AdaptationField>,
        data: &[u8],
    ) -> Result<(), BoxError> {
        let header = PesHeader {
            stream_id,
            priority: false,
            data_alignment_indicator: true,
            copyright: false,
            original_or_copy: false,
            pts: Some(stamp(pts)?),
            dts: dts.map(stamp).transpose()?,
            escr: None,
        };
        let optional = 3 + 5 + if dts.is_some() { 5 } else { 0 };
        // PES_packet_length counts what follows it; 0 (unbounded) is
        // allowed for video only.
        let length = u16::try_from(optional + data.len()).unwrap_or(0);
        let room = payload::Bytes::MAX_SIZE - 6 - optional - field.as_ref().map_or(0, |_| 8);
        let (first, mut rest) = data.split_at(room.min(data.len()));
        let start = mpeg2ts::ts::payload::Pes {
            header,
            pes_packet_len: length,
            data: payload::Bytes::new(first).map_err(failed)?,
        };
        self.packet(pid, counter, field, Some(TsPayload::PesStart(start)))?;
        while !rest.is_empty() {
            let (chunk, more) = rest.split_at(payload::Bytes::MAX_SIZE.min(rest.len()));
            let payload = TsPayload::PesContinuation(payload::Bytes::new(chunk).map_err(failed)?);
            self.packet(pid, counter, None, Some(payload))?;
            rest = more;
        }
        Ok(())
    }

    fn packet(
        &mut self,
        pid: u16,
        counter: usize,
        field: Option<AdaptationField>,
        payload: Option<TsPayload>,
    ) -> Result<(), BoxError> {
        let cc = self.cc[counter];
        // The counter moves only with a payload.
        if payload.is_some() {
            self.cc[counter].increment();
        }
        let header = TsHeader {
            transport_error_indicator: false,
            transport_priority: false,
            pid: self::pid(pid),
            transport_scrambling_control: TransportScramblingControl::NotScrambled,
            continuity_counter: cc,
        };
        self.out.write_ts_packet(&TsPacket { header, adaptation_field: field, payload }).map_err(failed)
    }
}

fn stamp(t: u64) -> Result<Timestamp, BoxError> {
    Timestamp::new(t & WRAP).map_err(failed)
}

/// An adaptation field that says the program clock is at `t`.
fn clock_field(key: bool, t: u64) -> Result<AdaptationField, BoxError> {
    Ok(AdaptationField {
        discontinuity_indicator: false,
        random_access_indicator: key,
        es_priority_indicator: false,
        pcr: Some(ClockReference::new((t & WRAP) * 300).map_err(failed)?),
        opcr: None,
        splice_countdown: None,
        transport_private_data: Vec::new(),
        extension: None,
    })
}

/// The 7-byte ADTS header of an AAC frame of `len` bytes.
pub fn adts(profile: u8, rate_index: u8, channels: u8, len: usize) -> Result<[u8; 7], BoxError> {
    let full = len + 7;
    if full >= 1 << 13 {
        return Err(BoxError("an AAC frame too long for ADTS"));
    }
    Ok([
        0xFF,
        0xF1,
        (profile << 6) | (rate_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | (full >> 11) as u8,
        (full >> 3) as u8,
        (((full & 7) as u8) << 5) | 0x1F,
        0xFC,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};

    #[test]
    fn a_segment_reads_back_as_its_tables_and_streams() {
        let mut w = Writer::new(0).unwrap();
        w.audio(90_000, &[1; 400]).unwrap();
        w.video(93_000, 90_000, true, &[0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x65, 1, 2, 3]).unwrap();
        w.video(96_000, 93_000, false, &vec![7; 5000]).unwrap();
        let bytes = w.finish();
        assert_eq!(bytes.len() % 188, 0);
        let mut reader = TsPacketReader::new(&bytes[..]);
        let mut kinds = Vec::new();
        while let Some(p) = reader.read_ts_packet().unwrap() {
            kinds.push((p.header.pid.as_u16(), p.adaptation_field.and_then(|a| a.pcr).is_some()));
        }
        assert_eq!(kinds[..4], [(0, false), (PMT_PID, false), (VIDEO_PID, true), (AUDIO_PID, false)]);
        assert!(kinds.iter().filter(|(pid, _)| *pid == VIDEO_PID).count() > 5000 / 184);
    }

    #[test]
    fn adts_says_the_frame_length() {
        let h = adts(1, 4, 2, 371).unwrap();
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!((h[0], h[1] & 0xF6, len), (0xFF, 0xF0, 378));
        assert!(adts(1, 4, 2, 9000).is_err());
    }
}
