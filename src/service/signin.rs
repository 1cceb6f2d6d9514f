//! Platform sign-in: Netscape cookie files in `COOKIES_DIR`, one per
//! platform (`youtube.txt`, `bilibili.txt`, `twitter.txt`, `instagram.txt`,
//! `twitch.txt`), exported from a signed-in browser.
//!
//! - Extractions for a platform with a file get a private copy of it
//!   (`--cookies`), deleted when the extraction ends: yt-dlp writes its jar
//!   back on exit, and the operator's file must stay as it was. The file is
//!   read once per `AUTH_STATUS_TTL`, and the copy is made from that reading.
//! - Their cache keys carry a digest of the file (`auth:{digest}:video:…`), so
//!   signed-in results never mix with anonymous ones, nor with another
//!   account's on a shared Redis.
//! - The status (`/api/v2/auth/status`) is read from the file's own entries:
//!   the platform's session cookies and their expiry dates. Cookie values are
//!   never logged, returned or put in an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::platform::Platform;

/// Larger files are not cookie exports; they are refused rather than read.
const MAX_FILE: u64 = 1024 * 1024;

/// What `/api/v2/auth/status` answers per platform (the reference's `AuthStatus`).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct AuthStatus {
    pub platform: &'static str,
    /// Extractions for this platform run signed in: its cookie file holds
    /// at least one of the platform's session cookies.
    pub authenticated: bool,
    /// None of those session cookies has expired.
    pub cookies_valid: bool,
    /// When the first of them expires (RFC 3339), if any has a date.
    pub expires_at: Option<String>,
}

/// A reading of one platform's cookie file. The cache key of an extraction
/// and the cookies it runs with come from the same reading, so they always
/// agree. (No `Debug`: it holds the cookies.)
pub struct Reading {
    pub status: AuthStatus,
    /// A digest of the file, when there is one: the cache-key scope of
    /// extractions that use it.
    scope: Option<String>,
    /// The file's bytes, copied for each extraction.
    file: Option<Arc<[u8]>>,
}

pub struct SignIn {
    /// `COOKIES_DIR`; `None` keeps every extraction anonymous.
    dir: Option<PathBuf>,
    /// Readings per platform, kept for `AUTH_STATUS_TTL`, so that lookups
    /// need not read the file for their cache key.
    readings: crate::lazy::Lazy<Cache<Platform, Arc<Reading>>>,
}

/// A private copy of a cookie file for one extraction, removed on drop.
pub struct CookieJar {
    path: PathBuf,
}

impl CookieJar {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CookieJar {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl SignIn {
    pub fn new(dir: Option<PathBuf>, ttl: Duration) -> Self {
        SignIn { dir, readings: crate::lazy::lazy(move || Cache::builder().time_to_live(ttl).max_capacity(16).build()) }
    }

    /// Whether `COOKIES_DIR` is set at all.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn file(&self, platform: Platform) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{platform}.txt")))
    }

    /// The platform's status, from a reading at most `AUTH_STATUS_TTL` old.
    pub async fn reading(&self, platform: Platform) -> Arc<Reading> {
        self.readings
            .get_with(platform, async {
                let bytes = match self.file(platform) {
                    Some(path) => read_limited(&path).await,
                    None => None,
                };
                Arc::new(read_status(platform, bytes, chrono::Utc::now().timestamp()))
            })
            .await
    }

    /// The reading that decides how `platform`'s extractions run; `None`
    /// without `COOKIES_DIR` or for other sites (always anonymous).
    pub async fn for_platform(&self, platform: Option<Platform>) -> Option<Arc<Reading>> {
        match platform {
            Some(p) if self.enabled() => Some(self.reading(p).await),
            _ => None,
        }
    }
}

impl Reading {
    /// The cache-key scope: `None` when extractions run anonymously.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// A private copy of the cookie file for one extraction, or `None` when
    /// there is no file.
    pub async fn jar(&self) -> Option<CookieJar> {
        let bytes = self.file.clone()?;
        let path = std::env::temp_dir().join(format!("reelay-cookies-{}.txt", uuid::Uuid::new_v4().simple()));
        let written = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
                f.write_all(&bytes)
            }
        })
        .await;
        let jar = CookieJar { path };
        match written {
            Ok(Ok(())) => Some(jar),
            Ok(Err(e)) => {
                tracing::warn!(platform = self.status.platform, error = %e, "could not copy the cookie file; extracting without it");
                None
            }
            Err(_) => None,
        }
    }
}

