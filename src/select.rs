//! Quality presets and stream selection, over the formats of one cached
//! extraction: every quality and mode is answered from the same info, so
//! asking for another quality never runs the extractor again.

use std::cmp::Ordering;
use std::str::FromStr;

use crate::extract::{Format, VideoInfo};

/// A `quality=` preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    Best,
    Worst,
    /// Caps the height.
    Max(u32),
    /// The best audio-only format.
    Audio,
}

/// What `quality=` accepts, for the 400 that lists them.
pub const QUALITY_VALUES: &str = "best, worst, 2160p (4k), 1440p, 1080p (hd), 720p, 480p (sd), 360p, audio";

impl FromStr for Quality {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" | "best" => Quality::Best,
            "worst" => Quality::Worst,
            "2160p" | "4k" => Quality::Max(2160),
            "1440p" => Quality::Max(1440),
            "1080p" | "hd" => Quality::Max(1080),
            "720p" => Quality::Max(720),
            "480p" | "sd" => Quality::Max(480),
            "360p" => Quality::Max(360),
            "audio" | "audio_only" | "bestaudio" => Quality::Audio,
            _ => return Err(format!("unknown quality; use one of {QUALITY_VALUES}")),
        })
    }
}

/// A `player=` profile: what the player on the other end can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Player {
    /// Today's choice: anything a browser's `<video>` or hls.js plays.
    #[default]
    Browser,
    /// Unity's VideoPlayer: a progressive MP4 over http(s) with H.264 and
    /// AAC; never HLS, AV1 or VP9.
    Unity,
    /// AVPro (VRChat worlds): HLS preferred (the source's own or reelay's
    /// manifest), H.264 and AAC.
    Avpro,
}

/// What `player=` accepts, for the 400 that lists them.
pub const PLAYER_VALUES: &str = "browser (the default), unity, avpro";

impl FromStr for Player {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" | "browser" => Player::Browser,
            "unity" => Player::Unity,
            "avpro" => Player::Avpro,
            _ => return Err(format!("unknown player; use one of {PLAYER_VALUES}")),
        })
    }
}

impl Player {
    /// Whether the player can play `f`. Codecs yt-dlp does not name are
    /// taken to be playable, so a source that names none still plays.
    pub fn plays(self, f: &Format) -> bool {
        let codec_ok = |c: &Option<String>, want: &str| match c.as_deref() {
            None | Some("none") => true,
            Some(c) => c.starts_with(want),
        };
        let h264_aac = codec_ok(&f.vcodec, "avc") && codec_ok(&f.acodec, "mp4a");
        match self {
            Player::Browser => true,
            Player::Unity => h264_aac && !f.is_hls() && matches!(f.ext.as_str(), "mp4" | "m4a"),
            Player::Avpro => h264_aac,
        }
    }

    /// The formats of `info` this player can play, as a new info (only
    /// made when a profile asks for it; `browser` borrows the original).
    pub fn filter(self, info: &VideoInfo) -> Option<VideoInfo> {
        (self != Player::Browser).then(|| VideoInfo {
            formats: info.formats.iter().filter(|f| self.plays(f)).cloned().collect(),
            ..info.clone()
        })
    }
}

/// A `lang=`: the audio language to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioLang {
    /// The video's own audio, not a dub (what is served by default too).
    Original,
    /// An ISO 639 code as yt-dlp gives it (`de`, `pt-BR`, `es-419`).
    Code(String),
}

impl FromStr for AudioLang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (2..=12).contains(&s.len())
            && s.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            && s.bytes().take(2).all(|b| b.is_ascii_alphabetic());
        match s {
            "original" => Ok(AudioLang::Original),
            _ if ok => Ok(AudioLang::Code(s.to_owned())),
            _ => Err("lang is original or a language code such as en, de or pt-BR".to_owned()),
        }
    }
}

impl std::fmt::Display for AudioLang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioLang::Original => f.write_str("original"),
            AudioLang::Code(code) => f.write_str(code),
        }
    }
}

