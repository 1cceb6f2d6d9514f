//! What the yt-dlp in use can do beyond its own code: a JavaScript runtime
//! (YouTube's signature and n challenges need one since late 2025), the
//! challenge-solver package yt-dlp-ejs, and browser impersonation
//! (curl_cffi). yt-dlp says all three in its verbose header, which both
//! extractor modes produce (`yt-dlp -v` on stderr; the worker's
//! `YoutubeDL(verbose=True)` through its logger), so one reader serves both.

use serde::Serialize;

/// The extras yt-dlp found, each `None` when missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The first supported JavaScript runtime, like `deno 2.9.8`.
    pub js_runtime: Option<String>,
    /// yt-dlp-ejs' version (the challenge solver's scripts).
    pub ejs: Option<String>,
    /// The impersonation library and its version, like `curl_cffi 0.17.0`.
    pub impersonate: Option<String>,
    /// SABR support: yt-dlp's SABR build lists the protobuf library its
    /// SABR downloader needs, like `protobug 1.0.0`; a yt-dlp without it
    /// lists no SABR formats reelay can play.
    pub sabr: Option<String>,
}

impl Capabilities {
    /// Reads yt-dlp's `[debug]` header lines (`JS runtimes: deno-2.9.8`,
    /// `Optional libraries: …, curl_cffi-0.17.0, …, yt_dlp_ejs-0.8.0`).
    /// Runtimes yt-dlp marks `(unsupported)` or `(unknown)` do not count.
    pub fn from_debug(text: &str) -> Self {
        let field = |name: &str| {
            text.lines().find_map(|l| l.trim().strip_prefix("[debug] ")?.strip_prefix(name)?.strip_prefix(": "))
        };
        let libraries: Vec<&str> = field("Optional libraries").map(|l| l.split(", ").collect()).unwrap_or_default();
        let library = |name: &str| {
            libraries.iter().find_map(|l| {
                let version = l.strip_prefix(name)?;
                Some(version.strip_prefix('-').unwrap_or(version).to_owned())
            })
        };
        let js_runtime = field("JS runtimes").and_then(|list| {
            list.split(", ")
                .map(str::trim)
                .find(|r| *r != "none" && !r.contains('(') && !r.is_empty())
                .map(|r| r.replacen('-', " ", 1))
        });
        let impersonate = library("curl_cffi").map(|v| format!("curl_cffi {v}"));
        let sabr = library("protobug").map(|v| format!("protobug {v}"));
        Capabilities { js_runtime, ejs: library("yt_dlp_ejs"), impersonate, sabr }
    }

    /// What is missing and what it costs, for the start-up warning.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.js_runtime.is_none() {
            missing.push("YouTube formats may be missing: no JavaScript runtime (deno)");
        }
        if self.ejs.is_none() {
            missing.push("YouTube formats may be missing: no challenge solver (yt-dlp-ejs)");
        }
        if self.impersonate.is_none() {
            missing.push("sites that need a browser's fingerprint may refuse: no impersonation (curl_cffi)");
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::Capabilities;

    #[test]
    fn reads_the_verbose_header() {
        let full = "[debug] Optional libraries: Cryptodome-3.24.2, brotli-1.2.1, curl_cffi-0.17.0, \
                    websockets-17.4, yt_dlp_ejs-0.8.0\n[debug] JS runtimes: deno-2.9.8\n";
        let caps = Capabilities::from_debug(full);
        assert_eq!(caps.js_runtime.as_deref(), Some("deno 2.9.8"));
        assert_eq!(caps.ejs.as_deref(), Some("0.8.0"));
        assert_eq!(caps.impersonate.as_deref(), Some("curl_cffi 0.17.0"));
        assert_eq!(caps.sabr, None, "a yt-dlp without SABR support");
        assert!(caps.missing().is_empty());
        let sabr = "[debug] Optional libraries: curl_cffi-0.17.0, protobug-1.0.0, yt_dlp_ejs-0.8.0\n";
        assert_eq!(Capabilities::from_debug(sabr).sabr.as_deref(), Some("protobug 1.0.0"));

        let bare = "[debug] Optional libraries: certifi-2026.10.19, sqlite3-3.40.1\n[debug] JS runtimes: none\n";
        assert_eq!(Capabilities::from_debug(bare), Capabilities::default());
        assert_eq!(Capabilities::from_debug("[debug] JS runtimes: none (disabled)").js_runtime, None);
        let old = "[debug] JS runtimes: deno-1.40.0 (unsupported), bun-1.2.20";
        assert_eq!(Capabilities::from_debug(old).js_runtime.as_deref(), Some("bun 1.2.20"));
        assert_eq!(Capabilities::from_debug("not yt-dlp at all"), Capabilities::default());
        assert_eq!(Capabilities::default().missing().len(), 3);
    }
}