/// The file's bytes; `None` when it is missing, unreadable or too large
/// (the last two are logged, without any content).
async fn read_limited(path: &Path) -> Option<Vec<u8>> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cookie file unreadable");
            return None;
        }
    };
    if !meta.is_file() || meta.len() > MAX_FILE {
        tracing::warn!(path = %path.display(), "cookie file ignored: not a file, or over 1 MiB");
        return None;
    }
    tokio::fs::read(path)
        .await
        .inspect_err(|e| tracing::warn!(path = %path.display(), error = %e, "cookie file unreadable"))
        .ok()
}

/// The cookies that mean "signed in", and the domains they belong to.
fn session_cookies(platform: Platform) -> (&'static [&'static str], &'static [&'static str]) {
    match platform {
        Platform::YouTube => (
            &["youtube.com", "google.com"],
            &["SID", "__Secure-1PSID", "__Secure-3PSID", "SAPISID", "__Secure-3PAPISID", "LOGIN_INFO"],
        ),
        Platform::Bilibili => (&["bilibili.com"], &["SESSDATA", "bili_jct", "DedeUserID"]),
        Platform::Twitter => (&["twitter.com", "x.com"], &["auth_token", "ct0"]),
        Platform::Instagram => (&["instagram.com"], &["sessionid", "ds_user_id"]),
        Platform::Twitch => (&["twitch.tv"], &["auth-token"]),
    }
}

/// Reads a Netscape cookie file: `domain, include-subdomains, path, secure,
/// expiry (Unix time, 0 for a browser-session cookie), name, value` per
/// line, `#` comments except the `#HttpOnly_` prefix.
pub fn read_status(platform: Platform, file: Option<Vec<u8>>, now: i64) -> Reading {
    let mut status =
        AuthStatus { platform: platform.as_str(), authenticated: false, cookies_valid: false, expires_at: None };
    let Some(bytes) = file else { return Reading { status, scope: None, file: None } };
    let (domains, names) = session_cookies(platform);
    let text = String::from_utf8_lossy(&bytes);
    let mut expiries = Vec::new();
    for line in text.lines() {
        let line = line.strip_prefix("#HttpOnly_").unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [domain, _, _, _, expiry, name, _value] = fields[..] else { continue };
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        let ours = domains.iter().any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
        if ours && names.contains(&name) {
            expiries.push(expiry.trim().parse::<i64>().unwrap_or(0));
        }
    }
    status.authenticated = !expiries.is_empty();
    status.cookies_valid = status.authenticated && expiries.iter().all(|&e| e == 0 || e > now);
    // Past the year 9999 a date has no RFC 3339 form; such a cookie
    // does not expire in any sense that matters.
    const LAST_RFC3339: i64 = 253_402_300_799;
    status.expires_at = expiries
        .iter()
        .filter(|&&e| e > 0 && e <= LAST_RFC3339)
        .min()
        .and_then(|&e| chrono::DateTime::from_timestamp(e, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let digest = Sha256::digest(&bytes);
    let scope = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Reading { status, scope: Some(scope), file: Some(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn file(expiry: i64) -> String {
        format!(
            "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t{expiry}\tPREF\tf6=8\n\
             #HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t{expiry}\t__Secure-3PSID\tsecret-value\n\
             .youtube.com\tTRUE\t/\tTRUE\t{}\tSAPISID\tother-secret\n",
            expiry + 100
        )
    }

    #[test]
    fn valid_expired_and_missing() {
        let ok = read_status(Platform::YouTube, Some(file(NOW + 1000).into_bytes()), NOW);
        assert!(ok.status.authenticated && ok.status.cookies_valid);
        assert_eq!(ok.status.expires_at.as_deref(), Some("2027-01-15T08:16:40Z"));
        assert_eq!(ok.scope().map(str::len), Some(16));
        let expired = read_status(Platform::YouTube, Some(file(NOW - 1000).into_bytes()), NOW);
        assert!(expired.status.authenticated && !expired.status.cookies_valid);
        let missing = read_status(Platform::YouTube, None, NOW);
        assert!(!missing.status.authenticated && missing.scope().is_none());
        // Another platform's file, or a file without session cookies, is not a sign-in.
        let other = read_status(Platform::Bilibili, Some(file(NOW + 1000).into_bytes()), NOW);
        assert!(!other.status.authenticated && !other.status.cookies_valid && other.status.expires_at.is_none());
    }
}