impl AudioLang {
    fn matches(&self, f: &Format, original: Option<i64>) -> bool {
        match self {
            AudioLang::Original => original.is_none_or(|o| f.language_preference == Some(o)),
            AudioLang::Code(code) => f.language.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(code)),
        }
    }

    /// The formats of `info` whose sound is in this language: audio in
    /// another language is left out (video without sound stays, to merge).
    /// `Err` lists the languages the video has when it lacks this one.
    pub fn filter(&self, info: &VideoInfo) -> Result<VideoInfo, String> {
        let original = info.original_preference();
        let keep = |f: &Format| {
            !f.has_audio || f.language.is_none() && *self == AudioLang::Original || self.matches(f, original)
        };
        if !info.formats.iter().any(|f| f.has_audio && self.matches(f, original)) {
            if *self == AudioLang::Original {
                return Ok(info.clone());
            }
            let have: Vec<String> = info.audio_languages().into_iter().map(|l| l.code).collect();
            return Err(if have.is_empty() {
                "this video names no audio languages; leave lang= out".to_owned()
            } else {
                format!("this video has no audio in that language; it has {}", have.join(", "))
            });
        }
        Ok(VideoInfo { formats: info.formats.iter().filter(|f| keep(f)).cloned().collect(), ..info.clone() })
    }
}

/// Whether the client follows a redirect or gets the bytes through us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Proxy,
}

/// How to serve a selection.
#[derive(Debug, Clone, Copy)]
pub enum StreamPlan<'a> {
    /// One file that plays by itself.
    Single(&'a Format),
    /// An HLS playlist.
    Hls(&'a Format),
    /// Separate video and audio that must be muxed together.
    Merge { video: &'a Format, audio: &'a Format },
}

impl<'a> StreamPlan<'a> {
    fn of(f: &'a Format) -> Self {
        if f.is_hls() { StreamPlan::Hls(f) } else { StreamPlan::Single(f) }
    }

    /// The format whose id names this plan (the video one for a merge).
    pub fn primary(&self) -> &'a Format {
        match self {
            StreamPlan::Single(f) | StreamPlan::Hls(f) => f,
            StreamPlan::Merge { video, .. } => video,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("no playable format")]
    NoFormat(String),
}

fn height(f: &Format) -> u32 {
    f.height.unwrap_or(0)
}

/// Higher is better among formats of the same height: mp4/avc1 first (it
/// plays everywhere, as the reference preferred), then frame rate, bitrate.
fn rank(a: &Format, b: &Format) -> Ordering {
    let compat = |f: &Format| (f.ext == "mp4") as u8 + f.vcodec.as_deref().is_some_and(|c| c.starts_with("avc")) as u8;
    height(a)
        .cmp(&height(b))
        .then(compat(a).cmp(&compat(b)))
        .then(a.fps.unwrap_or(0.0).total_cmp(&b.fps.unwrap_or(0.0)))
        .then(a.tbr.unwrap_or(0.0).total_cmp(&b.tbr.unwrap_or(0.0)))
}

/// Higher is better among audio formats: the original language first
/// (yt-dlp's `language_preference`: 10 for the original, -1 for dubs), then
/// M4A (it plays everywhere), then bitrate.
pub fn rank_audio(a: &Format, b: &Format) -> Ordering {
    let pref = |f: &Format| f.language_preference.unwrap_or(0);
    pref(a)
        .cmp(&pref(b))
        .then(((a.ext == "m4a") as u8).cmp(&((b.ext == "m4a") as u8)))
        .then(a.tbr.unwrap_or(0.0).total_cmp(&b.tbr.unwrap_or(0.0)))
}

/// Picks from `pool` for `quality`: the best within the cap, else the
/// nearest above it. `Worst` takes the lowest.
fn pick<'a>(pool: impl Iterator<Item = &'a Format> + Clone, quality: Quality) -> Option<&'a Format> {
    match quality {
        Quality::Worst => pool.min_by(|a, b| rank(a, b)),
        Quality::Max(cap) => pool
            .clone()
            .filter(|f| height(f) <= cap)
            .max_by(|a, b| rank(a, b))
            .or_else(|| pool.min_by(|a, b| height(a).cmp(&height(b)).then(rank(b, a)))),
        Quality::Best | Quality::Audio => pool.max_by(|a, b| rank(a, b)),
    }
}

/// The best video within `quality`, with or without sound (what a muted
/// stream is made from: a video-only file as it is, else the file remuxed).
pub fn best_video(info: &VideoInfo, quality: Quality) -> Option<&Format> {
    let videos = info.formats.iter().filter(|f| f.has_video);
    let any = pick(videos.clone(), quality)?;
    // A file that needs no ffmpeg to lose its audio wins a tie.
    match pick(videos.filter(|f| !f.has_audio), quality) {
        Some(only) if height(only) == height(any) => Some(only),
        _ => Some(any),
    }
}

