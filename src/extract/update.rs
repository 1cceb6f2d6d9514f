//! `YTDLP_UPDATE`: keeps yt-dlp current without a restart and without
//! trusting a broken release.
//!
//! Every `YTDLP_UPDATE_INTERVAL` the newest release (`--pre` for nightly) is
//! installed with pip, with the extras `scripts/setup` installs (JavaScript
//! runtime, challenge solver, impersonation), into a fresh folder next to
//! the one in use. It must answer `--version` with a newer version than the
//! one in use, find a JavaScript runtime that runs when the release in use
//! has one, and, when `YTDLP_CANARY_URL` is set, extract that URL into a
//! video with formats; only then do extractions switch to it (workers of
//! the old release finish what they are doing first). Anything else keeps the old release, counted
//! in `reelay_ytdlp_updates_total{outcome}` and said in `/health`.
//!
//! `YTDLP_UPDATE` may instead name a pip requirement, installed as given:
//! the way to a yt-dlp build with SABR support while that is not released.
//! The same version is taken when it brings SABR support (`protobug` among
//! its libraries) the release in use lacks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::process::Command;
use tokio::sync::Notify;

use super::{Capabilities, Extractor, VideoInfo, use_release};
use crate::metrics::YtdlpMetrics;

/// What pip installs: yt-dlp with the extras YouTube needs since late 2025
/// (yt-dlp-ejs and Deno from PyPI) and curl_cffi, as `scripts/setup` does.
pub const PACKAGE: &str = "yt-dlp[default,deno,curl-cffi]";

/// How long pip may take to install a release.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a new release may take to say its version.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What the last update check did, for `/health`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct UpdateStatus {
    /// `stable`, `nightly` or `requirement` (a pip requirement of the
    /// operator's).
    pub channel: String,
    /// When the last check ended (RFC 3339).
    pub last_check: Option<String>,
    /// `updated`, `current`, `install_failed`, `check_failed` or `canary_failed`.
    pub last_outcome: Option<String>,
    /// Why the last check kept the old release.
    pub last_error: Option<String>,
    /// When extractions last switched to a new release.
    pub last_update: Option<String>,
}

/// Which releases an update takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// Releases only.
    Stable,
    /// Pre-releases too: yt-dlp's nightly builds are PyPI pre-releases.
    Nightly,
    /// What a pip requirement names, extras and all (a fork's SABR build
    /// from its archive URL, a pinned version). Taken when its version is
    /// newer, or the same version brings SABR support the one in use lacks
    /// (a fork keeps the release's version).
    Requirement(String),
}

/// The background task's settings and what it reports to.
pub struct Updater {
    pub extractor: Arc<Extractor>,
    /// `YTDLP_PYTHON`: its pip installs, and it runs the new release.
    pub python: PathBuf,
    pub channel: Channel,
    pub interval: Duration,
    /// `YTDLP_CANARY_URL`.
    pub canary: Option<String>,
    /// `YTDLP_UPDATE_DIR`: one folder per installed release.
    pub dir: PathBuf,
    /// `YTDLP_ARGS`, also given to the canary.
    pub args: Vec<String>,
    pub metrics: YtdlpMetrics,
    /// What the last check did (read by `/health`).
    pub status: Arc<RwLock<UpdateStatus>>,
    /// Told when extractions switched releases (the health check reads the
    /// version and the extras again, and `reelay_ytdlp_info` follows).
    pub switched: Arc<Notify>,
}

/// Why a new release was not taken.
struct Kept {
    outcome: &'static str,
    why: String,
}

