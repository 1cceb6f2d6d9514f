//! A SABR format as yt-dlp's SABR build lists it (`"protocol": "sabr"`, its
//! `url` the streaming URL, `_sabr_config` private to yt-dlp), read into a
//! type of reelay's own, so a change in yt-dlp's private shape touches
//! this one parser. What the relay needs to run a session is here; what it
//! cannot work without (the ustreamer config, the client, the format's
//! identity, the file's length) makes a format without it unplayable.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a SABR session for one format needs, besides its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SabrFormat {
    /// The player's ustreamer config (opaque bytes, base64url as yt-dlp
    /// gives it).
    pub ustreamer_config: String,
    /// The GVS PO token (base64url), when yt-dlp had one.
    pub po_token: Option<String>,
    /// innertube's number for the client the URL was issued to.
    pub client_name: i32,
    pub client_version: String,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub video_id: String,
    pub itag: i32,
    /// The format's `lmt`.
    pub last_modified: u64,
    pub xtags: Option<String>,
}

/// innertube's client names and their numbers, for the clients yt-dlp
/// uses (`client_info.client_name` may be either).
const CLIENTS: [(&str, i32); 11] = [
    ("WEB", 1),
    ("MWEB", 2),
    ("ANDROID", 3),
    ("IOS", 5),
    ("TVHTML5", 7),
    ("ANDROID_VR", 28),
    ("WEB_EMBEDDED_PLAYER", 56),
    ("WEB_CREATOR", 62),
    ("WEB_REMIX", 67),
    ("TVHTML5_SIMPLY_EMBEDDED_PLAYER", 85),
    ("VISIONOS", 101),
];

/// A number yt-dlp may write as a number or a string.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl SabrFormat {
    /// The format's `_sabr_config`; `None` when it lacks what a session
    /// needs.
    pub fn parse(format: &Value) -> Option<SabrFormat> {
        let c = format.get("_sabr_config")?;
        let client = c.get("client_info")?;
        let client_name = match client.get("client_name")? {
            Value::String(name) => CLIENTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?.1,
            other => i32::try_from(other.as_i64()?).ok()?,
        };
        Some(SabrFormat {
            ustreamer_config: text(c, "video_playback_ustreamer_config")?,
            po_token: text(c, "po_token"),
            client_name,
            client_version: text(client, "client_version")?,
            os_name: text(client, "os_name"),
            os_version: text(client, "os_version"),
            video_id: text(c, "video_id")?,
            itag: i32::try_from(number(c.get("itag"))?).ok()?,
            last_modified: number(c.get("last_modified"))?,
            xtags: text(c, "xtags"),
        })
    }

    /// The ustreamer config's bytes.
    pub fn ustreamer_bytes(&self) -> Vec<u8> {
        decode(&self.ustreamer_config)
    }

    /// The PO token's bytes.
    pub fn po_token_bytes(&self) -> Option<Vec<u8>> {
        self.po_token.as_deref().map(decode)
    }
}

/// `YOUTUBE_SABR`: what reelay plays of a YouTube video whose formats
/// yt-dlp lists both with a plain URL and through SABR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SabrMode {
    /// Plain URLs while a video has any (a GET per range is cheaper than a
    /// session, and every route can hand it out); SABR for the videos that
    /// have nothing else.
    #[default]
    Auto,
    /// The SABR format wherever yt-dlp lists one (the plain URL of the same
    /// itag is dropped); plain formats SABR does not offer stay.
    Prefer,
    /// No SABR: yt-dlp is not asked for SABR formats, and a video with only
    /// SABR formats is the `501` a yt-dlp without SABR support gives.
    Off,
}

impl std::str::FromStr for SabrMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(SabrMode::Auto),
            "prefer" => Ok(SabrMode::Prefer),
            "off" => Ok(SabrMode::Off),
            other => Err(format!("'{other}' is not auto, prefer or off")),
        }
    }
}

/// yt-dlp's SABR build lists a format's SABR twin beside its plain URL only
/// with `youtube:formats=duplicate`; reelay chooses between them itself.
const DUPLICATE: &str = "formats=duplicate";