fn best_audio(info: &VideoInfo) -> Option<&Format> {
    info.formats.iter().filter(|f| f.has_audio && !f.has_video).max_by(|a, b| rank_audio(a, b))
}

/// Chooses what to serve for `quality` in `mode`.
///
/// Direct mode only ever names one URL that plays by itself with sound.
/// Proxy mode takes the best video within the cap and merges separate
/// audio into it when it has none.
/// The source's own HLS with video and sound that AVPro is given instead
/// of `file` (a progressive file): within the quality, and no lower than it.
pub fn hls_instead<'a>(info: &'a VideoInfo, quality: Quality, file: &Format) -> Option<&'a Format> {
    pick(info.formats.iter().filter(|f| f.is_hls() && f.has_video && f.has_audio), quality)
        .filter(|h| height(h) >= height(file))
}

pub fn select(info: &VideoInfo, quality: Quality, mode: Mode) -> Result<StreamPlan<'_>, SelectError> {
    let muxed = info.formats.iter().filter(|f| f.has_video && f.has_audio);
    if quality == Quality::Audio {
        return best_audio(info)
            .or_else(|| muxed.min_by(|a, b| rank(a, b)))
            .map(StreamPlan::of)
            .ok_or_else(|| SelectError::NoFormat("this video has no audio".into()));
    }
    let best_muxed = pick(muxed.clone(), quality);
    if mode == Mode::Direct {
        return best_muxed.map(StreamPlan::of).ok_or_else(|| {
            SelectError::NoFormat(
                "no single format carries both video and audio; use the proxy endpoint, which merges them".into(),
            )
        });
    }
    let video = pick(info.formats.iter().filter(|f| f.has_video), quality);
    match (video, best_muxed) {
        (Some(v), Some(m)) if v.has_audio || height(m) >= height(v) => Ok(StreamPlan::of(m)),
        (Some(v), _) => Ok(match best_audio(info) {
            Some(audio) => StreamPlan::Merge { video: v, audio },
            None => StreamPlan::of(v),
        }),
        (None, _) => {
            best_audio(info).map(StreamPlan::of).ok_or_else(|| SelectError::NoFormat("no playable format".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(id: &str, h: Option<u32>, v: bool, a: bool, ext: &str) -> Format {
        Format {
            format_id: id.into(),
            url: format!("https://cdn.example/{id}"),
            ext: ext.into(),
            protocol: "https".into(),
            height: h,
            width: None,
            fps: None,
            vcodec: Some(if v { "avc1.4d401f" } else { "none" }.into()),
            acodec: Some(if a { "mp4a.40.2" } else { "none" }.into()),
            tbr: None,
            filesize: None,
            format_note: None,
            language: None,
            language_preference: None,
            has_video: v,
            has_audio: a,
            http_headers: Default::default(),
            chunk_size: None,
            sabr: None,
        }
    }

    fn youtube() -> VideoInfo {
        VideoInfo {
            id: "x".into(),
            title: String::new(),
            description: String::new(),
            duration: None,
            thumbnail: None,
            platform: "youtube".into(),
            uploader: None,
            view_count: None,
            like_count: None,
            upload_date: None,
            webpage_url: None,
            is_live: false,
            live_status: None,
            release_timestamp: None,
            chapters: Vec::new(),
            subtitles: Vec::new(),
            expires_at: None,
            route: Default::default(),
            formats: vec![
                fmt("140", None, false, true, "m4a"),
                fmt("251", None, false, true, "webm"),
                fmt("18", Some(360), true, true, "mp4"),
                fmt("136", Some(720), true, false, "mp4"),
                fmt("247", Some(720), true, false, "webm"),
                fmt("137", Some(1080), true, false, "mp4"),
            ],
        }
    }

    fn id(p: StreamPlan) -> String {
        match p {
            StreamPlan::Single(f) | StreamPlan::Hls(f) => f.format_id.clone(),
            StreamPlan::Merge { video, audio } => {
                format!("{}+{}", video.format_id, audio.format_id)
            }
        }
    }

    #[test]
    fn direct_never_names_a_silent_format() {
        let info = youtube();
        for q in ["best", "1080p", "720p", "360p", "worst"] {
            assert_eq!(id(select(&info, q.parse().unwrap(), Mode::Direct).unwrap()), "18", "{q}");
        }
    }

    #[test]
    fn proxy_merges_above_the_muxed_formats() {
        let info = youtube();
        assert_eq!(id(select(&info, Quality::Best, Mode::Proxy).unwrap()), "137+140");
        assert_eq!(id(select(&info, Quality::Max(720), Mode::Proxy).unwrap()), "136+140");
        assert_eq!(id(select(&info, Quality::Max(360), Mode::Proxy).unwrap()), "18");
        assert_eq!(id(select(&info, Quality::Audio, Mode::Proxy).unwrap()), "140");
    }

    #[test]
    fn cap_below_everything_takes_the_nearest() {
        let mut info = youtube();
        info.formats.retain(|f| f.format_id != "18");
        info.formats.push(fmt("22", Some(720), true, true, "mp4"));
        assert_eq!(id(select(&info, Quality::Max(360), Mode::Direct).unwrap()), "22");
    }

    #[test]
    fn players_get_what_they_play() {
        let mut info = youtube();
        info.formats
            .push(Format { vcodec: Some("av01.0.08M.08".into()), ..fmt("399", Some(1080), true, false, "mp4") });
        let unity = Player::Unity.filter(&info).unwrap();
        assert_eq!(id(select(&unity, Quality::Best, Mode::Proxy).unwrap()), "137+140", "H.264 and AAC in MP4 only");
        assert!(unity.formats.iter().all(|f| f.format_id != "251" && f.format_id != "247" && f.format_id != "399"));
        assert_eq!(id(select(&unity, Quality::Best, Mode::Direct).unwrap()), "18");
        let mut hls = fmt("hls-720", Some(720), true, true, "mp4");
        hls.protocol = "m3u8_native".into();
        info.formats.push(hls);
        assert!(Player::Unity.filter(&info).unwrap().formats.iter().all(|f| !f.is_hls()), "never HLS");
        assert!(Player::Avpro.filter(&info).unwrap().formats.iter().any(|f| f.is_hls()));
        assert!(Player::Browser.filter(&info).is_none());
        assert!("vlc".parse::<Player>().unwrap_err().contains("unity"));
    }

    #[test]
    fn unknown_quality_lists_values() {
        assert!("potato".parse::<Quality>().unwrap_err().contains("720p"));
    }

    #[test]
    fn lang_values() {
        assert_eq!("original".parse::<AudioLang>(), Ok(AudioLang::Original));
        for ok in ["en", "de", "pt-BR", "es-419", "zh-Hans"] {
            assert_eq!(ok.parse::<AudioLang>(), Ok(AudioLang::Code(ok.into())), "{ok}");
        }
        for bad in ["e", "--exec", "en_US", "a-", "12", "english-and-more-words"] {
            assert!(bad.parse::<AudioLang>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_original_audio_wins_over_dubs_of_equal_bitrate() {
        let mut info = youtube();
        info.formats.retain(|f| f.has_video);
        for (id, lang, pref) in [("140-0", "en", 10), ("140-1", "de", -1), ("140-2", "es", -1)] {
            let mut f = fmt(id, None, false, true, "m4a");
            f.language = Some(lang.into());
            f.language_preference = Some(pref);
            info.formats.push(f);
        }
        let audio = |info: &VideoInfo| select(info, Quality::Audio, Mode::Proxy).unwrap().primary().format_id.clone();
        assert_eq!(audio(&info), "140-0");
        assert_eq!(audio(&AudioLang::Code("es".into()).filter(&info).unwrap()), "140-2");
        assert_eq!(audio(&AudioLang::Original.filter(&info).unwrap()), "140-0");
        match select(&AudioLang::Code("de".into()).filter(&info).unwrap(), Quality::Max(720), Mode::Proxy).unwrap() {
            StreamPlan::Merge { video, audio } => {
                assert_eq!((video.format_id.as_str(), audio.format_id.as_str()), ("136", "140-1"))
            }
            other => panic!("{other:?}"),
        }
        let err = AudioLang::Code("ja".into()).filter(&info).unwrap_err();
        assert!(err.ends_with("it has en, de, es"), "{err}");
        // A video with no languages named: lang=original changes nothing.
        assert_eq!(AudioLang::Original.filter(&youtube()).unwrap().formats.len(), youtube().formats.len());
    }
}
