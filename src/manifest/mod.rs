//! Manifests built from DASH files: an HLS master and media playlists, and
//! a DASH MPD, for a video whose platform serves video and audio as
//! separate fragmented MP4 files. Players that read them (AVPro, ExoPlayer,
//! AVPlayer, hls.js, dash.js, mpv, VLC, ffmpeg) fetch the parts by byte
//! range, seek, and switch quality, with no ffmpeg on the server.
//!
//! The layout of each file comes from its `sidx` box (read by the relay's
//! composer, [`crate::relay::compose::sidx`]), read through the relay once
//! and kept ([`indexes`]); the manifests are
//! written with m3u8-rs ([`hls`]) and quick-xml ([`dash`]).
//! Nothing here knows about HTTP: the caller says where each URI points.
//!
//! Owns: manifests and file layouts. May import `relay` (to read heads).

pub mod dash;
pub mod hls;
pub mod indexes;

use std::sync::Arc;

pub use crate::relay::compose::sidx::{Index, IndexError};
pub use indexes::{IndexFailure, Indexes};

/// One file of a manifest: a video or an audio rendition.
#[derive(Debug, Clone)]
pub struct Track {
    /// The format id, unique within the video (Representation id, NAME).
    pub id: String,
    /// Where the file's bytes are fetched (segments are byte ranges of it).
    pub file_uri: String,
    /// Where its HLS media playlist is.
    pub playlist_uri: String,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`), when known.
    pub codecs: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    /// True for an audio-only file.
    pub audio: bool,
    /// An audio track's language (`en`) and its name (`English`), when the
    /// platform says.
    pub language: Option<(String, String)>,
    /// The file's layout.
    pub index: Arc<Index>,
}

impl Track {
    fn mime(&self) -> &'static str {
        if self.audio { "audio/mp4" } else { "video/mp4" }
    }
}

/// What a manifest lists: video renditions, best first, and the audio that
/// goes with all of them: the default (the original language, or `lang=`'s)
/// and one track of each other language the video has.
#[derive(Debug, Clone)]
pub struct Renditions {
    pub video: Vec<Track>,
    pub audio: Option<Track>,
    /// Other languages' audio (dubs), after the default.
    pub other_audio: Vec<Track>,
    /// Subtitle tracks, served as WebVTT.
    pub subtitles: Vec<TextTrack>,
}

/// A subtitle track of a manifest: WebVTT, one file for the whole video.
#[derive(Debug, Clone)]
pub struct TextTrack {
    /// `en`, `pt-BR`.
    pub lang: String,
    /// What players show (`English`, `English (auto)`).
    pub name: String,
    /// The platform's automatic captions.
    pub auto: bool,
    /// Its HLS media playlist (one segment: the whole file).
    pub playlist_uri: String,
    /// The WebVTT file.
    pub file_uri: String,
}

impl Renditions {
    /// The presentation's length: the longest track's.
    pub fn duration(&self) -> f64 {
        self.video.iter().chain(&self.audio).map(|t| t.index.duration()).fold(0.0, f64::max)
    }
}