/// `YTDLP_ARGS` with `formats=duplicate` among YouTube's extractor
/// arguments. yt-dlp keeps only the last `--extractor-args youtube:…`, so
/// it joins the operator's last one (`youtube:player_client=web` becomes
/// `youtube:player_client=web;formats=duplicate`) rather than replacing
/// it; an operator who set `formats=` already keeps theirs.
pub fn with_duplicate_formats(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    // (index of the value, whether it is `--extractor-args=…` in one word)
    let mut last = None;
    let mut i = 0;
    while i < out.len() {
        if out[i] == "--extractor-args" && i + 1 < out.len() {
            if is_youtube(&out[i + 1]) {
                last = Some((i + 1, ""));
            }
            i += 2;
            continue;
        }
        if let Some(v) = out[i].strip_prefix("--extractor-args=")
            && is_youtube(v)
        {
            last = Some((i, "--extractor-args="));
        }
        i += 1;
    }
    match last {
        Some((at, prefix)) => {
            let value = &out[at][prefix.len()..];
            let given = value.split_once(':').map_or("", |(_, a)| a);
            if !given.split(';').any(|a| a.trim().starts_with("formats=")) {
                let sep = if given.trim().is_empty() { "" } else { ";" };
                out[at] = format!("{}{sep}{DUPLICATE}", out[at]);
            }
        }
        None => out.extend(["--extractor-args".to_owned(), format!("youtube:{DUPLICATE}")]),
    }
    out
}

fn is_youtube(value: &str) -> bool {
    value.split_once(':').is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case("youtube"))
}

/// base64, url-safe or standard, padded or not (yt-dlp and the player use
/// each); what does not decode is sent as its text.
fn decode(s: &str) -> Vec<u8> {
    let trimmed = s.trim_end_matches('=');
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let std = base64::engine::general_purpose::STANDARD_NO_PAD;
    url.decode(trimmed).or_else(|_| std.decode(trimmed)).unwrap_or_else(|_| s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yt_dlps_shape_is_read_with_names_or_numbers() {
        let f: Value = serde_json::json!({"_sabr_config": {
            "video_playback_ustreamer_config": "CgQIARAB", "po_token": null,
            "fetch_po_token_fn": null, "reload_config_fn": null, "client_name": "web_safari",
            "client_info": {"client_name": "WEB", "client_version": "2.20261201.00.00", "os_name": "Macintosh"},
            "video_id": "abcdefghijk", "live_status": "not_live", "itag": "137", "xtags": null,
            "last_modified": "1714012345678901", "target_duration_sec": null}});
        let s = SabrFormat::parse(&f).unwrap();
        assert_eq!((s.client_name, s.itag, s.last_modified), (1, 137, 1_714_012_345_678_901));
        assert_eq!(s.ustreamer_bytes(), [0x0a, 0x04, 0x08, 0x01, 0x10, 0x01]);
        assert_eq!((s.po_token, s.xtags, s.os_name.as_deref()), (None, None, Some("Macintosh")));
        let mut numbered = f.clone();
        numbered["_sabr_config"]["client_info"]["client_name"] = 28.into();
        numbered["_sabr_config"]["itag"] = 140.into();
        assert_eq!(SabrFormat::parse(&numbered).map(|s| (s.client_name, s.itag)), Some((28, 140)));
        let mut unknown = f;
        unknown["_sabr_config"]["client_info"]["client_name"] = "SOMETHING_NEW".into();
        assert_eq!(SabrFormat::parse(&unknown), None, "a client whose number is not known");
    }
    #[test]
    fn duplicate_formats_join_the_operators_youtube_arguments() {
        let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(with_duplicate_formats(&[]), args(&["--extractor-args", "youtube:formats=duplicate"]));
        let other = args(&["--extractor-args", "youtubepot-bgutilhttp:base_url=http://b:4416"]);
        assert_eq!(
            with_duplicate_formats(&other),
            args(&[
                "--extractor-args",
                "youtubepot-bgutilhttp:base_url=http://b:4416",
                "--extractor-args",
                "youtube:formats=duplicate"
            ]),
            "another extractor's arguments are not YouTube's"
        );
        assert_eq!(
            with_duplicate_formats(&args(&["-v", "--extractor-args", "YouTube:player_client=web,mweb"])),
            args(&["-v", "--extractor-args", "YouTube:player_client=web,mweb;formats=duplicate"])
        );
        assert_eq!(
            with_duplicate_formats(&args(&["--extractor-args=youtube:lang=de"])),
            args(&["--extractor-args=youtube:lang=de;formats=duplicate"])
        );
        let chosen = args(&["--extractor-args", "youtube:formats=missing_pot"]);
        assert_eq!(with_duplicate_formats(&chosen), chosen, "the operator's formats= stays");
        assert_eq!("Prefer".parse(), Ok(SabrMode::Prefer));
        assert!("sometimes".parse::<SabrMode>().is_err());
    }
}