impl Updater {
    /// Checks now, then every interval, until the server stops.
    pub async fn run(self) {
        let channel = match &self.channel {
            Channel::Stable => "stable".to_owned(),
            Channel::Nightly => "nightly".to_owned(),
            // Not the requirement itself: its URL may carry a token, and
            // `/health` is public.
            Channel::Requirement(_) => "requirement".to_owned(),
        };
        self.status.write().expect("status lock").channel = channel;
        loop {
            let result = self.check().await;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let outcome = match &result {
                Ok(true) => "updated",
                Ok(false) => "current",
                Err(k) => k.outcome,
            };
            self.metrics.count_update(outcome);
            {
                let mut status = self.status.write().expect("status lock");
                status.last_check = Some(now.clone());
                status.last_outcome = Some(outcome.to_owned());
                status.last_error = result.as_ref().err().map(|k| k.why.clone());
                if let Ok(true) = result {
                    status.last_update = Some(now);
                }
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// One check: `Ok(true)` when extractions now use a newer release.
    async fn check(&self) -> Result<bool, Kept> {
        let current = self.extractor.version().await.ok();
        let folder = self.dir.join(format!("yt-dlp-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let result = self.try_release(&folder, current.as_deref()).await;
        match &result {
            Ok(Some(version)) => {
                let previous = self.extractor.installed_folder();
                self.extractor.switch(self.python.clone(), folder.clone());
                self.switched.notify_one();
                tracing::info!(from = current.as_deref().unwrap_or("?"), to = %version, "yt-dlp updated");
                // The release before keeps its files while extractions that
                // started with it finish; older ones go.
                self.remove_others(&[Some(folder), previous]).await;
            }
            Ok(None) => remove(&folder).await,
            Err(k) => {
                tracing::warn!(outcome = k.outcome, error = %k.why, "yt-dlp update not taken; keeping the release in use");
                remove(&folder).await;
            }
        }
        result.map(|v| v.is_some())
    }

    /// Installs into `folder` and checks it: `Some(version)` when it is
    /// newer than `current` and passed.
    async fn try_release(&self, folder: &Path, current: Option<&str>) -> Result<Option<String>, Kept> {
        private_dir(&self.dir).map_err(|why| Kept { outcome: "install_failed", why })?;
        let mut pip = Command::new(&self.python);
        pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--upgrade"])
            .arg("--target")
            .arg(folder);
        match &self.channel {
            Channel::Stable => pip.arg(PACKAGE),
            Channel::Nightly => pip.arg("--pre").arg(PACKAGE),
            Channel::Requirement(r) => pip.arg(r),
        };
        let out = run(pip, INSTALL_TIMEOUT).await.map_err(|why| Kept { outcome: "install_failed", why })?;
        if !out.status.success() {
            return Err(Kept { outcome: "install_failed", why: last_line(&out.stderr, "pip failed") });
        }
        let out = run(self.new_release(folder, ["--version"]), CHECK_TIMEOUT)
            .await
            .map_err(|why| Kept { outcome: "check_failed", why })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || version.is_empty() {
            return Err(Kept { outcome: "check_failed", why: last_line(&out.stderr, "printed no version") });
        }
        let is_newer = current.is_none_or(|c| newer(&version, c));
        let requirement = matches!(self.channel, Channel::Requirement(_));
        if !is_newer && !requirement {
            return Ok(None);
        }
        let in_use = self.extractor.capabilities().await;
        let mut probe = self.new_release(folder, ["--verbose", "--ignore-config"]);
        probe.args(&self.args);
        let header = run(probe, CHECK_TIMEOUT).await.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
        let found = Capabilities::from_debug(&header.unwrap_or_default());
        let gains_sabr = requirement && found.sabr.is_some() && in_use.sabr.is_none();
        if !is_newer && !gains_sabr {
            return Ok(None);
        }
        // A release that lost the JavaScript runtime would silently cripple
        // YouTube: refused while the release in use has one.
        if let Some(runtime) = in_use.js_runtime
            && found.js_runtime.is_none()
        {
            let why = format!("{version}: no JavaScript runtime runs with it (the release in use has {runtime})");
            return Err(Kept { outcome: "canary_failed", why });
        }
        if let Some(url) = &self.canary {
            let mut canary = self.new_release(folder, ["-J", "--no-playlist", "--no-warnings", "--ignore-config"]);
            canary.args(&self.args).arg("--").arg(url);
            let failed = |why: String| Kept { outcome: "canary_failed", why: format!("{version}: {why}") };
            let out = run(canary, self.extractor.timeout).await.map_err(failed)?;
            if !out.status.success() {
                return Err(failed(last_line(&out.stderr, "the canary extraction failed")));
            }
            let info = serde_json::from_slice(&out.stdout)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    VideoInfo::from_ytdlp_value(v, "generic", self.extractor.sabr_mode()).map_err(|e| e.to_string())
                })
                .map_err(failed)?;
            if info.formats.is_empty() {
                return Err(failed("the canary extraction found no formats".into()));
            }
        }
        Ok(Some(version))
    }

    /// `python -m yt_dlp <args>` from `folder`.
    fn new_release<const N: usize>(&self, folder: &Path, args: [&str; N]) -> Command {
        let mut cmd = Command::new(&self.python);
        use_release(&mut cmd, folder);
        cmd.args(["-m", "yt_dlp"]).args(args);
        cmd
    }

    /// Removes every release folder but `keep`.
    async fn remove_others(&self, keep: &[Option<PathBuf>]) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let named = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("yt-dlp-"));
            if named && !keep.iter().flatten().any(|k| *k == path) {
                remove(&path).await;
            }
        }
    }
}

/// Creates `dir` (mode 0700) or checks that it is a folder of this user's
/// that no one else may write: code installed there is run, and the default
/// lives in the shared temporary folder.
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let said = |e: std::io::Error| format!("{}: {e}", dir.display());
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            // A parent is missing: make it, then the folder itself, privately.
            std::fs::create_dir_all(dir.parent().unwrap_or(dir)).map_err(said)?;
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(|_| said(e))?;
            return Ok(());
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(said)?;
    let mine = meta.uid() == nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || !mine || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a folder of this user's that only it may write (YTDLP_UPDATE_DIR); not installing there",
            dir.display()
        ));
    }
    Ok(())
}

async fn remove(folder: &Path) {
    let _ = tokio::fs::remove_dir_all(folder).await;
}

/// Runs `cmd` to the end (its whole group killed past `limit`).
async fn run(cmd: Command, limit: Duration) -> Result<std::process::Output, String> {
    crate::process::output(cmd, limit).await.map_err(|e| e.to_string())
}

/// The last non-empty line a program printed on stderr.
fn last_line(stderr: &[u8], otherwise: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or(otherwise).to_owned()
}

/// Whether yt-dlp version `a` is newer than `b`: `2025.10.22`, nightly
/// `2025.10.22.232815`, compared number by number.
pub fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).filter_map(|p| p.parse().ok()).collect()
    };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::{newer, private_dir};

    #[test]
    fn installs_only_into_a_private_folder() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/releases");
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        private_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&dir).unwrap_err().contains("YTDLP_UPDATE_DIR"));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(private_dir(&link).is_err(), "a symlink is not followed");
    }

    #[test]
    fn compares_versions() {
        assert!(newer("2025.10.22", "2025.9.30"));
        assert!(newer("2025.10.22.232815", "2025.10.22"));
        assert!(!newer("2025.10.22", "2025.10.22"));
        assert!(!newer("2024.12.1", "2025.01.01"));
        assert!(newer("2099.3.1", "2099.01.01-stand-in"));
    }
}
