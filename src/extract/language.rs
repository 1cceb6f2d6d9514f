//! The audio languages of a video as yt-dlp lists them: each audio format's
//! `language`, its `language_preference` (10 for the original track, -1
//! for dubs) and a `format_note` naming it ("German dubbed-auto").

use serde::Serialize;

use super::info::{Format, VideoInfo};

/// One audio language a video has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AudioLanguage {
    /// As yt-dlp gives it (ISO 639: `en`, `de`, `es-419`).
    pub code: String,
    /// Its name, from the format's note, else the code.
    pub name: String,
    /// The video's own audio rather than a dub.
    pub original: bool,
}

/// The language's name from a note such as `German dubbed-auto, medium` or
/// `English original (default), low`.
fn name_of(f: &Format, code: &str) -> String {
    let note = f.format_note.as_deref().unwrap_or("");
    let first = note.split(',').next().unwrap_or("");
    let words: Vec<&str> = first
        .split_whitespace()
        .take_while(|w| !matches!(*w, "dubbed" | "dubbed-auto" | "original" | "(default)" | "-" | "descriptive"))
        .collect();
    let name = words.join(" ");
    let letters = name.chars().any(char::is_alphabetic) && !name.chars().any(|c| c.is_ascii_digit());
    if letters { name } else { code.to_owned() }
}

impl Format {
    /// Its language and that language's name, when it names one.
    pub fn language_named(&self) -> Option<(String, String)> {
        let code = self.language.clone()?;
        let name = name_of(self, &code);
        Some((code, name))
    }
}

impl VideoInfo {
    /// The languages of its audio formats, the original first, each once.
    pub fn audio_languages(&self) -> Vec<AudioLanguage> {
        let best = self.original_preference();
        let mut out: Vec<AudioLanguage> = Vec::new();
        let mut audio: Vec<&Format> = self.formats.iter().filter(|f| f.has_audio && f.language.is_some()).collect();
        audio.sort_by_key(|f| std::cmp::Reverse(f.language_preference.unwrap_or(0)));
        for f in audio {
            let code = f.language.clone().expect("filtered");
            if out.iter().any(|l| l.code == code) {
                continue;
            }
            let original = best.is_some() && f.language_preference == best;
            out.push(AudioLanguage { name: name_of(f, &code), code, original });
        }
        out
    }

    /// The `language_preference` of the original track, when the tracks
    /// differ in it (a video with dubs).
    pub fn original_preference(&self) -> Option<i64> {
        let prefs = self.formats.iter().filter(|f| f.has_audio).filter_map(|f| f.language_preference);
        let (min, max) = prefs.fold((i64::MAX, i64::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
        (max > min || max >= 10).then_some(max)
    }
}
