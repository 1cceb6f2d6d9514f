//! HLS (RFC 8216, version 7) from DASH files: a master playlist naming each
//! video rendition with its bandwidth, resolution, codecs and the audio
//! group, and per file a media playlist of byte ranges: `EXT-X-MAP` for the
//! initialization section, one `EXTINF` + `EXT-X-BYTERANGE` per subsegment.

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ByteRange, Map, MasterPlaylist, MediaPlaylist, MediaPlaylistType,
    MediaSegment, Resolution, VariantStream,
};

use super::{Index, Renditions, Track};

/// fMP4 segments and byte ranges need version 7 at most; 7 is what the
/// issue's players expect.
const VERSION: usize = 7;

const AUDIO_GROUP: &str = "audio";

const SUBTITLE_GROUP: &str = "subs";

/// A media playlist of one segment, the whole file, of the video's length:
/// a subtitle track's WebVTT, or a progressive file for AVPro.
pub fn whole_file_media(duration: f64, file_uri: &str) -> String {
    let duration = duration.max(1.0);
    let playlist = MediaPlaylist {
        version: Some(3),
        target_duration: duration.ceil() as u64,
        playlist_type: Some(MediaPlaylistType::Vod),
        end_list: true,
        segments: vec![MediaSegment { uri: file_uri.to_owned(), duration: duration as f32, ..Default::default() }],
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// A live stream's variant in its master playlist.
#[derive(Debug, Clone, Default)]
pub struct LiveVariant {
    /// The link of its playlist (the shared session's).
    pub uri: String,
    /// Bits per second (yt-dlp's `tbr`).
    pub bandwidth: u64,
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// A live stream's master playlist, made by reelay from the extraction's
/// variants (the origin's own names its edge node, the client's session and
/// more that no player needs): highest first. With `audio` (a stream whose
/// video and audio come apart, as SABR's formats do), every variant plays
/// with that audio rendition, and its bandwidth and codecs count it.
pub fn live_master(variants: &[LiveVariant], audio: Option<&LiveVariant>) -> String {
    let mut variants: Vec<VariantStream> = variants
        .iter()
        .map(|v| {
            let codecs = match (audio, &v.codecs) {
                (Some(a), Some(c)) => a.codecs.as_ref().map(|ac| format!("{c},{ac}")),
                (_, c) => c.clone(),
            };
            let bandwidth = v.bandwidth + audio.map_or(0, |a| a.bandwidth);
            let mut stream = variant(v.uri.clone(), bandwidth.max(1), codecs, v.resolution, v.frame_rate);
            stream.audio = audio.map(|_| AUDIO_GROUP.into());
            stream
        })
        .collect();
    variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    let Some(a) = audio else { return plain_master(variants) };
    let alternatives = vec![AlternativeMedia {
        media_type: AlternativeMediaType::Audio,
        uri: Some(a.uri.clone()),
        group_id: AUDIO_GROUP.into(),
        name: "audio".into(),
        default: true,
        autoselect: true,
        ..Default::default()
    }];
    if variants.is_empty() {
        // Audio alone: one variant that is the audio playlist.
        variants.push(variant(a.uri.clone(), a.bandwidth.max(1), a.codecs.clone(), None, None));
    }
    grouped_master(alternatives, variants)
}

/// A master of variants and the renditions they play with.
fn grouped_master(alternatives: Vec<AlternativeMedia>, variants: Vec<VariantStream>) -> String {
    let playlist = MasterPlaylist {
        version: Some(VERSION),
        independent_segments: true,
        alternatives,
        variants,
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// A variant that carries all its media itself (no rendition groups).
fn variant(
    uri: String,
    bandwidth: u64,
    codecs: Option<String>,
    resolution: Option<(u32, u32)>,
    frame_rate: Option<f64>,
) -> VariantStream {
    VariantStream {
        uri,
        bandwidth,
        codecs,
        resolution: resolution.map(|(w, h)| Resolution { width: w.into(), height: h.into() }),
        frame_rate,
        ..Default::default()
    }
}

/// A master of such variants only (live, muxed HLS).
fn plain_master(variants: Vec<VariantStream>) -> String {
    let playlist = MasterPlaylist { version: Some(3), independent_segments: true, variants, ..Default::default() };
    write(|w| playlist.write_to(w))
}

/// The master playlist.
pub fn master(r: &Renditions) -> String {
    let audio_bw = r.audio.as_ref().map_or(0, |a| a.index.peak_bitrate());
    let audio_avg = r.audio.as_ref().map_or(0, |a| a.index.average_bitrate());
    // Every language in one group; only the default (the original) says so.
    let alternatives = r
        .audio
        .iter()
        .map(|a| (a, true))
        .chain(r.other_audio.iter().map(|a| (a, false)))
        .map(|(a, default)| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(a.playlist_uri.clone()),
            group_id: AUDIO_GROUP.into(),
            language: a.language.as_ref().map(|(code, _)| code.clone()),
            name: a.language.as_ref().map_or_else(|| a.id.clone(), |(_, name)| name.clone()),
            default,
            autoselect: true,
            ..Default::default()
        })
        .chain(r.subtitles.iter().map(|s| AlternativeMedia {
            media_type: AlternativeMediaType::Subtitles,
            uri: Some(s.playlist_uri.clone()),
            group_id: SUBTITLE_GROUP.into(),
            language: Some(s.lang.clone()),
            name: s.name.clone(),
            autoselect: !s.auto,
            ..Default::default()
        }))
        .collect();
    let subtitles = (!r.subtitles.is_empty()).then(|| SUBTITLE_GROUP.to_owned());
    if r.video.is_empty()
        && let Some(a) = &r.audio
    {
        // Audio alone: one variant that is the audio playlist.
        let only = VariantStream {
            uri: a.playlist_uri.clone(),
            bandwidth: audio_bw,
            average_bandwidth: Some(audio_avg),
            codecs: a.codecs.clone(),
            ..Default::default()
        };
        let playlist = MasterPlaylist {
            version: Some(VERSION),
            independent_segments: true,
            variants: vec![only],
            ..Default::default()
        };
        return write(|w| playlist.write_to(w));
    }
    let variants = r
        .video
        .iter()
        .map(|v| VariantStream {
            uri: v.playlist_uri.clone(),
            bandwidth: v.index.peak_bitrate() + audio_bw,
            average_bandwidth: Some(v.index.average_bitrate() + audio_avg),
            codecs: codecs(v, r.audio.as_ref()),
            resolution: v.width.zip(v.height).map(|(w, h)| Resolution { width: w.into(), height: h.into() }),
            frame_rate: v.fps,
            audio: r.audio.as_ref().map(|_| AUDIO_GROUP.into()),
            subtitles: subtitles.clone(),
            ..Default::default()
        })
        .collect();
    grouped_master(alternatives, variants)
}

/// `CODECS` names every codec of the variant, its audio's included; when
/// one is unknown the attribute is left out rather than half right.
fn codecs(video: &Track, audio: Option<&Track>) -> Option<String> {
    match audio {
        Some(a) => Some(format!("{},{}", video.codecs.as_deref()?, a.codecs.as_deref()?)),
        None => video.codecs.clone(),
    }
}

/// A muxed HLS master: one variant per video rendition, each carrying the
/// audio in its own segments (`uris`, in the order of `r.video`); no audio
/// group, which Media Foundation (AVPro) would play without sound.
pub fn muxed_master(r: &Renditions, uris: &[String]) -> String {
    let audio_bw = r.audio.as_ref().map_or(0, |a| a.index.peak_bitrate());
    let variants = r
        .video
        .iter()
        .zip(uris)
        .map(|(v, uri)| {
            let bandwidth = v.index.peak_bitrate() + audio_bw;
            variant(uri.clone(), bandwidth, codecs(v, r.audio.as_ref()), v.width.zip(v.height), v.fps)
        })
        .collect();
    plain_master(variants)
}

/// A muxed variant's media playlist: one MPEG-TS segment per subsegment of
/// the video file (`segment_uri(n)`), complete with `EXT-X-ENDLIST` from the
/// first request, so players (AVPro) treat it as a film and seek in it.
pub fn muxed_media(index: &Index, segment_uri: impl Fn(usize) -> String) -> String {
    let segments: Vec<MediaSegment> = index
        .segments
        .iter()
        .enumerate()
        .map(|(n, s)| MediaSegment { uri: segment_uri(n), duration: index.seconds(s) as f32, ..Default::default() })
        .collect();
    vod(index, 3, segments)
}

/// A complete (VOD) media playlist of `index`'s subsegments as `segments`.
fn vod(index: &Index, version: usize, segments: Vec<MediaSegment>) -> String {
    let longest = index.segments.iter().map(|s| index.seconds(s)).fold(0.0, f64::max);
    let playlist = MediaPlaylist {
        version: Some(version),
        // RFC 8216 §4.3.3.1: each EXTINF rounded to an integer is at most this.
        target_duration: longest.round().max(1.0) as u64,
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        independent_segments: true,
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// The media playlist of one file laid out as `index`, fetched from `file_uri`.
pub fn media(index: &Index, file_uri: &str) -> String {
    let mut segments: Vec<MediaSegment> = index
        .segments
        .iter()
        .map(|s| MediaSegment {
            uri: file_uri.to_owned(),
            duration: index.seconds(s) as f32,
            byte_range: Some(ByteRange { length: s.size.into(), offset: Some(s.offset) }),
            ..Default::default()
        })
        .collect();
    if let Some(first) = segments.first_mut() {
        first.map = Some(Map {
            uri: file_uri.to_owned(),
            byte_range: Some(ByteRange { length: index.init_len(), offset: Some(0) }),
            ..Default::default()
        });
    }
    vod(index, VERSION, segments)
}

fn write(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::with_capacity(4096);
    f(&mut out).expect("writing to a Vec does not fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8 from UTF-8 input")
}
